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

/** A window's start and end in ms from `origin` (the drill's start), for reports. */
export function relativeWindow(w: OutageWindow, origin: number): { startMs: number; endMs: number } {
  return { startMs: w.start - origin, endMs: w.end - origin };
}

/** The longest single window: what `--max-outage` is compared with is the total, this is for the summary. */
export function longestOutageMs(windows: OutageWindow[]): number {
  return windows.reduce((n, w) => Math.max(n, w.ms), 0);
}

/**
 * `--max-outage`: `5s`, `1500ms`, `1.5s`, `2m`, or a bare number of ms. Returns ms, or
 * undefined when the text is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  return Math.round(unit === 'ms' ? n : unit === 's' ? n * 1000 : n * 60_000);
}

/**
 * The client is back when a probe read after the last playbook ended and it does not end failing.
 * An open window is an outage with no end: its length says nothing about the service, which may
 * stay down for good, so --max-outage cannot pass it. One failed read at the very end (a read
 * that timed out as probing stopped) is a blip, counted in the outage, not "not back".
 */
export function notBackOf(samples: ProbeSample[], windows: OutageWindow[], playbooksEnd: number): { notBack?: string } {
  const after = samples.filter((s) => s.t >= playbooksEnd);
  if (!after.length) {
    const last = samples[samples.length - 1];
    return { notBack: `no read after the last playbook ended: the probe stopped${last?.error ? ` (${last.error})` : ''}` };
  }
  const lastSample = samples[samples.length - 1]!;
  if (lastSample.probeEnded) return { notBack: `the probe stopped reading before the drill ended: ${lastSample.error ?? 'its helper ended'}` };
  const open = windows[windows.length - 1];
  if (open?.open && open.failedReads >= 2) {
    const lastRead = after[after.length - 1]!;
    const why = after.filter((s) => !s.ok).pop()?.error;
    const s = Math.round((lastRead.t + lastRead.ms - playbooksEnd) / 100) / 10;
    return { notBack: `still failing when probing stopped (${open.failedReads} failed reads in a row, the last ${s} s after the last playbook ended)${why ? `: ${why}` : ''}` };
  }
  return {};
}
