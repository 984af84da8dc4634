/**
 * The run lock, behind one small interface. A run names its locks (each play's `lock:`, default
 * the playbook's path) and gets them all or none: a second run on any of the same names stops
 * before its first change (exit 5) naming the holder. Kept this small so that another
 * coordinator (etcd, later) can stand in for the node entries without touching the callers.
 */
import type { Inventory } from '../../inventory/model.js';
import type { TransportSource } from '../context.js';

export interface LockRequest {
  /** Lock names; runs with no name in common never exclude each other. */
  names: string[];
  runId: string;
  /** The run's open connections (a TransportPool). */
  pool: TransportSource;
  /** Every host the run touches; the node coordinator puts an entry on each reachable one. */
  hosts: string[];
  /** For per-host settings (`baton_lock_dir`). */
  inventory?: Inventory;
  /** Told what happens after the locks were taken (a node that could not be renewed); default stderr. */
  note?: (message: string) => void;
  /** Lease in seconds (default: BATON_LOCK_LEASE_S, else 60). */
  leaseS?: number;
}

export interface HeldLocks {
  names: string[];
  /** What the operator should hear about when the locks were taken: stale locks taken over, nodes skipped. */
  notes: string[];
  /**
   * Fires (with a LockLostError as its reason) when renewal finds that another run took the lock
   * over, e.g. after this controller was suspended for longer than the lease.
   */
  lost: AbortSignal;
  /**
   * The pool as the run should use it: every command first makes sure the lock is still held,
   * and is refused once it was lost, so the run stops before its next change (and its rollback
   * does not touch nodes another run now owns).
   */
  guard(pool: TransportSource): TransportSource;
  /**
   * The fencing check a coordinator makes before each change of the run (after its intent was
   * journaled, before anything runs): throws, with why, when the run may no longer act.
   * Absent: the guarded pool is the only check.
   */
  beforeChange?(): Promise<void>;
  /** A journal line of the run (or undo) as written locally: for a coordinator that keeps a copy. */
  mirror?(runId: string, index: number, line: string): void;
  /** Give every lock back. Call it while the pool is still open; never throws. */
  release(): Promise<void>;
}

export interface LockService {
  acquire(req: LockRequest): Promise<HeldLocks>;
}

/** Seconds a lock entry stays valid without renewal. BATON_LOCK_LEASE_S overrides (tests, slow links). */
export const DEFAULT_LEASE_S = 60;
export const MIN_LEASE_S = 2;

export function leaseSeconds(explicit?: number): number {
  const fromEnv = Number(process.env.BATON_LOCK_LEASE_S);
  const s = explicit ?? (Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : DEFAULT_LEASE_S);
  return Math.max(MIN_LEASE_S, Math.round(s));
}
