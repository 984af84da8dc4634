/**
 * Active-active with NFS and iSCSI (`lab up --groups 1 --iscsi-groups 1` on two nodes): nfs-a
 * runs on n1 while iscsi-a runs on n2, both read by the client at once. Evacuating n2 moves
 * iscsi-a onto n1 beside nfs-a, driven as a drill with both probes from the client: the NFS
 * client reads through the whole evacuation without one failed read, while the iSCSI client
 * sees the move's short outage and the same bytes after it. Root only; torn down whatever happens.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { CLI } from '../helpers/lab-runs.js';
import { baton } from '../helpers/nfs-service.js';
import { iscsiClient } from '../helpers/iscsi-client.js';
import { runRaw } from '../../src/lab/exec.js';
import { loadInventory } from '../../src/inventory/load.js';
import { loadServiceGroups, type ServiceGroup } from '../../src/inventory/services.js';
import type { DrillReport } from '../../src/drill/report.js';

const execFileP = promisify(execFile);

let lab: Lab | undefined;
let work = '';
let nfs: ServiceGroup;
let san: ServiceGroup;
let client: ReturnType<typeof iscsiClient>;
const L = (): Lab => {
  if (!lab) throw new Error('the lab did not come up (see beforeAll)');
  return lab;
};
const state = () => path.join(work, 'state');

async function run(args: string[], what: string): Promise<void> {
  const r = await baton(args, state());
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
}

async function status(): Promise<{ code: number | null; where: Record<string, string> }> {
  const r = await runRaw(['node', CLI, 'status', '-i', L().inventoryPath, '--json'], { timeoutMs: 60_000, env: { ...process.env, BATON_STATE_DIR: state() } });
  let doc: { groups: Array<{ name: string; summary: string }> };
  try {
    doc = JSON.parse(r.stdout) as typeof doc;
  } catch {
    throw new Error(`baton status --json printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, where: Object.fromEntries(doc.groups.map((g) => [g.name, g.summary])) };
}

async function tgtdAnswersOn(node: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if ((await L().sshExec(node, ['tgtadm', '--lld', 'iscsi', '--mode', 'sys', '--op', 'show'])).code === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`tgtd on ${node} does not answer tgtadm after 5 s`);
}

const pattern = randomBytes(4096);
const iscsi = (write?: Buffer) => client({ vip: san.vip.address, iqn: san.iscsiTargets[0]!.iqn, lun: 1, ...(write ? { write } : {}) });

beforeAll(async () => {
  requireRoot();
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-iscsi-active-'));
  // Built by `npm test` before any suite runs. Never rebuilt here: tsc would rewrite dist/ under
  // the other suites' running commands (and put its own entry over the bundled one).
  if (!existsSync(path.resolve('dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
  lab = await startLab({ name: 'iscsigrp2', subnet: '198.18.200.0/24', nodes: 2, clients: 1, disks: 0, groups: 1, iscsiGroups: 1 });
  [nfs, san] = loadServiceGroups(loadInventory(lab.inventoryPath)) as [ServiceGroup, ServiceGroup];
  client = iscsiClient(L, work, 'iqn.2026-11.test.baton:iscsigrp2-c1');
  await Promise.all([tgtdAnswersOn('n1'), tgtdAnswersOn('n2')]);

  // Each group on its home with service-start (one after the other: statd's play is per node).
  await run(['run', '--yes', '-i', lab.inventoryPath, path.resolve('playbooks/service-start.yml'), '-e', 'service=nfs-a'], 'starting nfs-a on n1 (its home)');
  await run(['run', '--yes', '-i', lab.inventoryPath, path.resolve('playbooks/service-start.yml'), '-e', 'service=iscsi-a'], 'starting iscsi-a on n2 (its home)');

  // The file the NFS probe reads, written by the client through nfs-a's VIP.
  const local = path.join(work, 'probe.bin');
  writeFileSync(local, randomBytes(64 * 1024));
  await execFileP('ip', ['netns', 'exec', lab.clients[0]!.netns, 'nfs-cp', local, `nfs://${nfs.vip.address}${nfs.nfsExports[0]!.path}/probe.bin?version=3`], { timeout: 30_000 });
}, 400_000);

afterAll(async () => {
  if (lab) await lab.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('an NFS group and an iSCSI group active on two nodes', () => {
  it('nfs-a runs on n1 and iscsi-a on n2 at once (status exit 0); the iSCSI client writes a pattern through iscsi-a\'s VIP', async () => {
    expect(await status()).toEqual({ code: 0, where: { 'nfs-a': 'running on n1', 'iscsi-a': 'running on n2' } });
    const w = await iscsi(pattern);
    expect(w.error).toBeUndefined();
    expect(w.read).toBe(pattern.toString('hex'));
  });

  it('drill of node-evacuate -e node=n2: the NFS client reads without one failed read; iscsi-a lands on n1 with the same bytes', async () => {
    const nfsProbe = `nfs://${nfs.vip.address}${nfs.nfsExports[0]!.pseudo}/probe.bin?version=4`;
    const iscsiProbe = `iscsi://${san.vip.address}/${san.iscsiTargets[0]!.iqn}/1?lba=0&blocks=8`;
    const r = await runRaw(
      ['node', CLI, 'drill', path.resolve('playbooks/node-evacuate.yml'), '-i', L().inventoryPath, '-e', 'node=n2',
        '--probe', nfsProbe, '--probe', iscsiProbe, '--probe-from', 'c1', '--max-outage', '30s', '--json'],
      { timeoutMs: 180_000, env: { ...process.env, BATON_STATE_DIR: state() } },
    );
    expect(r.code, r.stdout.slice(-3000) + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as DrillReport;
    const probeOf = (kind: string) => report.probes.find((p) => p.kind === kind)!;
    const n = probeOf('nfs');
    const i = probeOf('iscsi');
    console.log(`[drill] evacuate n2: nfs ${n.reads} reads, ${n.failed} failed, ${n.windows.length} windows; iscsi ${i.reads} reads, ${i.failed} failed, outage ${i.totalOutageMs} ms`);
    expect(n.reads).toBeGreaterThan(10);
    expect(n.failed).toBe(0);
    expect(n.windows).toEqual([]);
    expect(n.integrity).toMatchObject({ ok: true, mismatches: 0 });
    expect(i.integrity).toMatchObject({ ok: true, mismatches: 0 });
    expect(i.windows.every((w) => !w.open)).toBe(true);

    expect(await status()).toEqual({ code: 0, where: { 'nfs-a': 'running on n1', 'iscsi-a': 'running on n1 (home n2)' } });
    const after = await iscsi();
    expect(after.error).toBeUndefined();
    expect(after.read).toBe(pattern.toString('hex'));
  });
});
