/**
 * A service group with a failover MAC, moved as an operator moves it, on a 2-node lab built with
 * `lab up --groups 2 --failover-nics 1`: nfs-a owns a MAC and raises its VIP on each node's spare
 * interface fo1; nfs-b has none and stays on eth0. What is checked is what a user would look at:
 * which node's links carry the group's MAC (read in the nodes' namespaces, not through baton), the
 * client's neighbour entry for the VIP (`ip neigh` in the client's namespace), and what the client
 * reads through the VIP — before `service-move`, after it, after `baton undo` of it, and after
 * `node-failover` of the node holding it. Root only; the lab is torn down whatever happens.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientReadFrom, clientWriteTo, ok } from '../helpers/group-runs.js';
import { groupStartVars } from '../helpers/groups.js';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { baton, runIdOf, type BatonResult } from '../helpers/nfs-service.js';
import { loadInventory } from '../../src/inventory/load.js';
import { loadServiceGroups, type ServiceGroup } from '../../src/inventory/services.js';
import { parseIpLinkJson } from '../../src/facts/links.js';
import { parseIpAddr } from '../../src/facts/net.js';
import { runRaw } from '../../src/lab/exec.js';

let lab: Lab | undefined;
let tmp: string;
let groups: ServiceGroup[];
let written: string;
let moveRun = '';

function L(): Lab {
  if (!lab) throw new Error('the lab did not come up (see beforeAll)');
  return lab;
}

const state = () => path.join(tmp, 'state');
const groupNamed = (name: string) => groups.find((g) => g.name === name)!;
const ownMac = (node: string) => L().plan.nodes.find((n) => n.name === node)!.failoverNics[0]!.mac;

async function run(args: string[]): Promise<BatonResult> {
  const t0 = performance.now();
  const r = await baton(args, state());
  console.log(`baton ${args.filter((a) => !a.includes('/')).join(' ')}: exit ${r.code} in ${(performance.now() - t0).toFixed(0)} ms`);
  return r;
}


/** Every link of a node, read in its namespace. */
async function linksOf(node: string) {
  const r = await runRaw(['ip', '-n', L().node(node).netns, '-j', 'link', 'show']);
  if (r.code !== 0) throw new Error(`ip -j link in ${node}: ${r.stderr}`);
  return parseIpLinkJson(r.stdout);
}

/** Nodes with a link carrying `mac`, up or down, and the link's state. */
async function macOn(mac: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of L().nodes) for (const l of await linksOf(n.name)) if (l.address === mac) out.push(`${n.name} ${l.name} ${l.up ? 'up' : 'down'}`);
  return out;
}

/** The node's fo1: its MAC and whether it is up. */
async function fo1(node: string): Promise<string> {
  const l = (await linksOf(node)).find((x) => x.name === 'fo1');
  return l ? `${l.address} ${l.up ? 'up' : 'down'}` : 'missing';
}

/** Where (node interface) an address is, read in each node's namespace. */
async function addressOn(address: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of L().nodes) {
    const r = await runRaw(['ip', '-n', n.netns, '-o', 'addr', 'show']);
    for (const a of parseIpAddr(r.stdout)) if (a.address === address) out.push(`${n.name} ${a.iface}`);
  }
  return out;
}

/** The client's neighbour entry for an address: its MAC ('' when it has none). */
async function clientNeighbour(address: string): Promise<string> {
  const r = await L().clientExec(L().clients[0]!, ['ip', '-j', 'neigh', 'show', address]);
  const rows = JSON.parse(r.stdout.trim() || '[]') as Array<{ lladdr?: string }>;
  return (rows[0]?.lladdr ?? '').toLowerCase();
}


async function status(): Promise<Record<string, string>> {
  const r = await baton(['status', '-i', L().inventoryPath, '--json'], state());
  const doc = JSON.parse(r.stdout) as { groups: Array<{ name: string; summary: string }> };
  return Object.fromEntries(doc.groups.map((g) => [g.name, g.summary]));
}

describe('a service group with a failover MAC, moved and undone', () => {
  beforeAll(async () => {
    requireRoot();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-fmac-'));
    lab = await startLab({ name: 'fmac', subnet: '198.18.198.0/24', nodes: 2, groups: 2, failoverNics: 1 });
    groups = loadServiceGroups(loadInventory(lab.inventoryPath));
    for (const g of groups) ok(await run(['run', '--yes', '-i', lab.inventoryPath, path.resolve('playbooks/nfs-start.yml'), '-e', JSON.stringify(groupStartVars(g, g.home))]), `starting ${g.name} on ${g.home}`);
    written = await clientWriteTo(L().clients[0]!, groupNamed('nfs-a'), 'mac.bin', 128 * 1024);
  });

  afterAll(async () => {
    await lab?.down();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('nfs-a runs on n1 with its VIP on fo1 and its MAC there only; the client knows the VIP by that MAC; nfs-b is on eth0 as before', async () => {
    const a = groupNamed('nfs-a');
    expect(a.mac).toBe('02:ba:12:c6:03:01');
    expect(groupNamed('nfs-b').mac).toBeUndefined();
    expect(await status()).toEqual({ 'nfs-a': 'running on n1', 'nfs-b': 'running on n2' });
    expect(await macOn(a.mac!)).toEqual(['n1 fo1 up']);
    expect(await fo1('n2')).toBe(`${ownMac('n2')} down`);
    expect(await addressOn(a.vip.address)).toEqual(['n1 fo1']);
    expect(await addressOn(groupNamed('nfs-b').vip.address)).toEqual(['n2 eth0']);
    expect(await clientReadFrom(L().clients[0]!, a, 'mac.bin')).toBe(written);
    expect(await clientNeighbour(a.vip.address)).toBe(a.mac);
  });

  it('the plan of service-move shows the MAC steps for nfs-a only', async () => {
    const pa = await run(['plan', '-i', L().inventoryPath, path.resolve('playbooks/service-move.yml'), '-e', 'service=nfs-a']);
    expect(pa.code, pa.stderr).toBe(0);
    expect(pa.stdout).toContain('give up the failover MAC 02:ba:12:c6:03:01 on fo1');
    expect(pa.stdout).toContain('give fo1 the failover MAC 02:ba:12:c6:03:01');
    const pb = await run(['plan', '-i', L().inventoryPath, path.resolve('playbooks/service-move.yml'), '-e', 'service=nfs-b']);
    expect(pb.code, pb.stderr).toBe(0);
    expect(pb.stdout).not.toMatch(/give (up the )?.*failover MAC 02/);
    expect(pb.stdout).toMatch(/give up the failover MAC \{\{ move\.mac \}\} .*\[skipped: when move\.mac != ''\]/);
  });

  it('service-move -e service=nfs-a: the MAC is on n2 only, the client\'s neighbour entry for the VIP is the same MAC, and it reads the same bytes', async () => {
    const a = groupNamed('nfs-a');
    const neighbourBefore = await clientNeighbour(a.vip.address);
    const r = await run(['run', '--yes', '-i', L().inventoryPath, path.resolve('playbooks/service-move.yml'), '-e', 'service=nfs-a']);
    ok(r, 'service-move nfs-a');
    moveRun = runIdOf(r.stdout + r.stderr);
    expect(await status()).toEqual({ 'nfs-a': 'running on n2 (home n1)', 'nfs-b': 'running on n2' });
    expect(await macOn(a.mac!)).toEqual(['n2 fo1 up']);
    expect(await fo1('n1')).toBe(`${ownMac('n1')} down`);
    expect(await addressOn(a.vip.address)).toEqual(['n2 fo1']);
    expect(await clientNeighbour(a.vip.address)).toBe(neighbourBefore);
    expect(await clientReadFrom(L().clients[0]!, a, 'mac.bin')).toBe(written);
    expect(await clientNeighbour(a.vip.address)).toBe(a.mac);
  });

  it('n1 may not take the MAC while n2 has it up: refused, naming n2, nothing changed', async () => {
    const pb = path.join(tmp, 'grab.yml');
    writeFileSync(pb, `- name: take the MAC on n1\n  hosts: n1\n  steps:\n    - failover_mac: { interface: fo1, mac: "${groupNamed('nfs-a').mac}" }\n`);
    const r = await run(['run', '--yes', '-i', L().inventoryPath, pb]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/will not failover_mac mac 02:ba:12:c6:03:01 on n1: n2 has MAC 02:ba:12:c6:03:01 up on fo1/);
    expect(await macOn(groupNamed('nfs-a').mac!)).toEqual(['n2 fo1 up']);
    expect(await fo1('n1')).toBe(`${ownMac('n1')} down`);
  });

  it('the MAC brought up by hand on n1 while nfs-a runs on n2: status says SPLIT naming both (exit 2); taken down again, running', async () => {
    const a = groupNamed('nfs-a');
    const ns = L().node('n1').netns;
    const set = async (...args: string[]) => {
      const r = await runRaw(['ip', '-n', ns, 'link', 'set', 'dev', 'fo1', ...args]);
      if (r.code !== 0) throw new Error(`ip link set fo1 ${args.join(' ')} in n1: ${r.stderr}`);
    };
    await set('address', a.mac!, 'up');
    try {
      expect(await macOn(a.mac!)).toEqual(['n1 fo1 up', 'n2 fo1 up']);
      const r = await baton(['status', '-i', L().inventoryPath], state());
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stdout).toMatch(/nfs-a.*SPLIT on n1 and n2 \(VIP on n2; failover MAC on n1 and n2;/);
    } finally {
      await set('down');
      await set('address', ownMac('n1'));
    }
    expect(await status()).toEqual({ 'nfs-a': 'running on n2 (home n1)', 'nfs-b': 'running on n2' });
  });

  it('undo of the move: the MAC back on n1 only, n2\'s fo1 back to its own MAC and down, the client still on the same MAC and reading', async () => {
    const a = groupNamed('nfs-a');
    expect(moveRun).not.toBe('');
    const u = await run(['undo', moveRun, '--yes', '-i', L().inventoryPath]);
    ok(u, `undo ${moveRun}`);
    expect(await status()).toEqual({ 'nfs-a': 'running on n1', 'nfs-b': 'running on n2' });
    expect(await macOn(a.mac!)).toEqual(['n1 fo1 up']);
    expect(await fo1('n2')).toBe(`${ownMac('n2')} down`);
    expect(await addressOn(a.vip.address)).toEqual(['n1 fo1']);
    expect(await clientReadFrom(L().clients[0]!, a, 'mac.bin')).toBe(written);
    expect(await clientNeighbour(a.vip.address)).toBe(a.mac);
  });

  it('for contrast, nfs-b (no failover MAC) moved n2 -> n1: the client\'s entry for its VIP changes to n1\'s eth0 MAC (GARP\'s work), and nfs-a\'s MAC stays on n1', async () => {
    const b = groupNamed('nfs-b');
    // The client lists nfs-b's export through its VIP: a neighbour entry to watch.
    const ls = await L().clientExec(L().clients[0]!, ['nfs-ls', `nfs://${b.vip.address}${b.nfsExports[0]!.pseudo}?version=4`]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(await clientNeighbour(b.vip.address)).toBe(L().node('n2').mac);
    ok(await run(['run', '--yes', '-i', L().inventoryPath, path.resolve('playbooks/service-move.yml'), '-e', 'service=nfs-b']), 'service-move nfs-b');
    expect(await addressOn(b.vip.address)).toEqual(['n1 eth0']);
    expect(await clientNeighbour(b.vip.address)).toBe(L().node('n1').mac);
    expect(await macOn(groupNamed('nfs-a').mac!)).toEqual(['n1 fo1 up']);
  });

  it('node-failover -e failed=n1: n1 fenced (its NICs go with its power), both groups on n2, the MAC on n2 only, the client on the same MAC and reading', async () => {
    const a = groupNamed('nfs-a');
    ok(await run(['run', '--yes', '-i', L().inventoryPath, path.resolve('playbooks/node-failover.yml'), '-e', 'failed=n1']), 'node-failover n1');
    expect(await L().power('n1', 'status')).toMatch(/off/);
    expect(await macOn(a.mac!)).toEqual(['n2 fo1 up']);
    expect(await fo1('n1')).toBe(`${ownMac('n1')} down`);
    expect(await addressOn(a.vip.address)).toEqual(['n2 fo1']);
    expect(await addressOn(groupNamed('nfs-b').vip.address)).toEqual(['n2 eth0']);
    expect(await clientNeighbour(a.vip.address)).toBe(a.mac);
    expect(await clientReadFrom(L().clients[0]!, a, 'mac.bin')).toBe(written);
  });
});
