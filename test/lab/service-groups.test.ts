/**
 * The group playbooks on a 3-node lab with three service groups (`lab up --groups 3`: nfs-a home
 * n1, nfs-b home n2, nfs-c home n3), as an operator uses them: every group started on its home;
 * `service-move -e service=nfs-a` and nfs-a runs on its next node (n2) by `baton status`, the
 * client reading the bytes it wrote before through nfs-a's VIP; then `node-evacuate -e node=n2`
 * and both groups n2 held (nfs-a, nfs-b) run on n3, nfs-c untouched, status exit 0, the client
 * still reading the same bytes; then `node-failover -e failed=n3` fences n3 and each group runs on
 * its first preferred survivor (nfs-a n1, nfs-b n2, nfs-c n1). Root only; the lab is torn down whatever happens.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientReadFrom, clientWriteTo, ok } from '../helpers/group-runs.js';
import { groupStartVars } from '../helpers/groups.js';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { baton, type BatonResult } from '../helpers/nfs-service.js';
import { loadInventory } from '../../src/inventory/load.js';
import { loadServiceGroups, type ServiceGroup } from '../../src/inventory/services.js';

let lab: Lab | undefined;
let tmp: string;
let groups: ServiceGroup[];
let written: string;

function L(): Lab {
  if (!lab) throw new Error('the lab did not come up (see beforeAll)');
  return lab;
}

const state = () => path.join(tmp, 'state');
const groupNamed = (name: string) => groups.find((g) => g.name === name)!;

interface StatusDoc {
  groups: Array<{ name: string; state: string; nodes: string[]; summary: string }>;
  exitCode: number;
}

async function status(): Promise<{ code: number; where: Record<string, string> }> {
  const r = await baton(['status', '-i', L().inventoryPath, '--json'], state());
  let doc: StatusDoc;
  try {
    doc = JSON.parse(r.stdout) as StatusDoc;
  } catch {
    throw new Error(`baton status --json printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, where: Object.fromEntries(doc.groups.map((g) => [g.name, g.summary])) };
}

async function run(playbook: string, vars: Record<string, unknown>): Promise<BatonResult> {
  const t0 = performance.now();
  const r = await baton(['run', '--yes', '-i', L().inventoryPath, path.resolve(playbook), '-e', JSON.stringify(vars)], state());
  console.log(`${path.basename(playbook)} ${JSON.stringify(vars)}: exit ${r.code} in ${(performance.now() - t0).toFixed(0)} ms`);
  return r;
}


/** Start a group on a node with the shipped nfs-start playbook, its vars taken from the group. */
async function startGroup(g: ServiceGroup, on: string): Promise<void> {
  const vars = groupStartVars(g, on);
  ok(await run('playbooks/nfs-start.yml', vars), `starting ${g.name} on ${on}`);
}


describe('service-move and node-evacuate over three service groups on three nodes', () => {
  beforeAll(async () => {
    requireRoot();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-place-'));
    lab = await startLab({ name: 'place', subnet: '198.18.194.0/24', nodes: 3, groups: 3 });
    // nfs-c declares a mount option: wherever the group moves, its filesystem is mounted with it.
    const inv = readFileSync(lab.inventoryPath, 'utf8');
    const withOption = inv.replace(/^( +)path: \/srv\/disk3\n( +)fstype: ext4\n/m, (m, a: string) => `${m}${a}options: noatime\n`);
    expect(withOption).not.toBe(inv);
    writeFileSync(lab.inventoryPath, withOption);
    groups = loadServiceGroups(loadInventory(lab.inventoryPath));
    // The nfs-* playbooks share one lock: one group after the other.
    for (const g of groups) await startGroup(g, g.home);
    written = await clientWriteTo(L().clients[0]!, groupNamed('nfs-a'), 'moved.bin', 256 * 1024);
  });

  afterAll(async () => {
    await lab?.down();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('every group running on its home, exit 0; the client reads back what it wrote through nfs-a', async () => {
    expect(groups.map((g) => `${g.name} ${g.nodes.join(',')}`)).toEqual(['nfs-a n1,n2,n3', 'nfs-b n2,n3,n1', 'nfs-c n3,n1,n2']);
    expect(await status()).toEqual({ code: 0, where: { 'nfs-a': 'running on n1', 'nfs-b': 'running on n2', 'nfs-c': 'running on n3' } });
    expect(await clientReadFrom(L().clients[0]!, groupNamed('nfs-a'), 'moved.bin')).toBe(written);
  });

  it('the plan of service-move -e service=nfs-a names the move it will make, read from the nodes', async () => {
    const r = await baton(['plan', '-i', L().inventoryPath, path.resolve('playbooks/service-move.yml'), '-e', 'service=nfs-a'], state());
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}MOVE \[nfs-a\] on n1, n2 {2}\(lock: service-nfs-a\)$/m);
  });

  it('a group that does not exist is refused, exit 2, nothing touched', async () => {
    const r = await run('playbooks/service-move.yml', { service: 'nfs-z' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no service group "nfs-z" in the inventory (groups: nfs-a, nfs-b, nfs-c); nothing was touched');
    expect((await status()).where['nfs-a']).toBe('running on n1');
  });

  it('service-move -e service=nfs-a: nfs-a runs on n2, the others where they were; the client reads the same bytes through its VIP', async () => {
    ok(await run('playbooks/service-move.yml', { service: 'nfs-a' }), 'service-move nfs-a');
    expect(await status()).toEqual({ code: 0, where: { 'nfs-a': 'running on n2 (home n1)', 'nfs-b': 'running on n2', 'nfs-c': 'running on n3' } });
    expect(await clientReadFrom(L().clients[0]!, groupNamed('nfs-a'), 'moved.bin')).toBe(written);
  });

  it('node-evacuate -e node=n2: both groups n2 held run on n3 (their next node), nfs-c untouched, status exit 0', async () => {
    const r = await run('playbooks/node-evacuate.yml', { node: 'n2' });
    ok(r, 'node-evacuate n2');
    // One item per group, each its own line in the recap.
    expect(r.stdout).toMatch(/^ {2}move nfs-a\s+succeeded$/m);
    expect(r.stdout).toMatch(/^ {2}move nfs-b\s+succeeded$/m);
    expect(await status()).toEqual({ code: 0, where: { 'nfs-a': 'running on n3 (home n1)', 'nfs-b': 'running on n3 (home n2)', 'nfs-c': 'running on n3' } });
    expect(await clientReadFrom(L().clients[0]!, groupNamed('nfs-a'), 'moved.bin')).toBe(written);
  });

  it('node-failover -e failed=n3: n3 fenced (off), each group it held runs on its first preferred survivor; the client reads the same bytes', async () => {
    const r = await run('playbooks/node-failover.yml', { failed: 'n3' });
    ok(r, 'node-failover n3');
    expect(await L().power('n3', 'status')).toMatch(/off/i);
    const after = await status();
    // n3 cannot be read (off): degraded, exit 1, but every group runs whole on one node.
    expect(after).toEqual({ code: 1, where: { 'nfs-a': 'running on n1', 'nfs-b': 'running on n2', 'nfs-c': 'running on n1 (home n3)' } });
    expect(await clientReadFrom(L().clients[0]!, groupNamed('nfs-a'), 'moved.bin')).toBe(written);
    // nfs-c's declared mount option came with it.
    expect(groupNamed('nfs-c').mount?.options).toBe('noatime');
    expect((await L().sshOk('n1', ['findmnt', '-n', '-o', 'OPTIONS', '/srv/disk3'])).trim().split(',')).toContain('noatime');
  });

  it('a second node fails while the first is still off: node-failover -e failed=n2 fences n2 from n1 (n3, off, cannot be asked) and takes nfs-b over on n1', async () => {
    const b = groupNamed('nfs-b');
    const onB = await clientWriteTo(L().clients[0]!, b, 'second.bin', 64 * 1024);
    expect(await L().power('n3', 'status')).toMatch(/off/i);
    // The fence play's hosts are every node but n2: n3 among them, off. It runs once, on n1.
    const r = await run('playbooks/node-failover.yml', { failed: 'n2' });
    ok(r, 'node-failover n2 with n3 off');
    expect(r.stdout + r.stderr).toMatch(/note: n3 could not be reached; "fence n2" runs its steps once, on n1/);
    expect(await L().power('n2', 'status')).toMatch(/off/i);
    expect(await status()).toEqual({ code: 1, where: { 'nfs-a': 'running on n1', 'nfs-b': 'running on n1 (home n2)', 'nfs-c': 'running on n1 (home n3)' } });
    expect(await clientReadFrom(L().clients[0]!, b, 'second.bin')).toBe(onB);
    expect(await clientReadFrom(L().clients[0]!, groupNamed('nfs-a'), 'moved.bin')).toBe(written);
  });
});
