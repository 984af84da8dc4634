import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * Write a file so that a reader (a CI server collecting artifacts, node_exporter's textfile
 * collector, a later `baton undo`) sees either the old file or the whole new one, never half,
 * also after a power loss: a temporary file beside it (rename is atomic only within one
 * filesystem), fsync'd, renamed over the target, then the directory fsync'd so the rename
 * survives. Without the first fsync, ext4 and XFS may keep the rename and lose the data: a
 * 0-byte file where a whole one was.
 */
export function writeFileAtomic(file: string, content: string, o: { mode?: number; createDir?: boolean } = {}): void {
  const dir = path.dirname(path.resolve(file));
  if (o.createDir !== false) mkdirSync(dir, { recursive: true });
  const mode = o.mode ?? 0o644;
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(dir);
}

/** A directory's entries on disk (a file created or renamed in it survives a power loss). */
export function syncDir(dir: string): void {
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is done.
  }
}
