import { Listr, type ListrTaskWrapper } from 'listr2';
import type { EngineEvent, StepStatus } from '../engine/events.js';
import { askBelowTree, askOnStderr } from './tty-prompt.js';
import { formatSummary, type Reporter, type RunSummary } from './reporter.js';

type Wrapper = ListrTaskWrapper<unknown, any, any>;

interface HostTask {
  resolve: () => void;
  /** Resolves once the host's line is in the tree (its listr2 task began). */
  started: Promise<Wrapper>;
  markStarted: (t: Wrapper) => void;
  task?: Wrapper;
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
  /** The current step's line in the tree, once listr2 runs it (a question is asked under it). */
  private group?: Promise<Wrapper>;
  /** Questions are asked one at a time, in the order the engine asks them. */
  private asking: Promise<unknown> = Promise.resolve();
  private readonly print = (s: string) => process.stdout.write(s + '\n');

  /**
   * `--step`: ask on the terminal while the tree is live. The question is drawn under the tree
   * (listr2's prompt line, redrawn with it) as soon as it is asked, on the line of the host it
   * names (`HOST: …`), and the answer typed is echoed there; Enter ends it. Ctrl-C answers
   * "skip" and interrupts the run (the run's own handler rolls back).
   */
  ask(question: string): Promise<string> {
    const answer = this.asking.then(() => this.askNow(question));
    this.asking = answer.catch(() => undefined);
    return answer;
  }

  private async askNow(question: string): Promise<string> {
    // An item of a looped play (`HOST: [ITEM] …`) has no tree to ask under: its steps are lines.
    if (!this.group || /^[^\s:]+: \[/.test(question)) return askOnStderr(question);
    const host = /^([^\s:]+):/.exec(question)?.[1];
    const h = host ? this.hosts.get(host) : undefined;
    const wrapper = h ? await h.started : await this.group;
    return askBelowTree(wrapper, question);
  }

  onEvent(e: EngineEvent): void {
    switch (e.type) {
      case 'play-start':
        this.later(() => this.print(`\nPLAY [${e.name}] on ${e.hosts.join(', ') || '(no hosts matched)'}`));
        break;
      case 'step-group-start':
        // Items of a looped play run at once: the tree shows one step at a time, so items get lines.
        if (e.item === undefined) this.startGroup(e.name, e.hosts);
        break;
      case 'item-start':
        this.later(() => this.print(`  ITEM [${e.item}] on ${e.hosts.join(', ')}`));
        break;
      case 'item-end':
        this.later(() => this.print(`  ITEM [${e.item}] ${e.outcome}${e.error ? `: ${e.error.split('\n')[0]}` : ''}`));
        break;
      case 'step-start': {
        if (e.step.item !== undefined) break;
        const h = this.hosts.get(e.step.host);
        if (h?.task) h.task.title = `${e.step.host}: ${e.step.name}`;
        break;
      }
      case 'step-end': {
        if (e.step.item !== undefined) {
          const mark = e.status === 'failed' ? '✖' : e.status === 'changed' ? '✔' : '·';
          this.later(() => this.print(`  ${mark} [${e.step.item}] ${e.step.host}: ${e.step.name} ${e.status} (${e.durationMs} ms)${e.error ? ` — ${e.error.split('\n')[0]}` : ''}`));
          break;
        }
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
        if (e.item !== undefined) break;
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
      let markStarted!: (t: Wrapper) => void;
      const started = new Promise<Wrapper>((r) => (markStarted = r));
      const h: HostTask = { resolve, started, markStarted, items: 0, durationMs: 0 };
      (h as HostTask & { done: Promise<void> }).done = done;
      group.set(host, h);
    }
    this.hosts = group;
    let groupStarted!: (t: Wrapper) => void;
    this.group = new Promise<Wrapper>((r) => (groupStarted = r));
    const list = new Listr(
      [
        {
          title: name,
          task: (_ctx, task) => {
            groupStarted(task);
            return task.newListr(
              [...group.entries()].map(([host, h]) => ({
                title: host,
                task: async (_c: unknown, t: Wrapper) => {
                  h.task = t;
                  h.markStarted(t);
                  await (h as HostTask & { done: Promise<void> }).done;
                  const took = `(${h.durationMs} ms${h.items > 1 ? `, ${h.items} items` : ''})`;
                  if (h.status === 'failed') throw new Error(`${host}: ${h.error ?? 'failed'}`);
                  if (h.status === 'skipped' || !h.status) return t.skip(`${host}: skipped`);
                  t.title = `${host}: ${h.status} ${took}`;
                },
              })),
              { concurrent: true, exitOnError: false },
            );
          },
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
