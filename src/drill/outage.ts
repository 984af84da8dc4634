import type { ProbeSample } from './probe.js';

/** A time the client could not read: from the start of its first failed read to the start of the next good one. */
export interface OutageWindow {
  start: number;
  end: number;
  ms: number;
  failedReads: number;
  /** The window was still open when probing stopped. */
  open: boolean;
}

export function outageWindows(samples: ProbeSample[]): OutageWindow[] {
  const windows: OutageWindow[] = [];
  let current: OutageWindow | undefined;
  for (const s of samples) {
    if (!s.ok) {
      current ??= { start: s.t, end: s.t, ms: 0, failedReads: 0, open: true };
      current.failedReads++;
      current.end = s.t + s.ms;
    } else if (current) {
      current.end = s.t;
      current.ms = current.end - current.start;
      current.open = false;
      windows.push(current);
      current = undefined;
    }
  }
  if (current) {
    current.ms = current.end - current.start;
    windows.push(current);
  }
  return windows;
}

export function totalOutageMs(windows: OutageWindow[]): number {
  return windows.reduce((n, w) => n + w.ms, 0);
}
