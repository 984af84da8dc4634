/** What the engine tells reporters (listr2 tree, plain lines, JSON lines, JUnit). */

export type StepStatus = 'ok' | 'changed' | 'failed' | 'skipped' | 'would-change';

export interface StepRef {
  play: number;
  playName: string;
  stepId: string;
  /** Step id plus loop index: `p0.s3[1]`. */
  instance: string;
  name: string;
  kind: string;
  host: string;
  /** Where the commands run (delegate_to), when not the host itself. */
  on?: string;
  tags: string[];
  /** The item of a looped play this step instance belongs to (its label). */
  item?: string;
}

export type EngineEvent =
  | { type: 'play-start'; play: number; name: string; hosts: string[] }
  | { type: 'play-end'; play: number }
  /** A step of a play begins on its hosts (each host then has step-start/step-end, once per loop item). */
  | { type: 'step-group-start'; play: number; stepId: string; name: string; kind: string; hosts: string[]; item?: string }
  | { type: 'step-group-end'; play: number; stepId: string; item?: string }
  /** An item of a looped play starts (its own transaction) and ends: how it ended. */
  | { type: 'item-start'; play: number; item: string; hosts: string[] }
  | { type: 'item-end'; play: number; item: string; outcome: ItemOutcome; error?: string }
  | { type: 'step-start'; step: StepRef; at: number }
  | {
      type: 'step-end';
      step: StepRef;
      status: StepStatus;
      durationMs: number;
      /** Why it failed: for the person at 3 a.m. (host, command, stderr). */
      error?: string;
      /** Why it was skipped. */
      reason?: string;
      ignored?: boolean;
      /** Time spent at the --step question: not part of durationMs. */
      waitedMs?: number;
      before?: unknown;
      after?: unknown;
      /** The exact commands (from describe) for --check/--diff output. */
      commands?: string[][];
      attempt?: number;
    }
  | { type: 'rollback-start'; reason: string; count: number; item?: string }
  | { type: 'revert-start'; step: StepRef }
  | { type: 'revert-end'; step: StepRef; ok: boolean; durationMs: number; error?: string; note?: string }
  | { type: 'rollback-end'; complete: boolean; item?: string }
  /** `warn`: shown at the default verbosity (a peer skipped, a --force used); other logs are -v detail. */
  | { type: 'log'; host?: string; message: string; level?: 'info' | 'warn' };

/**
 * How one item of a looped play ended: every step done; failed and its changes rolled back (or
 * not all of them); failed with its changes left (on_failure: stop); stopped before its end
 * because another item failed (rollback_all) or the operator interrupted (the run's rollback
 * then takes its changes); not started for the same reasons.
 */
export type ItemOutcome = 'succeeded' | 'rolled-back' | 'rollback-incomplete' | 'left-in-place' | 'stopped' | 'not-started';

export interface HostRecap {
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
  reverted: number;
  wouldChange: number;
}

export function emptyRecap(): HostRecap {
  return { ok: 0, changed: 0, failed: 0, skipped: 0, reverted: 0, wouldChange: 0 };
}

/** Tally events into a per-host recap. */
export class RecapCollector {
  readonly hosts = new Map<string, HostRecap>();

  private of(host: string): HostRecap {
    let r = this.hosts.get(host);
    if (!r) this.hosts.set(host, (r = emptyRecap()));
    return r;
  }

  onEvent(e: EngineEvent): void {
    if (e.type === 'step-end') {
      const r = this.of(e.step.host);
      if (e.status === 'ok') r.ok++;
      else if (e.status === 'changed') r.changed++;
      else if (e.status === 'failed') r.failed++;
      else if (e.status === 'skipped') r.skipped++;
      else r.wouldChange++;
    } else if (e.type === 'revert-end' && e.ok) this.of(e.step.host).reverted++;
    else if (e.type === 'play-start') e.hosts.forEach((h) => this.of(h));
  }
}
