/**
 * The run lock as a run takes it: this controller's lock file first (no network), then an
 * entry on every node the run touches. `acquireRunLocks` is the one call a run (or an undo)
 * makes, after its connections are open.
 */
import type { TransportSource } from '../context.js';
import { LocalFileLockService } from './local.js';
import { NodeLockService } from './node.js';
import type { HeldLocks, LockRequest, LockService } from './service.js';

export type { HeldLocks, LockRequest, LockService } from './service.js';
export { DEFAULT_LEASE_S, leaseSeconds } from './service.js';
export { LockLostError, NodeLockService, DEFAULT_NODE_LOCK_DIR, LOCK_DIR_VAR } from './node.js';
export { LocalFileLockService } from './local.js';
export { EtcdLockService, FencedError, JOURNAL_PREFIX, LOCK_PREFIX } from './etcd.js';

/** Several services taken in order, all or none, released in reverse. */
export async function acquireAll(services: LockService[], req: LockRequest): Promise<HeldLocks> {
  const held: HeldLocks[] = [];
  try {
    for (const s of services) held.push(await s.acquire(req));
  } catch (e) {
    for (const h of held.reverse()) await h.release();
    throw e;
  }
  const signals = held.map((h) => h.lost);
  const guards = held.filter((h) => h.beforeChange);
  const mirrors = held.filter((h) => h.mirror);
  return {
    names: [...new Set(held.flatMap((h) => h.names))],
    notes: held.flatMap((h) => h.notes),
    lost: signals.length === 1 ? signals[0]! : AbortSignal.any(signals),
    guard: (pool: TransportSource) => held.reduce((p, h) => h.guard(p), pool),
    ...(guards.length
      ? {
          beforeChange: async () => {
            for (const h of guards) await h.beforeChange!();
          },
        }
      : {}),
    ...(mirrors.length ? { mirror: (runId: string, index: number, line: string) => mirrors.forEach((h) => h.mirror!(runId, index, line)) } : {}),
    release: async () => {
      for (const h of [...held].reverse()) await h.release();
    },
  };
}

/**
 * Take the run's locks: the local file, then the nodes' entries. Throws LockHeldError (exit 5)
 * naming the holder, having taken nothing. Without names (a `--check` run) nothing is taken.
 */
export function acquireRunLocks(req: LockRequest, services?: LockService[]): Promise<HeldLocks> {
  return acquireAll(services ?? [new LocalFileLockService(), new NodeLockService()], req);
}
