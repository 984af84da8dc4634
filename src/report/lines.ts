import type { EngineEvent } from '../engine/events.js';
import { displayArgv } from '../util/argv.js';
import { renderStepDiff } from './diff.js';
import { formatSummary, type Reporter, type RunSummary } from './reporter.js';

/** One line per event, for logs and pipes (no TTY). */
export class LineReporter implements Reporter {
  constructor(
    private readonly out: (line: string) => void = (l) => process.stdout.write(l + '\n'),
    /** --diff: a diff of the state probed before and after each change (--check: the state now). */
    private readonly diff = false,
    /** The run's redactor: known secret values never reach the output, diffs included. */
    private readonly redact: (s: string) => string = (s) => s,
  ) {}

  onEvent(e: EngineEvent): void {
    switch (e.type) {
      case 'play-start':
        this.out(`PLAY [${e.name}] on ${e.hosts.join(', ') || '(no hosts matched)'}`);
        break;
      case 'step-end': {
        const status = e.status === 'failed' ? (e.ignored ? 'FAILED (ignored)' : 'FAILED') : e.status;
        const where = e.step.on ? `${e.step.host}→${e.step.on}` : e.step.host;
        let line = `  ${where.padEnd(10)} ${status.padEnd(12)} ${e.step.item ? `[${e.step.item}] ` : ''}${e.step.name} (${e.durationMs} ms)`;
        if (e.reason) line += ` — ${e.reason}`;
        if (e.error) line += `\n      ${e.error.split('\n').join('\n      ')}`;
        if (this.diff && (e.status === 'would-change' || e.status === 'changed')) {
          line += renderStepDiff({ host: e.step.host, on: e.step.on, status: e.status, before: e.before, after: e.after, commands: e.commands }, this.redact)
            .map((l) => `\n      ${l}`)
            .join('');
        } else if (e.status === 'would-change' && e.commands?.length) {
          line += '\n' + e.commands.map((c) => `      $ ${this.redact(displayArgv(c))}`).join('\n');
        }
        this.out(line);
        break;
      }
      case 'rollback-start':
        this.out(`ROLLBACK${e.item ? ` of ${e.item}` : ''}: reverting ${e.count} change(s), newest first, because ${e.reason.split('\n')[0]}`);
        break;
      case 'revert-end':
        this.out(`  ${e.step.host.padEnd(10)} ${(e.ok ? 'reverted' : 'REVERT FAILED').padEnd(12)} ${e.step.item ? `[${e.step.item}] ` : ''}${e.step.name} (${e.durationMs} ms)${e.error ? `\n      ${e.error}` : ''}${e.note ? ` — ${e.note}` : ''}`);
        break;
      case 'rollback-end':
        this.out(`${e.complete ? 'ROLLBACK complete' : 'ROLLBACK INCOMPLETE: some changes are still in place (see above and the journal)'}${e.item ? ` (${e.item})` : ''}`);
        break;
      case 'item-start':
        this.out(`ITEM [${e.item}] on ${e.hosts.join(', ')}`);
        break;
      case 'item-end':
        this.out(`ITEM [${e.item}] ${e.outcome}${e.error ? `: ${e.error.split('\n')[0]}` : ''}`);
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
