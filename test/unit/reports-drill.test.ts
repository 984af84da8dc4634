/**
 * The drill's pure parts and its reports: XML escaping, the JUnit structure (from engine
 * events), outage windows at their edges, the data check, --probe parsing, the HTML report.
 */
import { describe, expect, it } from 'vitest';
import { escapeAttr, escapeText } from '../../src/report/xml.js';
import { JunitCollector, renderJunit } from '../../src/report/junit.js';
import { renderDrillHtml } from '../../src/report/html.js';
import { Redactor } from '../../src/engine/redact.js';
import type { EngineEvent, StepRef } from '../../src/engine/events.js';
import { outageWindows, parseDuration, totalOutageMs } from '../../src/drill/outage.js';
import { checkIntegrity } from '../../src/drill/integrity.js';
import { nfsCatArgv, parseProbeSpec } from '../../src/drill/spec.js';
import { tcpAgentArgv, TCP_AGENT } from '../../src/drill/tcp-probe.js';
import { TimelineCollector } from '../../src/drill/timeline.js';
import { directionOf, formatDrillSummary, probePhases, probesSuite, type DrillPlaybookResult, type DrillReport } from '../../src/drill/report.js';
import type { ProbeSample } from '../../src/drill/probe.js';

const s = (t: number, ok: boolean, ms = 5, sha256?: string): ProbeSample => ({ t, ok, ms, ...(sha256 ? { sha256 } : {}) });

describe('XML escaping', () => {
  it('escapes markup in text and quotes, newlines and tabs in attributes', () => {
    expect(escapeText(`a<b>&"c'`)).toBe(`a&lt;b&gt;&amp;"c'`);
    expect(escapeAttr(`x="1" & y<2\nnext\tcol`)).toBe('x=&quot;1&quot; &amp; y&lt;2&#10;next&#9;col');
    expect(escapeAttr("it's")).toBe('it&#39;s');
  });

  it('replaces characters XML 1.0 cannot carry (NUL, ESC, lone surrogates) instead of writing an unreadable file', () => {
    expect(escapeText('\u001b[31mred\u0000')).toBe('\uFFFD[31mred\uFFFD');
    expect(escapeText('x\uD800y')).toBe('x\uFFFDy');
    expect(escapeText('ok \uD83D\uDE00')).toBe('ok \uD83D\uDE00');
    expect(escapeText('tab\tnl\ncr\r')).toBe('tab\tnl\ncr\r');
  });
});

const ref = (play: number, playName: string, name: string, host: string, i = 0): StepRef => ({
  play,
  playName,
  stepId: `p${play}.s${i}`,
  instance: `p${play}.s${i}`,
  name,
  kind: 'command',
  host,
  tags: [],
});

function events(): EngineEvent[] {
  const a = ref(0, 'take <over>', 'raise "vip" & garp', 'n2', 0);
  const b = ref(0, 'take <over>', 'export', 'n2', 1);
  const c = ref(0, 'take <over>', 'notify', 'n2', 2);
  return [
    { type: 'play-start', play: 0, name: 'take <over>', hosts: ['n2'] },
    { type: 'step-start', step: a, at: 1000 },
    { type: 'step-end', step: a, status: 'changed', durationMs: 1250 },
    { type: 'step-start', step: b, at: 2300 },
    { type: 'step-end', step: b, status: 'failed', durationMs: 40, error: 'n2: `dbus-send …` exited 1: password hunter2 rejected\nsecond line' },
    { type: 'step-start', step: c, at: 2400 },
    { type: 'step-end', step: c, status: 'skipped', durationMs: 0, reason: 'when: false' },
    { type: 'rollback-start', reason: 'export failed', count: 1 },
    { type: 'revert-start', step: a },
    { type: 'revert-end', step: a, ok: true, durationMs: 300 },
    { type: 'rollback-end', complete: true },
    { type: 'play-end', play: 0 },
  ];
}

describe('JUnit from engine events', () => {
  const redactor = new Redactor();
  redactor.add('hunter2');

  it('a suite per play, a case per step and host with classname play/host, failure redacted, skipped, reverts', () => {
    const j = new JunitCollector({ redactor, now: () => 0 });
    for (const e of events()) j.onEvent(e);
    expect(j.suites).toHaveLength(1);
    const [suite] = j.suites;
    expect(suite!.name).toBe('take <over>');
    expect(suite!.cases.map((c) => [c.classname, c.name, c.timeMs])).toEqual([
      ['take <over>/n2', 'raise "vip" & garp', 1250],
      ['take <over>/n2', 'export', 40],
      ['take <over>/n2', 'notify', 0],
      ['take <over>/n2', 'revert: raise "vip" & garp', 300],
    ]);
    expect(suite!.cases[1]!.failure!.message).not.toContain('hunter2');
    expect(suite!.cases[2]!.skipped).toBe('when: false');

    const xml = renderJunit(j.suites, 'run');
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="run" tests="4" failures="1" errors="0" time="1.590">/);
    expect(xml).toContain('<testsuite name="take &lt;over&gt;" id="0"');
    expect(xml).toContain('<testcase classname="take &lt;over&gt;/n2" name="raise &quot;vip&quot; &amp; garp" time="1.250">');
    // The message is the first line, the body all of it; the secret is in neither.
    expect(xml).toMatch(/<failure message="n2: `dbus-send …` exited 1: password \S+ rejected" type="StepFailed">[^<]*second line<\/failure>/);
    expect(xml).not.toContain('hunter2');
    expect(xml).toContain('<skipped message="when: false"/>');
    expect(xml.trimEnd().endsWith('</testsuites>')).toBe(true);
  });

  it('one suite of a given name for a whole playbook (a drill), and an error case when the run stopped before any step', () => {
    const j = new JunitCollector({ redactor, suiteName: 'pb.yml (playbook)', now: () => 0 });
    for (const e of events()) j.onEvent(e);
    j.onEvent({ type: 'play-start', play: 1, name: 'second', hosts: ['n1'] });
    expect(j.suites.map((x) => x.name)).toEqual(['pb.yml (playbook)']);
    const k = new JunitCollector({ redactor, now: () => 0 });
    k.addError('pb.yml', 'cannot reach 1 host(s): n1: ECONNREFUSED (hunter2)', 'BatonError');
    const xml = renderJunit(k.suites);
    expect(xml).toContain('<error message="cannot reach 1 host(s): n1: ECONNREFUSED (');
    expect(xml).not.toContain('hunter2');
    expect(xml).toMatch(/errors="1"/);
  });

  it('classnames use the play title as play-start rendered it, not the template a StepRef carries', () => {
    const j = new JunitCollector({ redactor, now: () => 0 });
    const tl = new TimelineCollector(() => 5);
    const a = ref(0, 'release on {{ from }}', 'lower', 'n1');
    const evs: EngineEvent[] = [
      { type: 'play-start', play: 0, name: 'release on n1', hosts: ['n1'] },
      { type: 'step-start', step: a, at: 1 },
      { type: 'step-end', step: a, status: 'ok', durationMs: 4 },
    ];
    for (const e of evs) {
      j.onEvent(e);
      tl.onEvent(e);
    }
    expect(j.suites[0]!.cases[0]!.classname).toBe('release on n1/n1');
    expect(tl.bars[0]!.playName).toBe('release on n1');
  });

  it("a step's bar starts on the drill's clock, not at the event's wall-clock time (NTP may step it)", () => {
    let t = 1000;
    const tl = new TimelineCollector(() => t);
    const a = ref(0, 'p', 'lower', 'n1');
    tl.onEvent({ type: 'step-start', step: a, at: 1000 - 2000 });
    t = 1250;
    tl.onEvent({ type: 'step-end', step: a, status: 'ok', durationMs: 250 });
    expect([tl.bars[0]!.start, tl.bars[0]!.end]).toEqual([1000, 1250]);
  });

  it('properties come before test cases, and an empty property list is left out', () => {
    const xml = renderJunit([
      { name: 'probes', timestamp: 0, cases: [{ classname: 'probes/c1', name: 'tcp://x:1', timeMs: 0 }], properties: { outage_ms: 12 } },
      { name: 'empty', timestamp: 0, cases: [] },
    ]);
    expect(xml.indexOf('<properties>')).toBeLessThan(xml.indexOf('<testcase'));
    expect(xml).toContain('<property name="outage_ms" value="12"/>');
    expect(xml.match(/<properties>/g)).toHaveLength(1);
    expect(xml).toContain('timestamp="1970-01-01T00:00:00"');
  });
});

describe('outage windows: edges', () => {
  it('no samples, no windows', () => {
    expect(outageWindows([])).toEqual([]);
    expect(totalOutageMs([])).toBe(0);
  });

  it('failing from the first read: the window starts at the first read', () => {
    expect(outageWindows([s(0, false, 300), s(300, false, 300), s(600, true)])).toEqual([{ start: 0, end: 600, ms: 600, failedReads: 2, open: false }]);
  });

  it('a single failed read between good ones, and back-to-back windows', () => {
    const w = outageWindows([s(0, true), s(50, false), s(100, true), s(150, false), s(200, true)]);
    expect(w.map((x) => [x.start, x.end, x.ms, x.failedReads])).toEqual([
      [50, 100, 50, 1],
      [150, 200, 50, 1],
    ]);
    expect(totalOutageMs(w)).toBe(100);
  });

  it('every read failed: one open window, to the end of the last read', () => {
    expect(outageWindows([s(10, false, 300), s(310, false, 300)])).toEqual([{ start: 10, end: 610, ms: 600, failedReads: 2, open: true }]);
  });

  it('durations for --max-outage', () => {
    expect([parseDuration('5s'), parseDuration('1500ms'), parseDuration('1.5s'), parseDuration('2m'), parseDuration('40'), parseDuration('1ms')]).toEqual([5000, 1500, 1500, 120_000, 40, 1]);
    expect(parseDuration('5 minutes')).toBeUndefined();
    expect(parseDuration('-1s')).toBeUndefined();
  });
});

describe('data check', () => {
  it('the same bytes before, during and after: ok', () => {
    const r = checkIntegrity([s(0, true, 5, 'A'), s(50, false), s(100, true, 5, 'A'), s(200, true, 5, 'A')], 40, 150);
    expect(r).toEqual({ ok: true, before: 'A', after: 'A', mismatches: 0 });
  });

  it('a read in between with other bytes fails, saying when', () => {
    const r = checkIntegrity([s(0, true, 5, 'A'), s(100, true, 5, 'B'), s(200, true, 5, 'A')], 40, 150);
    expect(r).toMatchObject({ ok: false, before: 'A', after: 'A', mismatches: 1, firstMismatchAt: 100 });
  });

  it('no good read before the playbook, or none after: not ok, with the reason', () => {
    expect(checkIntegrity([s(0, false), s(200, true, 5, 'A')], 40, 150)).toMatchObject({ ok: false, reason: expect.stringMatching(/before/) });
    expect(checkIntegrity([s(0, true, 5, 'A'), s(200, false)], 40, 150)).toMatchObject({ ok: false, reason: expect.stringMatching(/after/) });
  });
});

describe('--probe', () => {
  it('nfs and tcp URLs, argv from a namespace', () => {
    const nfs = parseProbeSpec('nfs://198.18.90.200/disk1/probe.bin?version=4');
    expect(nfs).toEqual({ kind: 'nfs', label: 'nfs://198.18.90.200/disk1/probe.bin?version=4', url: 'nfs://198.18.90.200/disk1/probe.bin?version=4', host: '198.18.90.200', path: '/disk1/probe.bin', version: 4 });
    expect(nfsCatArgv(nfs as Extract<typeof nfs, { kind: 'nfs' }>, 'baton-drills-c1')).toEqual(['ip', 'netns', 'exec', 'baton-drills-c1', 'nfs-cat', 'nfs://198.18.90.200/disk1/probe.bin?version=4']);
    expect(parseProbeSpec('tcp://[fd00::1]:2049')).toEqual({ kind: 'tcp', label: 'tcp://[fd00::1]:2049', host: 'fd00::1', port: 2049 });
    expect(tcpAgentArgv({ host: 'h', port: 2049, intervalMs: 50, connectTimeoutMs: 300, netns: 'ns' }, '/usr/bin/node')).toEqual(['ip', 'netns', 'exec', 'ns', '/usr/bin/node', TCP_AGENT, 'h', '2049', '50', '300']);
  });

  it.each([
    ['http://x/y', /unknown scheme/],
    ['tcp://x', /needs a port/],
    ['nfs://x/', /reads a file/],
    ['nfs://x/a?version=2', /version must be 3 or 4/],
    ['nfs://x/a?vers=4', /unknown parameter/],
    ['not a url', /not a URL/],
  ])('%s is refused as invalid input (exit 2)', (text, why) => {
    expect(() => parseProbeSpec(text)).toThrow(why);
    try {
      parseProbeSpec(text);
    } catch (e) {
      expect((e as { exitCode: number }).exitCode).toBe(2);
    }
  });
});

function report(): DrillReport {
  const t0 = 1_700_000_000_000;
  let now = t0 + 1000;
  const tl = new TimelineCollector(() => now);
  const a = ref(0, 'release', 'lower <vip> & "go"', 'n1<script>');
  tl.onEvent({ type: 'step-start', step: a, at: t0 + 1000 });
  now = t0 + 1500;
  tl.onEvent({ type: 'step-end', step: a, status: 'changed', durationMs: 500 });
  const samples = [s(t0, true, 5, 'A'), s(t0 + 1100, false, 300), s(t0 + 1400, false, 300), s(t0 + 1800, true, 5, 'A')];
  const windows = outageWindows(samples);
  return {
    type: 'drill',
    startedAt: t0,
    endedAt: t0 + 2000,
    verdict: 'fail',
    exitCode: 1,
    reasons: ['nfs://v/a: outage 700 ms exceeds --max-outage 1 ms'],
    maxOutageMs: 1,
    intervalMs: 50,
    playbooks: [{ role: 'playbook', file: 'playbooks/<x>.yml', extraVars: { from: 'n1' }, outcome: 'succeeded', exitCode: 0, start: t0 + 1000, end: t0 + 1500 }],
    probes: [
      { label: 'nfs://v/a?version=4&x="1"', kind: 'nfs', from: 'c1', reads: 4, failed: 2, samples, windows, totalOutageMs: totalOutageMs(windows), integrity: checkIntegrity(samples, t0 + 1000, t0 + 1500), outageOverLimit: true },
    ],
    bars: tl.bars,
  };
}

describe('drill reports', () => {
  it('the timeline records a step from its start event to its end', () => {
    expect(report().bars).toEqual([{ playbook: 0, playName: 'release', host: 'n1<script>', name: 'lower <vip> & "go"', kind: 'command', start: 1_700_000_001_000, end: 1_700_000_001_500, status: 'changed' }]);
  });

  it('HTML: self-contained, the timeline parts with their hooks, names escaped', () => {
    const html = renderDrillHtml(report());
    expect(html).not.toMatch(/<script|<link|src=|href=|url\(/i);
    expect(html).toMatch(/<svg id="timeline"/);
    expect(html.match(/class="lane"/g)).toHaveLength(1);
    // The only step is also its host's slowest.
    expect(html.match(/class="step-bar changed slowest"/g)).toHaveLength(1);
    expect(html.match(/class="probe-strip"/g)).toHaveLength(1);
    expect(html.match(/class="tick ok"/g)).toHaveLength(2);
    expect(html.match(/class="tick failed"/g)).toHaveLength(2);
    expect(html).toContain('<g class="outage" data-probe="nfs://v/a?version=4&amp;x=&quot;1&quot;" data-ms="700" data-start="1100" data-end="1800">');
    expect(html).toContain('>700 ms<');
    expect(html).toContain('data-host="n1&lt;script&gt;"');
    expect(html).toContain('lower &lt;vip&gt; &amp; &quot;go&quot;');
    expect(html).toContain('<title>Drill FAILED: playbooks/&lt;x&gt;.yml from=n1</title>');
    expect(html).toMatch(/<table id="windows">[\s\S]*1\.100 s<\/td><td>1\.800 s<\/td><td>700 ms/);
  });

  it('the probes suite fails a probe over the limit and carries the outage as properties', () => {
    const suite = probesSuite(report());
    expect(suite.properties).toMatchObject({ outage_ms: 700, max_outage_ms: 1, 'probe.0.outage_ms': 700 });
    expect(suite.cases).toHaveLength(1);
    expect(suite.cases[0]).toMatchObject({ classname: 'probes/c1', name: 'nfs://v/a?version=4&x="1"', failure: { message: 'outage 700 ms exceeds --max-outage 1 ms' } });
  });

  it('the human summary lists reads, windows relative to the start, the data check and the verdict', () => {
    const text = formatDrillSummary(report());
    expect(text).toContain('2 failed, outage 700 ms in 1 window(s) — OVER the limit of 1 ms');
    expect(text).toContain('1.100 s → 1.800 s  700 ms, 2 failed read(s)');
    expect(text).toContain('data: same bytes before, during and after');
    expect(text).toContain('drill FAILED (exit 1):');
  });
});

/**
 * A failover n1→n2 and its failback n2→n1 (--then), each with its own client outage: what the
 * reports must tell apart.
 */
function twoWay(): DrillReport {
  const t0 = 1_800_000_000_000;
  let now = t0;
  const tl = new TimelineCollector(() => now);
  const step = (playbook: number, host: string, name: string, i: number, at: number, ms: number) => {
    tl.playbook = playbook;
    const r = ref(0, 'move', name, host, i);
    now = t0 + at;
    tl.onEvent({ type: 'step-start', step: r, at: t0 + at });
    now = t0 + at + ms;
    tl.onEvent({ type: 'step-end', step: r, status: 'changed', durationMs: ms });
  };
  step(0, 'n1', 'lower the VIP', 0, 1000, 40);
  step(0, 'n1', 'stop exporting /srv/disk1 over NFS', 1, 1040, 900);
  step(0, 'n2', 'export /srv/disk1', 2, 1950, 300);
  step(0, 'n2', 'raise the VIP', 3, 2250, 60);
  step(1, 'n2', 'lower the VIP', 4, 6000, 50);
  step(1, 'n1', 'raise the VIP', 5, 6100, 1200);
  const samples = [s(t0, true, 5, 'A'), s(t0 + 1050, false, 300), s(t0 + 2400, true, 5, 'A'), s(t0 + 4000, true, 5, 'A'), s(t0 + 6050, false, 300), s(t0 + 7400, true, 5, 'A')];
  const windows = outageWindows(samples);
  const playbooks: DrillPlaybookResult[] = [
    { role: 'playbook', file: 'playbooks/nfs-switchover.yml', extraVars: { from: 'n1', to: 'n2' }, outcome: 'succeeded', exitCode: 0, start: t0 + 1000, end: t0 + 2310 },
    { role: 'then', file: 'playbooks/nfs-switchover.yml', extraVars: { from: 'n2', to: 'n1' }, outcome: 'succeeded', exitCode: 0, start: t0 + 6000, end: t0 + 7300 },
  ];
  return {
    type: 'drill',
    startedAt: t0,
    endedAt: t0 + 8000,
    verdict: 'pass',
    exitCode: 0,
    reasons: [],
    intervalMs: 50,
    thenAfterMs: 2000,
    playbooks,
    probes: [{ label: 'nfs://v/a', kind: 'nfs', reads: 6, failed: 2, samples, windows, totalOutageMs: totalOutageMs(windows), outageOverLimit: false, perPlaybook: probePhases(playbooks, windows) }],
    bars: tl.bars,
  };
}

describe('drill with --then: one outage window per direction', () => {
  it('what moved where comes from the extra vars', () => {
    expect(directionOf({ extraVars: { from: 'n1', to: 'n2' } })).toBe('n1 → n2');
    expect(directionOf({ extraVars: { on: 'n1' } })).toBe('on n1');
    expect(directionOf({ extraVars: { group: 'g1', node: 'n3' } })).toBe('group=g1 node=n3');
    expect(directionOf({ extraVars: {} })).toBe('');
  });

  it('each window belongs to the playbook that had started when it opened; one before any playbook belongs to none', () => {
    const r = twoWay();
    expect(r.probes[0]!.perPlaybook).toEqual([
      { role: 'playbook', direction: 'n1 → n2', windows: [0], outageMs: 1350 },
      { role: 'then', direction: 'n2 → n1', windows: [1], outageMs: 1350 },
    ]);
    const early = outageWindows([s(0, false), s(50, true), s(1100, false), s(1200, true)]);
    expect(probePhases(r.playbooks.slice(0, 1).map((p) => ({ ...p, start: 1000 })), early)).toEqual([{ role: 'playbook', direction: 'n1 → n2', windows: [1], outageMs: 100 }]);
  });

  it('JUnit: the outage of each direction as properties, each window saying during which', () => {
    const suite = probesSuite(twoWay());
    expect(suite.properties).toMatchObject({ 'probe.0.playbook.outage_ms': 1350, 'probe.0.playbook.windows': 1, 'probe.0.then.outage_ms': 1350, 'probe.0.then.windows': 1, then_after_ms: 2000 });
    const out = suite.cases[0]!.systemOut!;
    expect(out).toContain('window 1.050 s → 2.400 s: 1350 ms, during playbook (n1 → n2)');
    expect(out).toContain('window 6.050 s → 7.400 s: 1350 ms, during then (n2 → n1)');
  });

  it('the summary names each move and the move during which each window opened', () => {
    const text = formatDrillSummary(twoWay());
    expect(text).toContain('playbook playbooks/nfs-switchover.yml n1 → n2: succeeded');
    expect(text).toContain('then     playbooks/nfs-switchover.yml n2 → n1: succeeded');
    expect(text).toContain('1.050 s → 2.400 s  1350 ms, 1 failed read(s), during playbook (n1 → n2)');
    expect(text).toContain('6.050 s → 7.400 s  1350 ms, 1 failed read(s), during then (n2 → n1)');
  });

  it('HTML: the header says what moved where; windows carry their direction; bars are labelled where the name fits; the slowest step of each host is called out', () => {
    const html = renderDrillHtml(twoWay());
    expect(html).toContain('<h1 class="pass">Drill PASSED: playbooks/nfs-switchover.yml n1 → n2, then playbooks/nfs-switchover.yml n2 → n1</h1>');
    expect(html).toMatch(/<tr class="move" data-role="playbook">.*<td class="direction">n1 → n2<\/td>.*<td class="outage-cell">1350 ms in 1 window\(s\)<\/td>/);
    expect(html).toMatch(/<tr class="move" data-role="then">.*<td class="direction">n2 → n1<\/td>.*after the client read well again/);
    expect([...html.matchAll(/<g class="outage"[^>]*data-during="([^"]+)"/g)].map((m) => m[1])).toEqual(['playbook (n1 → n2)', 'then (n2 → n1)']);
    // 1200 ms over an 8 s span is ~136 px: room for the name; 900 ms (~102 px) for the start of
    // a long one; 40 ms (~5 px) for none.
    const labels = [...html.matchAll(/<text class="bar-label"[^>]*>([^<]+)<\/text>/g)].map((m) => m[1]);
    expect(labels).toContain('raise the VIP');
    expect(labels.filter((l) => /^stop exporting .*…$/.test(l!))).toHaveLength(1);
    expect(labels).not.toContain('lower the VIP');
    const slow = [...html.matchAll(/<rect class="step-bar changed slowest"[^>]*data-host="([^"]+)" data-step="([^"]+)" data-ms="(\d+)"/g)].map((m) => [m[1], m[2], Number(m[3])]);
    expect(slow).toEqual([
      ['n1', 'raise the VIP', 1200],
      ['n2', 'export /srv/disk1', 300],
    ]);
    expect(html).toContain('>slowest: raise the VIP 1200 ms<');
    expect(html).toContain('1200 ms (slowest on n1)');
  });
});
