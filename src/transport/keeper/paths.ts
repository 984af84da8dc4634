/**
 * Where the keeper lives: `stateDir()/keeper/`, a directory only its user may enter. The
 * socket gives whoever can connect to it the user's SSH sessions to every node, so a directory
 * anyone else can reach is refused rather than repaired: that would hide how it got that way.
 */
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { stateDir } from '../../engine/state-dir.js';

export const keeperDir = (dir = stateDir()) => path.join(dir, 'keeper');
export const socketPath = (dir = keeperDir()) => path.join(dir, 'keeper.sock');
export const pidPath = (dir = keeperDir()) => path.join(dir, 'keeper.pid');
export const logPath = (dir = keeperDir()) => path.join(dir, 'keeper.log');

export class KeeperDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeeperDirError';
  }
}

/** Creates the keeper directory (0700) if missing; throws KeeperDirError if it is not private to us. */
export function ensureKeeperDir(dir = keeperDir()): string {
  mkdirSync(path.dirname(dir), { recursive: true });
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  checkKeeperDir(dir);
  return dir;
}

export function checkKeeperDir(dir = keeperDir()): void {
  const st = statSync(dir);
  const uid = process.getuid?.();
  const mode = st.mode & 0o777;
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || mode !== 0o700) {
    throw new KeeperDirError(
      `refusing to use the connection keeper directory ${dir}: it must be a directory owned by uid ${uid} with mode 0700, ` +
        `but it is ${st.isDirectory() ? 'a directory' : 'not a directory'} owned by uid ${st.uid} with mode ${mode.toString(8).padStart(4, '0')}. ` +
        `Anyone who can reach its socket can run commands on your nodes. Find out who changed it, then remove it (it is recreated) or chmod 700 it; or run without --persist.`,
    );
  }
}
