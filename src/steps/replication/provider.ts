import type { StepContext } from '../contract.js';
import type { Runner } from '../../facts/storage.js';

/** Arguments of promote / demote; each provider reads its own. */
export interface ReplicationArgs {
  provider: 'drbd' | 'command';
  /** drbd */
  resource?: string;
  /** drbd: `drbdadm primary --force` (recovery only: it promotes with no UpToDate peer). */
  force?: boolean;
  /** command provider */
  promote?: string[];
  demote?: string[];
  probe?: string[];
  /** command provider: the probe's stdout matching this regex means "primary here". */
  expect?: string;
}

export interface ReplicationObserved {
  primary: boolean;
  role?: string;
  /** Known for DRBD; absent when the provider cannot tell. */
  connected?: boolean;
}

export interface ReplicationProvider {
  label(a: ReplicationArgs): string;
  probe(run: Runner, a: ReplicationArgs): Promise<ReplicationObserved>;
  promote(ctx: StepContext, a: ReplicationArgs, now: ReplicationObserved): Promise<void>;
  demote(ctx: StepContext, a: ReplicationArgs, now: ReplicationObserved): Promise<void>;
  promoteArgv(a: ReplicationArgs): string[][];
  demoteArgv(a: ReplicationArgs): string[][];
}
