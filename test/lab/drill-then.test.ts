/**
 * A drill with --then in the lab: the NFS service switched over n1→n2 and back while a lab
 * client reads through the VIP. With --then-after, the client's outage is two windows, one per
 * direction, and the JSON report, the JUnit file and the HTML report (opened in Chromium) each
 * say which window belongs to which move. Root only.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { baton, clientWrite } from '../helpers/nfs-service.js';
import { attrOf, elementsWithClass, openInChromium, requireReportTools, validateJunit } from '../helpers/reports.js';
import type { DrillReport } from '../../src/drill/report.js';

const PB = path.resolve('playbooks', 'nfs-switchover.yml');
const PROBE = '/disk1/probe.bin';

let lab: Lab | undefined;
let state: string;
let out: string;

beforeAll(async () => {
  requireRoot();
  requireReportTools();
  state = mkdtempSync(path.join(os.tmpdir(), 'baton-oncall-drill-state-'));
  out = mkdtempSync(path.join(os.tmpdir(), 'baton-oncall-drill-out-'));
  lab = await startLab({ name: 'oncall', subnet: '198.18.130.0/24', diskMiB: 64 });
  const start = await baton(['run', '--yes', '-i', lab.inventoryPath, path.resolve('playbooks', 'nfs-start.yml'), '-e', 'on=n1'], state);
  expect(start.code, start.stdout + start.stderr).toBe(0);
  await clientWrite(lab, PROBE, 4096);
});

afterAll(async () => {
  await lab?.down();
  if (state) rmSync(state, { recursive: true, force: true });
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('baton drill --then with --then-after', () => {
  it('two outage windows, one per direction, in JSON, JUnit and HTML', async () => {
    const l = lab!;
    const junit = path.join(out, 'then.xml');
    const html = path.join(out, 'then.html');
    const r = await baton(
      [
        'drill', PB, '-i', l.inventoryPath, '-e', 'from=n1', '-e', 'to=n2',
        '--then', PB, '--then-e', 'from=n2', '--then-e', 'to=n1', '--then-after', '2s',
        '--probe', `nfs://${l.vip}${PROBE}?version=4`, '--probe-from', l.clients[0]!.name,
        '--junit', junit, '--html', html, '--json',
      ],
      state,
    );
    expect(r.code, r.stdout.slice(-3000) + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as DrillReport;
    const [first, then] = report.playbooks;
    expect(report.thenAfterMs).toBe(2000);

    // JSON: two windows, the first during the failover, the second during the failback.
    const probe = report.probes[0]!;
    expect(probe.windows.length, JSON.stringify(probe.windows)).toBe(2);
    const [w1, w2] = probe.windows;
    expect(probe.perPlaybook).toEqual([
      { role: 'playbook', direction: 'n1 → n2', windows: [0], outageMs: w1!.ms },
      { role: 'then', direction: 'n2 → n1', windows: [1], outageMs: w2!.ms },
    ]);
    // The client read well for a while between the two: the failback waited for it, then 2 s more.
    const goodBetween = probe.samples.filter((x) => x.ok && x.t >= w1!.end && x.t < w2!.start);
    expect(goodBetween.length).toBeGreaterThan(5);
    expect(then!.start - first!.end).toBeGreaterThanOrEqual(2000);
    expect(w2!.start).toBeGreaterThanOrEqual(then!.start);
    console.log(`[drill --then] windows ${w1!.ms} ms (n1 → n2) and ${w2!.ms} ms (n2 → n1); gap ${then!.start - first!.end} ms`);

    // JUnit: valid, the per-direction outage as properties, each window saying which move.
    const v = await validateJunit(junit);
    expect(v.ok, v.output).toBe(true);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toContain(`<property name="probe.0.playbook.outage_ms" value="${w1!.ms}"/>`);
    expect(xml).toContain(`<property name="probe.0.then.outage_ms" value="${w2!.ms}"/>`);
    expect(xml).toContain(`${w1!.ms} ms, during playbook (n1 → n2)`);
    expect(xml).toContain(`${w2!.ms} ms, during then (n2 → n1)`);

    // HTML, as Chromium renders it: the header says what moved where, each outage its direction.
    const dom = await openInChromium(html, path.join(out, 'then.png'));
    expect(dom).toContain('Drill PASSED: playbooks/nfs-switchover.yml n1 → n2, then playbooks/nfs-switchover.yml n2 → n1');
    const outages = elementsWithClass(dom, 'outage');
    expect(outages.map((o) => [attrOf(o, 'data-ms'), attrOf(o, 'data-during')])).toEqual([
      [String(w1!.ms), 'playbook (n1 → n2)'],
      [String(w2!.ms), 'then (n2 → n1)'],
    ]);
    // Each host's slowest step is called out on its lane.
    const slowest = elementsWithClass(dom, 'slowest-label').map((t) => attrOf(t, 'data-host'));
    expect(slowest.sort()).toEqual(['n1', 'n2']);
  });
});
