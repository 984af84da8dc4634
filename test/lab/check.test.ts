/**
 * `baton check playbooks/nfs-health.yml` against a real two-node NFS service: healthy, split
 * brain (the VIP raised by hand on the second node), NFS server killed on the holder. The
 * Prometheus textfile is read back with an npm text-format parser, as a scraper would.
 * Root only.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error the package ships no types
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { baton, changedCount, clusterState } from '../helpers/nfs-service.js';

interface PromFamily {
  name: string;
  type: string;
  metrics: Array<{ value: string; labels?: Record<string, string> }>;
}

const PB = (name: string) => path.resolve('playbooks', name);

let lab: Lab;
let tmp: string;
/** A state dir that must never come to exist: check writes no journal and takes no lock. */
let checkState: string;

const check = (...args: string[]) => baton(['check', '-i', lab.inventoryPath, PB('nfs-health.yml'), ...args], checkState);

function statusGauges(promFile: string): Map<string, number> {
  const families = parsePrometheusTextFormat(readFileSync(promFile, 'utf8')) as PromFamily[];
  const status = families.find((f) => f.name === 'baton_check_status');
  expect(status?.type).toBe('GAUGE');
  return new Map(status!.metrics.map((m) => [`${m.labels!.host}/${m.labels!.name}`, Number(m.value)]));
}

describe('baton check in the lab', () => {
  beforeAll(async () => {
    requireRoot();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-check-'));
    checkState = path.join(tmp, 'check-state');
    lab = await startLab({ name: 'checks', subnet: '198.18.80.0/24' });
    const start = await baton(['run', '--yes', '-i', lab.inventoryPath, PB('nfs-start.yml'), '-e', 'on=n1'], path.join(tmp, 'run-state'));
    expect(start.code, start.stdout + start.stderr).toBe(0);
  });

  afterAll(async () => {
    await lab?.down();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('a healthy service: exit 0, OK first line, every gauge 0, nothing changed, no journal', async () => {
    const before = await clusterState(lab);
    const prom = path.join(tmp, 'health.prom');
    const r = await check('--prom', prom);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const first = r.stdout.split('\n')[0]!;
    expect(first).toMatch(/^BATON CHECK OK - 8 OK; [\d.]+ held by n1 \| checks=8 critical=0 warning=0 unknown=0 duration=\d+\.\d{3}s$/);

    const gauges = statusGauges(prom);
    expect([...gauges.values()].every((v) => v === 0)).toBe(true);
    expect([...gauges.keys()].sort()).toEqual(
      ['n1/vip_holder', 'n1/nfs_null', 'n1/ganesha', 'n2/ganesha', 'n1/fence device of n2', 'n2/fence device of n1', 'n1/space for NFS state', 'n2/space for NFS state'].sort(),
    );
    const families = parsePrometheusTextFormat(readFileSync(prom, 'utf8')) as PromFamily[];
    const names = families.map((f) => f.name);
    expect(names).toEqual(expect.arrayContaining(['baton_check_duration_seconds', 'baton_check_last_run_timestamp_seconds']));
    const ts = Number(families.find((f) => f.name === 'baton_check_last_run_timestamp_seconds')!.metrics[0]!.value);
    expect(Math.abs(ts - Date.now() / 1000)).toBeLessThan(60);

    const json = JSON.parse((await check('--json')).stdout) as { status: string; checks: Array<{ kind: string; status: string; observed: unknown }> };
    expect(json.status).toBe('OK');
    expect(json.checks.find((c) => c.kind === 'vip_holder')!.observed).toMatchObject({ holders: ['n1'] });

    // A check changes nothing and leaves no trace in the state dir.
    expect(await clusterState(lab)).toEqual(before);
    expect(existsSync(checkState)).toBe(false);

    // In a run, the same checks hold: zero changes.
    const run = await baton(['run', '--yes', '-i', lab.inventoryPath, PB('nfs-health.yml')], path.join(tmp, 'run-state'));
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(changedCount(run.stdout)).toBe(0);
  });

  it('the VIP on both nodes: CRITICAL split brain naming both, exit 2; a run refuses', async () => {
    await lab.sshOk('n2', ['ip', 'addr', 'add', `${lab.vip}/24`, 'dev', 'eth0']);
    try {
      const prom = path.join(tmp, 'split.prom');
      const r = await check('--prom', prom);
      expect(r.code, r.stdout).toBe(2);
      expect(r.stdout.split('\n')[0]).toMatch(new RegExp(`^BATON CHECK CRITICAL - vip_holder: ${lab.vip.replace(/\./g, '\\.')} held by n1 and n2 \\(split brain\\); \\d+ OK \\| checks=\\d+ critical=1 `));
      expect(statusGauges(prom).get('n1/vip_holder')).toBe(2);
      const run = await baton(['run', '--yes', '-i', lab.inventoryPath, PB('nfs-health.yml'), '-t', 'vip'], path.join(tmp, 'run-state'));
      expect(run.code).toBe(1);
      expect(run.stdout + run.stderr).toMatch(/held by n1 and n2 \(split brain\)/);
    } finally {
      await lab.sshOk('n2', ['ip', 'addr', 'del', `${lab.vip}/24`, 'dev', 'eth0']);
    }
    expect((await check()).code).toBe(0);
  });

  it('NFS-Ganesha killed on the holder: CRITICAL from nfs_null, exit 2', async () => {
    await lab.sshExec('n1', ['pkill', '-x', 'ganesha.nfsd']);
    // Wait until it is gone, so the check sees a dead server rather than a dying one.
    for (let i = 0; i < 50 && (await lab.sshExec('n1', ['pgrep', '-x', 'ganesha.nfsd'])).code === 0; i++) await new Promise((r) => setTimeout(r, 100));
    const prom = path.join(tmp, 'dead.prom');
    const r = await check('--prom', prom);
    expect(r.code, r.stdout).toBe(2);
    const first = r.stdout.split('\n')[0]!;
    expect(first).toMatch(/^BATON CHECK CRITICAL - /);
    expect(first).toMatch(/^BATON CHECK CRITICAL - nfs_null: NFSv4 NULL call to [\d.]+:2049/);
    expect(r.stdout).toMatch(/^CRITICAL n1 nfs_null \[nfs_null\]: NFSv4 NULL call to [\d.]+:2049 failed/m);
    expect(first).toMatch(/; ganesha@n1: no process named ganesha\.nfsd; 6 OK[;| ]/);
    expect(first.length).toBeLessThan(200);
    expect(r.stdout).toMatch(/^CRITICAL n1 ganesha \[service_running\]: no process named ganesha\.nfsd/m);
    const g = statusGauges(prom);
    expect(g.get('n1/nfs_null')).toBe(2);
    expect(g.get('n1/ganesha')).toBe(2);
    expect(g.get('n2/ganesha')).toBe(0);
    expect(existsSync(checkState)).toBe(false);
  });
});
