import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { notBackOf, outageWindows, totalOutageMs } from '../../src/drill/outage.js';
import { AgentProbe } from '../../src/drill/tcp-probe.js';
import { ProbeLoop, type ProbeSample } from '../../src/drill/probe.js';

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

describe('a probe not back at the end', () => {
  it('still failing when probing stopped: not back, naming how long after the playbooks and the last error', () => {
    const samples = [s(0, true), s(50, false), { t: 2000, ok: false, ms: 5, error: 'ECONNREFUSED' }];
    expect(notBackOf(samples, outageWindows(samples), 1000).notBack).toBe('still failing when probing stopped (2 failed reads in a row, the last 1 s after the last playbook ended): ECONNREFUSED');
  });

  it('one failed read at the very end after good ones (a read that timed out as probing stopped): a blip, not "not back"', () => {
    const samples = [s(0, true), s(1050, false), s(1100, true), s(1150, true), s(1200, false)];
    expect(notBackOf(samples, outageWindows(samples), 1000)).toEqual({});
  });

  it('no read after the last playbook ended: not back, the probe stopped', () => {
    const samples = [s(0, true), s(50, true)];
    expect(notBackOf(samples, outageWindows(samples), 1000).notBack).toMatch(/^no read after the last playbook ended: the probe stopped/);
  });

  it('read well after an outage: back', () => {
    const samples = [s(0, true), s(1050, false), s(1100, true)];
    expect(notBackOf(samples, outageWindows(samples), 1000)).toEqual({});
  });

  it("a probe helper that dies mid-drill leaves a failed read at its end, so the drill cannot read as all well", async () => {
    const ended = path.join(mkdtempSync(path.join(os.tmpdir(), 'baton-probe-end-')), 'ended');
    const helper = `let n=0; setInterval(() => { console.log(JSON.stringify({ t: Date.now(), ok: true, ms: 1 })); if (++n === 4) { console.error("TypeError: boom"); require("fs").writeFileSync(${JSON.stringify(ended)}, ""); process.exit(1); } }, 20);`;
    const p = new AgentProbe([process.execPath, '-e', helper]);
    p.start();
    // Until the helper is gone (its start alone takes a while on a loaded machine), then a moment for its exit to be seen.
    for (let i = 0; i < 200 && !existsSync(ended); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    rmSync(path.dirname(ended), { recursive: true, force: true });
    const samples = await p.stop();
    expect(samples.slice(0, 4).every((x) => x.ok)).toBe(true);
    expect(samples.at(-1)).toMatchObject({ ok: false, probeEnded: true, error: 'the probe helper ended (exit 1): TypeError: boom' });
    expect(notBackOf(samples, outageWindows(samples), samples[3]!.t + 1).notBack).toBe('the probe stopped reading before the drill ended: the probe helper ended (exit 1): TypeError: boom');
  });
});

describe('the drill clock', () => {
  it('a wall-clock step back of 2 s during the outage (NTP) neither shortens the window nor makes a read take negative time', async () => {
    const real = Date.now.bind(Date);
    let stepped = false;
    let n = 0;
    const loop = new ProbeLoop(async () => {
      n++;
      if (n === 3) stepped = true; // the controller's clock is set back mid-outage
      await new Promise((r) => setTimeout(r, 5));
      return { ok: n < 2 || n > 5 };
    }, 20);
    const spy = vi.spyOn(Date, 'now').mockImplementation(() => real() - (stepped ? 2000 : 0));
    try {
      loop.start();
      while (n < 8) await new Promise((r) => setTimeout(r, 10));
      const samples = await loop.stop();
      for (let i = 1; i < samples.length; i++) expect(samples[i]!.t).toBeGreaterThanOrEqual(samples[i - 1]!.t);
      expect(samples.every((x) => x.ms >= 0)).toBe(true);
      const [w] = outageWindows(samples);
      // Four failed reads 20 ms apart: the window is ~80 ms, not ~80 - 2000.
      expect(w!.ms).toBeGreaterThanOrEqual(60);
      expect(w!.ms).toBeLessThan(1000);
    } finally {
      spy.mockRestore();
    }
  });
});
