import * as fs from 'node:fs';
import { mkdtempSync, rmSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';

// The local lock file (src/engine/lock.ts) against another run on the same controller acting
// between two of its calls: the lock must never be held twice. A seam in node:fs runs the other
// run at the moment given: before this run's rename of a lock file it judged stale.

const hook: { beforeRename?: () => void } = {};
vi.mock('node:fs', async (orig) => {
  const real = (await orig()) as typeof fs;
  const renameSync = (from: fs.PathLike, to: fs.PathLike) => {
    const h = hook.beforeRename;
    hook.beforeRename = undefined;
    h?.();
    return real.renameSync(from, to);
  };
  return { ...real, default: { ...real, renameSync }, renameSync };
});
const { acquireLock, LockHeldError } = await import('../../src/engine/lock.js');

let dir: string;
beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'baton-lock-race-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const deadPid = () => Number(spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim());
const lockFileIn = () => path.join(dir, readdirSync(dir).find((f) => f.endsWith('.lock'))!);

it('two runs taking the same stale lock over at once: one holds it, the other is told who does', () => {
  const stale = acquireLock('nfs-service', 'dead-run', dir);
  writeFileSync(stale.file, JSON.stringify({ ...stale.holder, pid: deadPid() }) + '\n');
  let a: ReturnType<typeof acquireLock> | undefined;
  // B judged the lock stale; before B moves it aside, A takes it over completely.
  hook.beforeRename = () => {
    a = acquireLock('nfs-service', 'run-A', dir);
  };
  let b: unknown;
  try {
    b = acquireLock('nfs-service', 'run-B', dir);
  } catch (e) {
    b = e;
  }
  expect(a?.holder.runId).toBe('run-A');
  expect(b).toBeInstanceOf(LockHeldError);
  expect((b as InstanceType<typeof LockHeldError>).holder.runId).toBe('run-A');
  expect(JSON.parse(fs.readFileSync(lockFileIn(), 'utf8')).runId).toBe('run-A');
});

it('a lock file found empty (another run between creating and writing it) is not taken for stale', () => {
  const first = acquireLock('nfs-service', 'run-A', dir);
  writeFileSync(first.file, '');
  expect(() => acquireLock('nfs-service', 'run-B', dir)).toThrow(/being written by another run/);
  // Left unreadable for longer than any write takes (a crash mid-write): taken over.
  const old = (Date.now() - 60_000) / 1000;
  utimesSync(first.file, old, old);
  expect(acquireLock('nfs-service', 'run-B', dir).tookOverFrom?.runId).toBe('unknown');
});

it('the lock file never exists half written: it is linked into place whole, nothing left beside it', () => {
  const held = acquireLock('nfs-service', 'run-A', dir);
  expect(readdirSync(dir)).toEqual([path.basename(held.file)]);
  expect(JSON.parse(fs.readFileSync(held.file, 'utf8')).runId).toBe('run-A');
});
