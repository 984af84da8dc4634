import { acquireLock, type HeldLock } from '../lock.js';
import type { HeldLocks, LockRequest, LockService } from './service.js';

/**
 * The fast path: this controller's lock files (engine/lock.ts) in its state dir. Decided with no
 * network, and the only lock for hosts reached with `ansible_connection: local`.
 */
export class LocalFileLockService implements LockService {
  constructor(private readonly dir?: string) {}

  async acquire(req: LockRequest): Promise<HeldLocks> {
    const names = [...new Set(req.names)].sort();
    const files: HeldLock[] = [];
    const notes: string[] = [];
    try {
      for (const name of names) {
        const lock = this.dir === undefined ? acquireLock(name, req.runId) : acquireLock(name, req.runId, this.dir);
        files.push(lock);
        const from = lock.tookOverFrom;
        if (from) {
          notes.push(`note: took over a stale lock "${name}" from run ${from.runId} (pid ${from.pid} on ${from.controller} is gone); its journal may need \`baton undo ${from.runId}\``);
        }
      }
    } catch (e) {
      for (const f of files) f.release();
      throw e;
    }
    return {
      names,
      notes,
      lost: new AbortController().signal,
      guard: (pool) => pool,
      release: async () => {
        for (const f of files.reverse()) f.release();
      },
    };
  }
}
