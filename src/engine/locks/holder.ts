import { controllerIdentity } from './identity.js';

/**
 * Who holds a run lock, as a controller writes it into a node's entry (one line of JSON) or an
 * etcd key: for the operator who meets the lock, and for judging a dead holder.
 */
export interface LockHolder {
  runId: string;
  controller: string;
  /** Machine id of the controller: its pid is only judged from the same machine. */
  machine: string;
  pid: number;
  since: string;
  leaseS: number;
  locks: string[];
}

/** This controller, holding `locks` for run `runId`. */
export function holderOf(runId: string, leaseS: number, locks: string[]): LockHolder {
  const me = controllerIdentity();
  return { runId, controller: me.name, machine: me.machine, pid: process.pid, since: new Date().toISOString(), leaseS, locks };
}

/** A holder as found (another controller's, or damaged): whatever of it parses, never a throw. */
export function parseHolder(text: string | undefined): Partial<LockHolder> {
  try {
    const h = JSON.parse(text ?? '') as unknown;
    return h && typeof h === 'object' ? (h as Partial<LockHolder>) : {};
  } catch {
    return {};
  }
}
