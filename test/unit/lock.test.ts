import { mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLock, LockHeldError } from '../../src/engine/lock.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'baton-locks-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A pid that surely is not running: a child that has already exited. */
function deadPid(): number {
  return spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim() as unknown as number;
}

describe('run locks', () => {
  it('a second run on the same lock fails at once, naming the holder', () => {
    const first = acquireLock('playbooks/nfs-failover.yml', 'run-1', dir);
    let err: unknown;
    try {
      acquireLock('playbooks/nfs-failover.yml', 'run-2', dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LockHeldError);
    expect((err as LockHeldError).exitCode).toBe(5);
    expect((err as Error).message).toContain('run run-1');
    expect((err as Error).message).toContain(`pid ${process.pid} on ${os.hostname()}`);
    first.release();
    const again = acquireLock('playbooks/nfs-failover.yml', 'run-3', dir);
    expect(again.tookOverFrom).toBeUndefined();
    again.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('different lock names do not block each other', () => {
    const a = acquireLock('a', 'r1', dir);
    const b = acquireLock('b', 'r2', dir);
    a.release();
    b.release();
  });

  it('a stale lock (dead pid on this controller) is taken over, and the new holder says whose it was', () => {
    const held = acquireLock('svc', 'crashed-run', dir);
    // Simulate the holder dying: rewrite the lock with a pid that no longer runs.
    const pid = Number(deadPid());
    writeFileSync(held.file, JSON.stringify({ ...held.holder, pid }) + '\n');
    const mine = acquireLock('svc', 'new-run', dir);
    expect(mine.tookOverFrom).toMatchObject({ runId: 'crashed-run', pid });
    mine.release();
  });

  it('a lock held from another controller is never taken over', () => {
    const held = acquireLock('svc', 'remote-run', dir);
    writeFileSync(held.file, JSON.stringify({ ...held.holder, controller: 'other-controller', pid: 1 }) + '\n');
    expect(() => acquireLock('svc', 'mine', dir)).toThrow(/remote-run.*other-controller/);
  });

  it('release does not remove a lock that someone else now holds', () => {
    const held = acquireLock('svc', 'r1', dir);
    writeFileSync(held.file, JSON.stringify({ ...held.holder, runId: 'r2' }) + '\n');
    held.release();
    expect(readdirSync(dir).length).toBe(1);
  });
});
