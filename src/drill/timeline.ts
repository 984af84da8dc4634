/**
 * When each step ran on each host, from engine events: the bars of a drill's timeline. Times
 * are ms since the epoch, as the probes' samples are, so both share one axis.
 */
import type { EngineEvent, StepStatus } from '../engine/events.js';

export type BarStatus = Exclude<StepStatus, 'would-change'> | 'would-change' | 'reverted' | 'revert-failed';

export interface StepBar {
  /** Which playbook of the drill (0: the playbook, 1: --then). */
  playbook: number;
  playName: string;
  host: string;
  name: string;
  kind: string;
  start: number;
  end: number;
  status: BarStatus;
  error?: string;
}

export class TimelineCollector {
  readonly bars: StepBar[] = [];
  private readonly open = new Map<string, number>();
  /** Rendered play titles from play-start (a StepRef's playName is the unrendered template). */
  private readonly titles = new Map<string, string>();
  playbook = 0;

  constructor(
    private readonly now: () => number = Date.now,
    /** Error texts pass through the run's redactor before they are kept. */
    private readonly redact: (s: string) => string = (s) => s,
  ) {}

  onEvent(e: EngineEvent): void {
    switch (e.type) {
      case 'play-start':
        this.titles.set(`${this.playbook}:${e.play}`, e.name);
        break;
      case 'step-start':
        this.open.set(`s:${e.step.instance}@${e.step.host}`, e.at);
        break;
      case 'step-end': {
        const key = `s:${e.step.instance}@${e.step.host}`;
        const end = this.now();
        const start = this.open.get(key) ?? end - e.durationMs;
        this.open.delete(key);
        this.bars.push({
          playbook: this.playbook,
          playName: this.titles.get(`${this.playbook}:${e.step.play}`) ?? e.step.playName,
          host: e.step.host,
          name: e.step.name,
          kind: e.step.kind,
          start,
          end: Math.max(end, start),
          status: e.status === 'failed' && e.ignored ? 'ok' : e.status,
          ...(e.error ? { error: this.redact(e.error) } : {}),
        });
        break;
      }
      case 'revert-start':
        this.open.set(`r:${e.step.instance}@${e.step.host}`, this.now());
        break;
      case 'revert-end': {
        const key = `r:${e.step.instance}@${e.step.host}`;
        const end = this.now();
        const start = this.open.get(key) ?? end - e.durationMs;
        this.open.delete(key);
        this.bars.push({
          playbook: this.playbook,
          playName: this.titles.get(`${this.playbook}:${e.step.play}`) ?? e.step.playName,
          host: e.step.host,
          name: `revert: ${e.step.name}`,
          kind: e.step.kind,
          start,
          end,
          status: e.ok ? 'reverted' : 'revert-failed',
          ...(e.error ? { error: this.redact(e.error) } : {}),
        });
        break;
      }
      default:
        break;
    }
  }
}
