import type { StepKind } from '../steps/contract.js';

/**
 * Every step is bounded in time, so that no hang (a SIGSTOPped daemon, a dead NFS mount, a BMC
 * that never answers) can hold a failover forever. A step's `timeout:` wins; else its kind's
 * default (each kind documents its own in docs/timeouts.md); else this.
 */
export const DEFAULT_STEP_TIMEOUT_S = 300;

export function stepTimeoutMs(kind: StepKind, args: unknown, stepTimeoutS?: number): number {
  if (stepTimeoutS) return stepTimeoutS * 1000;
  let s: number | undefined;
  try {
    s = typeof kind.defaultTimeoutS === 'function' ? kind.defaultTimeoutS(args) : kind.defaultTimeoutS;
  } catch {
    s = undefined;
  }
  return (s && s > 0 ? s : DEFAULT_STEP_TIMEOUT_S) * 1000;
}
