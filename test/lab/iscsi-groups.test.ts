/**
 * An iSCSI service group (`lab up --iscsi-groups 1`: iscsi-a, home n1, a disk, a VIP, a target
 * IQN with LUN 1 and a fixed scsi_id/scsi_sn) moved by the shipped group playbooks, as an
 * operator moves it, and judged where an initiator looks: the lab client logging in through the
 * VIP with baton's initiator (in the client's namespace): the IQN, the LUN numbers, the VPD 0x80
 * and 0x83 pages byte for byte, and a pattern written once read back after every move.
 * service-start on n1; service-move to n2 (and a re-run changes
 * nothing); undo; `baton status` running / SPLIT / partial; iscsi-health.yml OK and CRITICAL
 * naming the serial; a drill of service-move with an iscsi:// probe; n2 failing (unreachable)
 * and node-failover, which powers it off, back to n1. Root only; the lab is torn down whatever happens.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { batonJson, CLI, type JsonRun } from '../helpers/lab-runs.js';
import { iscsiClient, type ClientView } from '../helpers/iscsi-client.js';
import { runRaw } from '../../src/lab/exec.js';
import { parseTgtadmTargets } from '../../src/facts/iscsi.js';
import { loadInventory } from '../../src/inventory/load.js';
import { loadServiceGroups, type ServiceGroup } from '../../src/inventory/services.js';
import type { DrillReport } from '../../src/drill/report.js';

let lab: Lab | undefined;
let work = '';
let group: ServiceGroup;
let client: ReturnType<typeof iscsiClient>;
const L = (): Lab => {
  if (!lab) throw new Error('the lab did not come up (see beforeAll)');
  return lab;
};
const state = () => path.join(work, 'state');
const baton = (args: string[]): Promise<JsonRun> => batonJson(args, state());
const totalChanged = (r: JsonRun): number => Object.values<any>(r.summary?.recap ?? {}).reduce((n, h) => n + (h.changed ?? 0), 0);
const errors = (r: JsonRun) => r.events.filter((e) => e.type === 'step-end' && e.status === 'failed').map((e) => String(e.error)).join('\n') + r.stderr;

const target = () => group.iscsiTargets[0]!;
const vip = () => group.vip.address;
const fromClient = (write?: Buffer): Promise<ClientView> => client({ vip: vip(), iqn: target().iqn, lun: 1, ...(write ? { write } : {}) });

const runPb = (pb: string, vars: Record<string, unknown> = {}) => baton(['run', '--yes', '-i', L().inventoryPath, pb, '-e', JSON.stringify(vars)]);
const shipped = (name: string) => path.resolve('playbooks', name);

async function status(): Promise<{ code: number | null; summary: string; serves: string[]; raw: string }> {
  const r = await runRaw(['node', CLI, 'status', '-i', L().inventoryPath, '--json'], { timeoutMs: 60_000, env: { ...process.env, BATON_STATE_DIR: state() } });
  let doc: { groups: Array<{ name: string; summary: string; serves: string[] }> };
  try {
    doc = JSON.parse(r.stdout) as typeof doc;
  } catch {
    throw new Error(`baton status --json printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  const g = doc.groups.find((x) => x.name === group.name)!;
  return { code: r.code, summary: g.summary, serves: g.serves, raw: r.stdout + r.stderr };
}

async function iqnsOn(node: string): Promise<string[]> {
  return parseTgtadmTargets(await L().sshOk(node, ['tgtadm', '--lld', 'iscsi', '--mode', 'target', '--op', 'show'])).map((t) => t.iqn);
}

async function tgtdAnswersOn(node: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if ((await L().sshExec(node, ['tgtadm', '--lld', 'iscsi', '--mode', 'sys', '--op', 'show'])).code === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`tgtd on ${node} does not answer tgtadm after 5 s`);
}

beforeAll(async () => {
  requireRoot();
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-iscsi-groups-'));
  // Built by `npm test` before any suite runs. Never rebuilt here: tsc would rewrite dist/ under
  // the other suites' running commands (and put its own entry over the bundled one).
  if (!existsSync(path.resolve('dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
  lab = await startLab({ name: 'iscsigrp', subnet: '198.18.199.0/24', nodes: 2, clients: 1, disks: 0, iscsiGroups: 1 });
  [group] = loadServiceGroups(loadInventory(lab.inventoryPath)) as [ServiceGroup];
  client = iscsiClient(L, work, 'iqn.2026-11.test.baton:iscsigrp-c1');
  await Promise.all([tgtdAnswersOn('n1'), tgtdAnswersOn('n2')]);
}, 400_000);

afterAll(async () => {
  if (lab) await lab.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('an iSCSI service group moved by the group playbooks, with its identity', () => {
  const pattern = randomBytes(4096);
  let before: ClientView;
  let moveRun = '';

  const sameDisk = (now: ClientView) => {
    expect(now.error).toBeUndefined();
    expect(now.targets?.map((t) => t.name)).toEqual([target().iqn]);
    expect(now.luns).toEqual(before.luns);
    expect(now.vpd80).toBe(before.vpd80);
    expect(now.vpd83).toBe(before.vpd83);
    expect(now.read).toBe(pattern.toString('hex'));
  };

  it('lab up --iscsi-groups 1 declares iscsi-a: a disk, a VIP and a target with a fixed identity; no mount', () => {
    expect(group.name).toBe('iscsi-a');
    expect(group.nodes).toEqual(['n1', 'n2']);
    expect(vip()).toBe('198.18.199.210');
    expect(group.mount).toBeUndefined();
    expect(group.nfsExports).toEqual([]);
    expect(group.iscsiTargets).toEqual([{ iqn: 'iqn.2026-11.dev.baton.lab:iscsigrp.iscsi-a', acls: ['198.18.199.0/24'], port: 3260, luns: [{ lun: 1, scsiId: '5ba712c7000001', scsiSn: 'BATON-ISCSIGRP-A' }] }]);
  });

  it('service-start starts it on n1 (its home): status says so; the client logs in through the VIP, sees LUN 1 with the inventory\'s serial and NAA, writes a pattern; a re-run changes nothing', async () => {
    const r = await runPb(shipped('service-start.yml'), { service: 'iscsi-a' });
    expect(r.code, errors(r)).toBe(0);
    expect(await iqnsOn('n1')).toEqual([target().iqn]);
    expect(await iqnsOn('n2')).toEqual([]);
    const s = await status();
    expect(s.summary, s.raw).toBe('running on n1');
    expect(s.serves).toEqual([`iSCSI ${target().iqn} LUN 1`]);
    expect(s.code).toBe(0);

    before = await fromClient(pattern);
    expect(before.error).toBeUndefined();
    expect(before.luns).toEqual([0, 1]);
    expect(before.serial).toBe('BATON-ISCSIGRP-A');
    expect(before.naa).toBe(`6${'5ba712c7000001'.padStart(31, '0')}`);
    expect(before.read).toBe(pattern.toString('hex'));

    const again = await runPb(shipped('service-start.yml'), { service: 'iscsi-a' });
    expect(again.code, errors(again)).toBe(0);
    expect(totalChanged(again)).toBe(0);
  });

  it('service-move -e service=iscsi-a -e to=n2: same IQN, LUNs, VPD 0x80 and 0x83 bytes, the pattern reads back; a re-run changes nothing', async () => {
    const r = await runPb(shipped('service-move.yml'), { service: 'iscsi-a', to: 'n2' });
    expect(r.code, errors(r)).toBe(0);
    moveRun = r.summary?.runId ?? '';
    expect(await iqnsOn('n1')).toEqual([]);
    expect(await iqnsOn('n2')).toEqual([target().iqn]);
    expect((await status()).summary).toBe('running on n2 (home n1)');
    sameDisk(await fromClient());
    console.log(`[iscsi-groups] service-move n1 → n2: ${r.ms} ms with the CLI's start`);

    const again = await runPb(shipped('service-move.yml'), { service: 'iscsi-a', to: 'n2' });
    expect(again.code, errors(again)).toBe(0);
    expect(totalChanged(again)).toBe(0);
  });

  it('baton undo of the move: the target is back on n1 with the same identity; the pattern reads back', async () => {
    expect(moveRun).not.toBe('');
    const u = await baton(['undo', moveRun, '--yes', '-i', L().inventoryPath]);
    expect(u.code, errors(u) + JSON.stringify(u.events.filter((e) => e.type === 'revert-end'))).toBe(0);
    expect(await iqnsOn('n2')).toEqual([]);
    expect(await iqnsOn('n1')).toEqual([target().iqn]);
    expect((await status()).summary).toBe('running on n1');
    sameDisk(await fromClient());
  });

  it('status: SPLIT (exit 2) when n2 serves the IQN too; partial naming the target when n1 lost it; service-start puts back only the target', async () => {
    // The second target made by hand, on a file of its own: only the IQN makes it the group's.
    const tid = '4242';
    const tgtadm = (node: string, args: string[]) => L().sshOk(node, ['tgtadm', '--lld', 'iscsi', ...args]);
    await tgtadm('n2', ['--mode', 'target', '--op', 'new', '--tid', tid, '--targetname', target().iqn]);
    try {
      const split = await status();
      expect(split.code).toBe(2);
      expect(split.summary).toBe('SPLIT on n1 and n2 (VIP on n1; volume on n1; iSCSI target on n1 and n2)');
    } finally {
      await tgtadm('n2', ['--mode', 'target', '--op', 'delete', '--force', '--tid', tid]);
    }
    const n1tid = String(parseTgtadmTargets(await tgtadm('n1', ['--mode', 'target', '--op', 'show']))[0]!.tid);
    await tgtadm('n1', ['--mode', 'target', '--op', 'delete', '--force', '--tid', n1tid]);
    const partial = await status();
    expect(partial.code).toBe(1);
    expect(partial.summary).toBe(`partial on n1 (iSCSI target ${target().iqn} missing)`);

    const repair = await runPb(shipped('service-start.yml'), { service: 'iscsi-a' });
    expect(repair.code, errors(repair)).toBe(0);
    expect(totalChanged(repair)).toBe(1);
    expect((await status()).summary).toBe('running on n1');
    sameDisk(await fromClient());
  });

  it('iscsi-health.yml: OK when healthy; CRITICAL naming the serial when the LUN comes up with another one', async () => {
    const check = async () => {
      const r = await runRaw(['node', CLI, 'check', '-i', L().inventoryPath, shipped('iscsi-health.yml'), '--json'], { timeoutMs: 60_000, env: { ...process.env, BATON_STATE_DIR: state() } });
      return { code: r.code, json: JSON.parse(r.stdout) as { status: string; checks: Array<{ kind: string; status: string; message: string }> }, raw: r.stdout + r.stderr };
    };
    const ok = await check();
    expect(ok.code, ok.raw).toBe(0);
    expect(ok.json.status).toBe('OK');
    expect(ok.json.checks.filter((c) => c.kind === 'iscsi_lun').map((c) => c.status)).toEqual(['OK']);

    const tid = String(parseTgtadmTargets(await L().sshOk('n1', ['tgtadm', '--lld', 'iscsi', '--mode', 'target', '--op', 'show']))[0]!.tid);
    const setSn = (sn: string) => L().sshOk('n1', ['tgtadm', '--lld', 'iscsi', '--mode', 'logicalunit', '--op', 'update', '--tid', tid, '--lun', '1', '--params', `scsi_sn=${sn}`]);
    await setSn('ANOTHER-DISK');
    try {
      const bad = await check();
      expect(bad.code, bad.raw).toBe(2);
      expect(bad.json.status).toBe('CRITICAL');
      const msg = bad.json.checks.find((c) => c.kind === 'iscsi_lun')?.message ?? '';
      expect(msg).toContain(`${vip()}:3260 ${target().iqn} LUN 1`);
      expect(msg).toContain('serial (VPD 0x80) is "ANOTHER-DISK", expected "BATON-ISCSIGRP-A"');
    } finally {
      await setSn('BATON-ISCSIGRP-A');
    }
    expect((await check()).code).toBe(0);
  });

  it('baton drill of service-move n1 → n2 with an iscsi:// probe from the client: pass, one closed outage window, the same bytes throughout; JUnit and HTML written', async () => {
    const junit = path.join(work, 'drill.xml');
    const html = path.join(work, 'drill.html');
    const probe = `iscsi://${vip()}/${target().iqn}/1?lba=0&blocks=8`;
    const r = await runRaw(
      ['node', CLI, 'drill', shipped('service-move.yml'), '-i', L().inventoryPath, '-e', JSON.stringify({ service: 'iscsi-a', to: 'n2' }),
        '--probe', probe, '--probe-from', 'c1', '--max-outage', '30s', '--junit', junit, '--html', html, '--json'],
      { timeoutMs: 180_000, env: { ...process.env, BATON_STATE_DIR: state() } },
    );
    expect(r.code, r.stdout.slice(-3000) + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as DrillReport;
    expect(report.verdict).toBe('pass');
    const [p] = report.probes;
    expect(p!.kind).toBe('iscsi');
    expect(p!.integrity).toMatchObject({ ok: true, mismatches: 0 });
    expect(p!.windows.length).toBe(1);
    expect(p!.windows.every((w) => !w.open)).toBe(true);
    console.log(`[drill] iscsi-a switchover n1 → n2: ${p!.reads} reads, ${p!.failed} failed, outage ${p!.totalOutageMs} ms (${p!.windows.map((w) => w.ms).join(', ')}); playbook ${report.playbooks[0]!.end - report.playbooks[0]!.start} ms`);
    expect(readFileSync(junit, 'utf8')).toContain('iscsi://');
    expect(existsSync(html)).toBe(true);
    expect(await iqnsOn('n2')).toEqual([target().iqn]);
    sameDisk(await fromClient());
  });

  it('n2 fails (its network goes, its BMC still answers), node-failover -e failed=n2 powers it off and the group runs on n1 with the same identity; the pattern reads back', async () => {
    // A node that stops answering is what a failover is for. (One powered off *before* the
    // failover reads as "stopped" to placement, which leaves stopped groups alone:
    // docs/placement.md, limits.)
    await runRaw(['ip', '-n', L().node('n2').netns, 'link', 'set', 'eth0', 'down']);
    const r = await runPb(shipped('node-failover.yml'), { failed: 'n2' });
    expect(r.code, errors(r)).toBe(0);
    expect(await L().power('n2', 'status')).toMatch(/off/i);
    expect(await iqnsOn('n1')).toEqual([target().iqn]);
    const s = await status();
    // n2 cannot be read (off): degraded, exit 1, but the group runs whole on n1.
    expect(s.code).toBe(1);
    expect(s.summary).toBe('running on n1');
    sameDisk(await fromClient());
    console.log(`[iscsi-groups] node-failover n2 → n1: ${r.ms} ms with the CLI's start`);
  });

  it('n2 powered off while it serves the group (a crash): node-failover sees n2 off by its BMC, takes the group over on n1 (seen nowhere, n2 unreadable), the same identity and disk', async () => {
    await L().power('n2', 'on');
    await tgtdAnswersOn('n2');
    const m = await runPb(shipped('service-move.yml'), { service: 'iscsi-a', to: 'n2' });
    expect(m.code, errors(m)).toBe(0);
    expect(await iqnsOn('n2')).toEqual([target().iqn]);

    await L().power('n2', 'off');
    const f = await runPb(shipped('node-failover.yml'), { failed: 'n2' });
    expect(f.code, errors(f)).toBe(0);
    expect(await iqnsOn('n1')).toEqual([target().iqn]);
    expect((await status()).summary).toBe('running on n1');
    // The same IQN, LUN numbers, VPD 0x80 and 0x83 bytes and pattern as at the start.
    sameDisk(await fromClient());
  });
});
