import { describe, expect, it } from 'vitest';
import { outageWindows, totalOutageMs } from '../../src/drill/outage.js';
import type { ProbeSample } from '../../src/drill/probe.js';

const s = (t: number, ok: boolean, ms = 5): ProbeSample => ({ t, ok, ms });

describe('outage windows', () => {
  it('none when every read succeeded', () => {
    expect(outageWindows([s(0, true), s(50, true)])).toEqual([]);
  });

  it('from the first failed read to the first good one after it', () => {
    const w = outageWindows([s(0, true), s(50, false), s(100, false), s(150, true), s(200, true), s(250, false, 2000), s(2300, true)]);
    expect(w).toEqual([
      { start: 50, end: 150, ms: 100, failedReads: 2, open: false },
      { start: 250, end: 2300, ms: 2050, failedReads: 1, open: false },
    ]);
    expect(totalOutageMs(w)).toBe(2150);
  });

  it('a window still open at the end is reported open, up to the end of the last failed read', () => {
    const w = outageWindows([s(0, true), s(50, false, 10), s(100, false, 30)]);
    expect(w).toEqual([{ start: 50, end: 130, ms: 80, failedReads: 2, open: true }]);
  });
});
