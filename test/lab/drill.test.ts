/**
 * `baton drill` in the lab, as a CI pipeline runs it: the NFS service is switched over n1→n2 and
 * back while a lab client reads a file through the VIP and connects to port 2049. What a
 * pipeline relies on is checked: the exit code, the reported outage windows against the raw
 * probe samples, the JUnit file against an XSD, the HTML report in a real browser. Root only.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { baton, clientWrite, clusterState, vipHolders, diskHolders } from '../helpers/nfs-service.js';
import { attrOf, elementsWithClass, openInChromium, requireReportTools, validateJunit } from '../helpers/reports.js';
import { outageWindows, totalOutageMs } from '../../src/drill/outage.js';
import type { DrillReport } from '../../src/drill/report.js';

const PB = (name: string) => path.resolve('playbooks', name);
const PROBE = '/disk1/probe.bin';

let lab: Lab | undefined;
let state: string;
let out: string;
let probeSha: string;

function L(): Lab {
  if (!lab) throw new Error('the lab did not come up (see beforeAll)');
  return lab;
}

/** The switchover and its failback as one drill, with both probes from the lab client. */
function drillArgs(tag: string, ...extra: string[]): string[] {
  const l = L();
  return [
    'drill', PB('nfs-switchover.yml'), '-i', l.inventoryPath, '-e', 'from=n1', '-e', 'to=n2',
    '--then', PB('nfs-switchover.yml'), '--then-e', 'from=n2', '--then-e', 'to=n1',
    '--probe', `nfs://${l.vip}${PROBE}?version=4`, '--probe', `tcp://${l.vip}:2049`, '--probe-from', l.clients[0]!.name,
    '--junit', path.join(out, `${tag}.xml`), '--html', path.join(out, `${tag}.html`), '--json',
    ...extra,
  ];
}

function drillReport(stdout: string): DrillReport {
  const last = stdout.trim().split('\n').pop()!;
  const r = JSON.parse(last) as DrillReport;
  expect(r.type).toBe('drill');
  return r;
}

async function expectServedBy(node: string): Promise<void> {
  const s = await clusterState(L());
  expect(vipHolders(s, L().vip), 'VIP holders').toEqual([node]);
  expect(diskHolders(s, L().disks[0]!), 'disk attached on').toEqual([node]);
}

beforeAll(async () => {
  requireRoot();
  requireReportTools();
  state = mkdtempSync(path.join(os.tmpdir(), 'baton-drill-state-'));
  out = mkdtempSync(path.join(os.tmpdir(), 'baton-drill-out-'));
  lab = await startLab({ name: 'drills', subnet: '198.18.90.0/24', diskMiB: 64 });
  const start = await baton(['run', '--yes', '-i', lab.inventoryPath, PB('nfs-start.yml'), '-e', 'on=n1'], state);
  expect(start.code, start.stdout + start.stderr).toBe(0);
  // Written over NFSv3 (libnfs's v4 write fails against this Ganesha), read by the drill over v4.
  probeSha = await clientWrite(lab, PROBE, 4096);
});

afterAll(async () => {
  await lab?.down();
  if (state) rmSync(state, { recursive: true, force: true });
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('baton drill in the lab', () => {
  it('switchover n1→n2 and back under probes: exit 0, windows from the samples, same bytes, valid JUnit, a timeline that renders', async () => {
    await expectServedBy('n1');
    const r = await baton(drillArgs('pass', '--max-outage', '60s'), state);
    expect(r.code, r.stdout.slice(-3000) + r.stderr).toBe(0);
    const report = drillReport(r.stdout);
    await expectServedBy('n1');

    expect(report.verdict).toBe('pass');
    expect(report.playbooks.map((p) => [p.role, p.outcome, p.exitCode])).toEqual([
      ['playbook', 'succeeded', 0],
      ['then', 'succeeded', 0],
    ]);
    expect(report.playbooks.map((p) => p.extraVars)).toEqual([{ from: 'n1', to: 'n2' }, { from: 'n2', to: 'n1' }]);

    const [nfs, tcp] = report.probes;
    for (const p of [nfs!, tcp!]) {
      expect(p.from).toBe('c1');
      expect(p.reads).toBe(p.samples.length);
      expect(p.failed).toBe(p.samples.filter((s) => !s.ok).length);
      // The windows reported are those the raw samples give, not something computed elsewhere.
      expect(p.windows).toEqual(outageWindows(p.samples));
      expect(p.totalOutageMs).toBe(totalOutageMs(p.windows));
      expect(p.windows.every((w) => !w.open), `${p.label} reads well again at the end`).toBe(true);
      // At 50 ms, a drill of several seconds gives many reads.
      expect(p.reads).toBeGreaterThan(40);
    }
    // Moving the VIP away and back cannot go unnoticed by a client reading every 50 ms.
    expect(nfs!.windows.length, 'the NFS client saw the moves').toBeGreaterThan(0);
    expect(nfs!.integrity).toMatchObject({ ok: true, before: probeSha, after: probeSha, mismatches: 0 });
    for (const s of nfs!.samples.filter((x) => x.ok)) expect(s.sha256).toBe(probeSha);
    console.log(
      `[drill] nfs: ${nfs!.reads} reads, ${nfs!.windows.length} window(s), total ${nfs!.totalOutageMs} ms (${nfs!.windows.map((w) => w.ms).join(', ')}); ` +
        `tcp: ${tcp!.reads} connects, ${tcp!.windows.length} window(s), total ${tcp!.totalOutageMs} ms; drill ${report.endedAt - report.startedAt} ms`,
    );

    // JUnit: valid for CI servers; a suite per playbook and the probes suite, nothing failed.
    const junitFile = path.join(out, 'pass.xml');
    const v = await validateJunit(junitFile);
    expect(v.ok, v.output).toBe(true);
    const xml = readFileSync(junitFile, 'utf8');
    expect([...xml.matchAll(/<testsuite name="([^"]+)"/g)].map((m) => m[1])).toEqual(['nfs-switchover.yml (playbook)', 'nfs-switchover.yml (then)', 'probes']);
    expect(xml).not.toMatch(/<failure|<error/);
    expect(xml).toContain(`<property name="probe.0.outage_ms" value="${nfs!.totalOutageMs}"/>`);
    expect(xml).toMatch(/classname="release the NFS service on n1\/n1"/);

    // HTML: opens in a real browser; the timeline's parts are in the rendered DOM.
    const png = path.join(out, 'pass.png');
    const dom = await openInChromium(path.join(out, 'pass.html'), png);
    const head = readFileSync(png).subarray(0, 8);
    expect(head.equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'a PNG').toBe(true);
    expect(statSync(png).size).toBeGreaterThan(10_000);
    expect(dom).toMatch(/<svg[^>]*id="timeline"/);
    const bars = elementsWithClass(dom, 'step-bar');
    for (const host of ['n1', 'n2']) expect(bars.filter((b) => attrOf(b, 'data-host') === host).length, `bars of ${host}`).toBeGreaterThan(0);
    expect(bars.length).toBe(report.bars.length);
    expect(elementsWithClass(dom, 'probe-strip').map((t) => attrOf(t, 'data-probe'))).toEqual(report.probes.map((p) => p.label));
    const outages = elementsWithClass(dom, 'outage');
    expect(outages.map((t) => Number(attrOf(t, 'data-ms')))).toEqual(report.probes.flatMap((p) => p.windows.map((w) => w.ms)));
    expect(dom).toContain('Drill PASSED');
    // Kept with the test results (CI artifacts; git ignores test-results/) for a person to look at.
    mkdirSync('test-results/drill', { recursive: true });
    for (const f of ['pass.html', 'pass.png', 'pass.xml']) copyFileSync(path.join(out, f), path.join('test-results/drill', f));
  });

  it('--max-outage 1ms: exit 1, the JUnit probes suite has a failing test case naming the limit', async () => {
    const r = await baton(drillArgs('limit', '--max-outage', '1ms'), state);
    expect(r.code, r.stdout.slice(-3000) + r.stderr).toBe(1);
    const report = drillReport(r.stdout);
    expect(report.verdict).toBe('fail');
    expect(report.playbooks.every((p) => p.exitCode === 0)).toBe(true);
    expect(report.reasons.join('\n')).toMatch(/exceeds --max-outage 1 ms/);
    await expectServedBy('n1');

    const junitFile = path.join(out, 'limit.xml');
    const v = await validateJunit(junitFile);
    expect(v.ok, v.output).toBe(true);
    const xml = readFileSync(junitFile, 'utf8');
    const probes = xml.slice(xml.indexOf('<testsuite name="probes"'));
    expect(probes).toMatch(/<testsuite name="probes"[^>]*failures="[1-9]/);
    expect(probes).toMatch(/<testcase classname="probes\/c1" name="nfs:\/\/[^"]+"[^>]*>\s*<failure message="outage \d+ ms exceeds --max-outage 1 ms/);
  });
});
