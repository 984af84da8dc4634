import type { Reporter } from './reporter.js';

/** The reporter for where output goes: JSON lines, a live tree on a terminal, else plain lines. */
export async function makeReporter(o: { json?: boolean; diff?: boolean; redact?: (s: string) => string }): Promise<Reporter> {
  if (o.json) return new (await import('./json.js')).JsonReporter();
  // The tree has no room for before/after states: --diff prints lines, also on a terminal.
  if (process.stdout.isTTY && !process.env.CI && !o.diff) return new (await import('./tty.js')).TtyReporter();
  return new (await import('./lines.js')).LineReporter(undefined, o.diff, o.redact);
}
