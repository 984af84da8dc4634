import { Listr, type ListrTaskWrapper } from 'listr2';
import type { EngineEvent, StepStatus } from '../engine/events.js';
import { formatSummary, type Reporter, type RunSummary } from './reporter.js';

interface HostTask {
  resolve: () => void;
  task?: ListrTaskWrapper<unknown, any, any>;
  status?: StepStatus;
  error?: string;
  items: number;
  durationMs: number;
}

/**
 * On a terminal: a listr2 tree per step (step → its hosts, live, with durations), each step's
 * block left on screen when the next begins, so the scrollback reads as the run's history.
 */
export class TtyReporter implements Reporter {
  private chain: Promise<unknown> = Promise.resolve();
  private hosts = new Map<string, HostTask>();
  private readonly print = (s: string) => process.stdout.write(s + '\n');

  onEvent(e: EngineEvent): void {
    switch (e.type) {
      case 'play-start':
        this.later(() => this.print(`\nPLAY [${e.name}] on ${e.hosts.join(', ') || '(no hosts matched)'}`));
        break;
      case 'step-group-start':
        this.startGroup(e.name, e.hosts);
        break;
      case 'step-start': {
        const h = this.hosts.get(e.step.host);
        if (h?.task) h.task.title = `${e.step.host}: ${e.step.name}`;
        break;
      }
      case 'step-end': {
        const h = this.hosts.get(e.step.host);
        if (!h) break;
        h.items++;
        h.durationMs += e.durationMs;
        const rank: Record<StepStatus, number> = { skipped: 0, ok: 1, 'would-change': 2, changed: 3, failed: 4 };
        if (!h.status || rank[e.status] > rank[h.status]) h.status = e.status;
        if (e.error) h.error = e.error;
        if (h.task) h.task.title = `${e.step.host}: ${e.step.name}`;
        break;
      }
      case 'step-group-end':
        for (const h of this.hosts.values()) h.resolve();
        break;
      case 'log': {
        const h = e.host ? this.hosts.get(e.host) : undefined;
        if (h?.task) h.task.output = e.message;
        else this.later(() => this.print(`  ${e.message}`));
        break;
      }
      case 'rollback-start':
        this.later(() => this.print(`\nROLLBACK: reverting ${e.count} change(s), newest first, because ${e.reason.split('\n')[0]}`));
        break;
      case 'revert-end':
        this.later(() =>
          this.print(`  ${e.ok ? '↺' : '✖'} ${e.step.host}: ${e.step.name}${e.ok ? '' : ` — REVERT FAILED: ${e.error}`} (${e.durationMs} ms)`),
        );
        break;
      case 'rollback-end':
        this.later(() => this.print(e.complete ? 'ROLLBACK complete' : 'ROLLBACK INCOMPLETE: some changes are still in place'));
        break;
      default:
        break;
    }
  }

  private later(fn: () => void): void {
    this.chain = this.chain.then(fn);
  }

  private startGroup(name: string, hosts: string[]): void {
    const group = new Map<string, HostTask>();
    for (const host of hosts) {
      let resolve!: () => void;
      const done = new Promise<void>((r) => (resolve = r));
      const h: HostTask = { resolve, items: 0, durationMs: 0 };
      (h as HostTask & { done: Promise<void> }).done = done;
      group.set(host, h);
    }
    this.hosts = group;
    const list = new Listr(
      [
        {
          title: name,
          task: (_ctx, task) =>
            task.newListr(
              [...group.entries()].map(([host, h]) => ({
                title: host,
                task: async (_c: unknown, t: ListrTaskWrapper<unknown, any, any>) => {
                  h.task = t;
                  await (h as HostTask & { done: Promise<void> }).done;
                  const took = `(${h.durationMs} ms${h.items > 1 ? `, ${h.items} items` : ''})`;
                  if (h.status === 'failed') throw new Error(`${host}: ${h.error ?? 'failed'}`);
                  if (h.status === 'skipped' || !h.status) return t.skip(`${host}: skipped`);
                  t.title = `${host}: ${h.status} ${took}`;
                },
              })),
              { concurrent: true, exitOnError: false },
            ),
        },
      ],
      { exitOnError: false, rendererOptions: { collapseSubtasks: false, collapseErrors: false, showErrorMessage: true } as never },
    );
    this.chain = this.chain.then(() => list.run().catch(() => undefined));
  }

  async finish(s: RunSummary): Promise<void> {
    await this.chain;
    this.print(formatSummary(s));
  }
}
