/**
 * When each step ran on each host, from engine events: the bars of a drill's timeline. Times
 * are ms since the epoch, as the probes' samples are, so both share one axis.
 */
import { drillNow } from './clock.js';
import type { EngineEvent, StepRef, StepStatus } from '../engine/events.js';

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
    private readonly now: () => number = drillNow,
    /** Error texts pass through the run's redactor before they are kept. */
    private readonly redact: (s: string) => string = (s) => s,
  ) {}

  onEvent(e: EngineEvent): void {
    switch (e.type) {
      case 'play-start':
        this.titles.set(`${this.playbook}:${e.play}`, e.name);
        break;
      case 'step-start':
        // On the drill's clock, as the probes' samples are (the event's own time is the wall's).
        this.open.set(`s:${e.step.instance}@${e.step.host}`, this.now());
        break;
      case 'step-end':
        this.close(`s:${e.step.instance}@${e.step.host}`, e.step, e.durationMs, e.step.name, e.status === 'failed' && e.ignored ? 'ok' : e.status, e.error);
        break;
      case 'revert-start':
        this.open.set(`r:${e.step.instance}@${e.step.host}`, this.now());
        break;
      case 'revert-end':
        this.close(`r:${e.step.instance}@${e.step.host}`, e.step, e.durationMs, `revert: ${e.step.name}`, e.ok ? 'reverted' : 'revert-failed', e.error);
        break;
      default:
        break;
    }
  }

  /** A step (or revert) ended: its bar runs from when it started (or its duration back) to now. */
  private close(key: string, step: StepRef, durationMs: number, name: string, status: BarStatus, error?: string): void {
    const end = this.now();
    const start = this.open.get(key) ?? end - durationMs;
    this.open.delete(key);
    this.bars.push({
      playbook: this.playbook,
      playName: this.titles.get(`${this.playbook}:${step.play}`) ?? step.playName,
      host: step.host,
      name,
      kind: step.kind,
      start,
      end: Math.max(end, start),
      status,
      ...(error ? { error: this.redact(error) } : {}),
    });
  }
}
