import type { EngineEvent, HostRecap, ItemOutcome } from './events.js';

/** What a run (or undo, or check) ends with: every reporter prints it its way. */
export interface RunSummary {
  runId: string;
  mode: 'run' | 'check' | 'undo';
  outcome: string;
  exitCode: number;
  recap: Map<string, HostRecap>;
  failures: string[];
  journalPath?: string;
  /** The one-line undo, when the run left changes in place. */
  undoCommand?: string;
  durationMs: number;
  notes: string[];
  /** Items of looped plays, each its own transaction: how each ended. */
  items?: Array<{ play: number; title: string; var: string; label: string; outcome: ItemOutcome; failure?: string }>;
}

/** What the engine needs of a reporter: events as they happen, the summary at the end. */
export interface RunReporter {
  onEvent(e: EngineEvent): void;
  finish(summary: RunSummary): void | Promise<void>;
  /** `--step`: ask where the reporter can be seen; absent: the caller asks itself. */
  ask?(question: string): Promise<string>;
}
