import type { EngineEvent } from '../engine/events.js';
import type { Reporter, RunSummary } from './reporter.js';

/**
 * The version of the `--json` record shapes (schemas/events.json). Every record carries it as
 * `v`. Fields may be added within a version (readers ignore what they do not know); a field
 * removed, renamed or retyped bumps it.
 */
export const JSON_FORMAT_VERSION = 1;

/** `--json`: one JSON object per line on stdout, the last one `{"type":"summary",…}`. */
export class JsonReporter implements Reporter {
  constructor(private readonly out: (line: string) => void = (l) => process.stdout.write(l + '\n')) {}

  onEvent(e: EngineEvent): void {
    // Durations to 0.1 ms: a reader wants 13.8, not 13.800000000000182.
    const rounded = 'durationMs' in e ? { ...e, durationMs: Math.round(e.durationMs * 10) / 10 } : e;
    this.out(JSON.stringify({ v: JSON_FORMAT_VERSION, ...rounded, time: new Date().toISOString() }));
  }

  finish(s: RunSummary): void {
    this.out(
      JSON.stringify({
        v: JSON_FORMAT_VERSION,
        type: 'summary',
        runId: s.runId,
        mode: s.mode,
        outcome: s.outcome,
        exitCode: s.exitCode,
        recap: Object.fromEntries(s.recap),
        failures: s.failures,
        journal: s.journalPath,
        undo: s.undoCommand,
        durationMs: Math.round(s.durationMs),
        notes: s.notes,
        ...(s.items ? { items: s.items } : {}),
      }),
    );
  }
}

/** The outcome word of a run that stopped before its summary, from the exit code it ends with. */
export function stoppedOutcome(exitCode: number): string {
  switch (exitCode) {
    case 2:
      return 'invalid-input';
    case 4:
      return 'unreachable';
    case 5:
      return 'locked';
    default:
      return 'error';
  }
}

export interface StoppedRun {
  mode: 'run' | 'undo' | 'check' | 'drill' | 'plan';
  exitCode: number;
  message: string;
  /** The run's id when it had one (a lock held or a host unreachable happen after it is made). */
  runId?: string;
  durationMs: number;
}

/**
 * The summary record of a run that ended by an error (invalid input 2, unreachable 4, lock
 * held 5, anything unexpected): automation reading `--json` always gets its last line, with
 * the outcome and exit code, never an empty stdout.
 */
export function stoppedSummaryLine(s: StoppedRun): string {
  return JSON.stringify({
    v: JSON_FORMAT_VERSION,
    type: 'summary',
    runId: s.runId ?? null,
    mode: s.mode,
    outcome: stoppedOutcome(s.exitCode),
    exitCode: s.exitCode,
    recap: {},
    failures: [s.message],
    durationMs: Math.round(s.durationMs),
    notes: [],
  });
}
