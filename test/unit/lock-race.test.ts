import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// The local lock file (src/engine/lock.ts) against other runs on the same controller acting
// between two of its calls: the lock must never be held twice.
//
// Three runs on one controller meet at a stale lock (its run's pid is gone). Run B judged it
// stale; at the moment B acts on that judgement, run A takes the same stale lock over, and right
// after, run C arrives. The hook below runs A and C at exactly those two moments, whichever fs
// call B makes there (the code before used rename, now unlink): the interleaving that left A and
// C both holding the lock.
const hook = vi.hoisted(() => ({ lockFile: '', before: undefined as (() => void) | undefined, after: undefined as (() => void) | undefined }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const around = <F extends (...a: never[]) => unknown>(f: F) =>
    ((...args: Parameters<F>) => {
      const mine = args[0] === hook.lockFile && hook.before;
      const before = hook.before;
      const after = hook.after;
      if (mine) {
        hook.before = hook.after = undefined;
        before?.();
      }
      const r = f(...args);
      if (mine) after?.();
      return r;
    }) as F;
  const renameSync = around(fs.renameSync);
  const unlinkSync = around(fs.unlinkSync);
  return { ...fs, default: { ...fs, renameSync, unlinkSync }, renameSync, unlinkSync };
});

const { acquireLock } = await import('../../src/engine/lock.js');
type Held = ReturnType<typeof acquireLock>;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'baton-lock-race-'));
});
afterEach(() => {
  hook.before = hook.after = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('two runs taking one stale lock over', () => {
  it('never both hold it: the one that acts on a judgement made before the other took it over leaves the other alone', () => {
    const first = acquireLock('nfs-service', 'DEAD', dir);
    hook.lockFile = first.file;
    writeFileSync(first.file, JSON.stringify({ name: 'nfs-service', runId: 'DEAD', controller: os.hostname(), pid: 2 ** 22 + 12345, since: 'x' }) + '\n');

    const holders: Held[] = [];
    const attempt = (run: string) => {
      try {
        holders.push(acquireLock('nfs-service', run, dir));
      } catch {
        // refused (held, or being taken over): holds nothing
      }
    };
    hook.before = () => attempt('RUN-A');
    hook.after = () => attempt('RUN-C');
    attempt('RUN-B');

    // Before: A's live lock was moved aside by B, C created the lock in the gap, and B deleted
    // what it had moved: A and C both held "nfs-service".
    expect(holders.map((h) => h.holder.runId)).toHaveLength(1);
    const onDisk = JSON.parse(readFileSync(first.file, 'utf8')) as { runId: string };
    expect(onDisk.runId).toBe(holders[0]!.holder.runId);
    expect(readdirSync(dir).filter((f) => !f.endsWith('.lock')), 'no guard or moved file left behind').toEqual([]);
  });
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
  expect(JSON.parse(readFileSync(held.file, 'utf8')).runId).toBe('run-A');
});
