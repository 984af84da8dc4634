import type { EngineEvent } from '../engine/events.js';
import { displayArgv } from '../util/argv.js';
import { formatSummary, type Reporter, type RunSummary } from './reporter.js';

/** One line per event, for logs and pipes (no TTY). */
export class LineReporter implements Reporter {
  constructor(
    private readonly out: (line: string) => void = (l) => process.stdout.write(l + '\n'),
    /** --diff: show the state probed before (and after) each change. */
    private readonly diff = false,
  ) {}

  onEvent(e: EngineEvent): void {
    switch (e.type) {
      case 'play-start':
        this.out(`PLAY [${e.name}] on ${e.hosts.join(', ') || '(no hosts matched)'}`);
        break;
      case 'step-end': {
        const status = e.status === 'failed' ? (e.ignored ? 'FAILED (ignored)' : 'FAILED') : e.status;
        const where = e.step.on ? `${e.step.host}→${e.step.on}` : e.step.host;
        let line = `  ${where.padEnd(10)} ${status.padEnd(12)} ${e.step.name} (${e.durationMs} ms)`;
        if (e.reason) line += ` — ${e.reason}`;
        if (e.error) line += `\n      ${e.error.split('\n').join('\n      ')}`;
        if (e.status === 'would-change' && e.commands?.length) line += '\n' + e.commands.map((c) => `      $ ${displayArgv(c)}`).join('\n');
        if (this.diff && (e.status === 'would-change' || e.status === 'changed')) {
          line += `\n      before: ${JSON.stringify(e.before)}`;
          if (e.after !== undefined) line += `\n      after:  ${JSON.stringify(e.after)}`;
        }
        this.out(line);
        break;
      }
      case 'rollback-start':
        this.out(`ROLLBACK: reverting ${e.count} change(s), newest first, because ${e.reason.split('\n')[0]}`);
        break;
      case 'revert-end':
        this.out(`  ${e.step.host.padEnd(10)} ${(e.ok ? 'reverted' : 'REVERT FAILED').padEnd(12)} ${e.step.name} (${e.durationMs} ms)${e.error ? `\n      ${e.error}` : ''}${e.note ? ` — ${e.note}` : ''}`);
        break;
      case 'rollback-end':
        this.out(e.complete ? 'ROLLBACK complete' : 'ROLLBACK INCOMPLETE: some changes are still in place (see above and the journal)');
        break;
      case 'log':
        this.out(`  ${(e.host ?? '').padEnd(10)} ${e.message}`);
        break;
      default:
        break;
    }
  }

  finish(s: RunSummary): void {
    this.out(formatSummary(s));
  }
}
