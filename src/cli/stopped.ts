import { statSync } from 'node:fs';
import path from 'node:path';

/** The options of a command that may have asked for machine-readable output. */
interface MachineOptions {
  json?: boolean;
  junit?: string;
}

/**
 * A `run`, `undo`, `drill` or `plan` that ended by an error (invalid input 2, unreachable 4, lock held
 * 5, anything unexpected) still gives automation what it asked for: with `--json`, the summary
 * record as the last line of stdout; with `--junit FILE`, a file with the error as a test case
 * unless the command wrote one itself during this process (a newer file is left alone).
 */
export async function reportStopped(command: string, args: string[], o: MachineOptions, err: unknown, exitCode: number, startedAtMs: number): Promise<void> {
  if (!['run', 'undo', 'drill', 'plan'].includes(command)) return;
  const e = err as { message?: string; name?: string; runId?: string };
  const message = e.message ?? String(err);
  if (o.json) {
    const { stoppedSummaryLine } = await import('../report/json.js');
    const mode = command as 'run' | 'undo' | 'drill' | 'plan';
    process.stdout.write(stoppedSummaryLine({ mode, exitCode, message, runId: e.runId, durationMs: Date.now() - startedAtMs }) + '\n');
  }
  if (o.junit && !writtenSince(o.junit, startedAtMs)) {
    const { renderStoppedJunit } = await import('../report/junit.js');
    const { writeFileAtomic } = await import('../util/write-atomic.js');
    const suite = args[0] ? `${command} ${path.basename(args[0])}` : command;
    try {
      writeFileAtomic(o.junit, renderStoppedJunit(suite, message, e.name && e.name !== 'Error' ? e.name : 'RunError', exitCode));
    } catch (w) {
      process.stderr.write(`baton: could not write --junit ${o.junit}: ${(w as Error).message}\n`);
    }
  }
}

function writtenSince(file: string, t: number): boolean {
  try {
    return statSync(file).mtimeMs >= t - 5;
  } catch {
    return false;
  }
}
