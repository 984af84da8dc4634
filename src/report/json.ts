import type { EngineEvent } from '../engine/events.js';
import type { Reporter, RunSummary } from './reporter.js';

/** `--json`: one JSON object per line on stdout, the last one `{"type":"summary",…}`. */
export class JsonReporter implements Reporter {
  constructor(private readonly out: (line: string) => void = (l) => process.stdout.write(l + '\n')) {}

  onEvent(e: EngineEvent): void {
    this.out(JSON.stringify({ ...e, time: new Date().toISOString() }));
  }

  finish(s: RunSummary): void {
    this.out(
      JSON.stringify({
        type: 'summary',
        runId: s.runId,
        mode: s.mode,
        outcome: s.outcome,
        exitCode: s.exitCode,
        recap: Object.fromEntries(s.recap),
        failures: s.failures,
        journal: s.journalPath,
        undo: s.undoCommand,
        durationMs: s.durationMs,
        notes: s.notes,
      }),
    );
  }
}
