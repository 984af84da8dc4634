import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach } from 'vitest';

/** A fresh BATON_STATE_DIR for each test of the file, put back and removed after it; its path. */
export function tempStateDirEach(prefix: string): () => string {
  let dir = '';
  let saved: string | undefined;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    saved = process.env.BATON_STATE_DIR;
    process.env.BATON_STATE_DIR = dir;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.BATON_STATE_DIR;
    else process.env.BATON_STATE_DIR = saved;
    rmSync(dir, { recursive: true, force: true });
  });
  return () => dir;
}

/** A fresh temporary directory for each test of the file, removed after it; its path. */
export function tempDirEach(prefix: string): () => string {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}
