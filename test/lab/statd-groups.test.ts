/**
 * NFSv3 locks with two service groups on one node (docs/statd.md). Lab `statdgrp`: two nodes, two
 * clients, two groups (nfs-a, nfs-b). Both groups start on n2 and `node-evacuate -e node=n2` lands
 * them on n1 at the same time. Each client then takes a real NLM lock through NFS-Ganesha on n1,
 * through its own group's VIP (c1 through nfs-a, c2 through nfs-b): Ganesha registers the holder
 * with n1's one rpc.statd, and baton's callout records it in that group's list on its volume.
 * `service-move -e service=nfs-a -e to=n2`: c1 gets SM_NOTIFY from nfs-a's VIP with a larger state
 * number; c2 gets nothing, n1's statd is the same process, nfs-b's list is whole. Then nfs-b
 * moves, and it is the other way round. Last, n2 (now holding both) is fenced by node-failover:
 * both groups land on n1 together and each client is notified once more, from its own group's VIP.
 * Root only; the lab is torn down whatever happens.
 */
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupStartVars } from '../helpers/groups.js';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { baton, type BatonResult } from '../helpers/nfs-service.js';
import { startClientStatd, type ClientStatd } from '../helpers/client-statd.js';
import { loadInventory } from '../../src/inventory/load.js';
import { loadServiceGroups, type ServiceGroup } from '../../src/inventory/services.js';
import { parseStatdState, statdStateReadArgv } from '../../src/facts/nfs.js';
import { nsmLinkPath } from '../../src/facts/nsm.js';

const viteNode = path.join(path.dirname(createRequire(import.meta.url).resolve('vite-node/package.json')), 'vite-node.mjs');

let lab: Lab | undefined;
let tmp: string;
let groups: ServiceGroup[];
const statds: Record<string, ClientStatd> = {};

function L(): Lab {
  if (!lab) throw new Error('the lab did not come up (see beforeAll)');
  return lab;
}

const state = () => path.join(tmp, 'state');
const group = (name: string) => groups.find((g) => g.name === name)!;
const stateDir = (g: ServiceGroup) => `${g.mount!.path}/.nfs-statd`;
const clientAddress = (name: string) => L().clients.find((c) => c.name === name)!.address;

async function run(playbook: string, vars: Record<string, unknown>): Promise<void> {
  const t0 = performance.now();
  const r: BatonResult = await baton(['run', '--yes', '-i', L().inventoryPath, path.resolve(playbook), '-e', JSON.stringify(vars)], state());
  if (r.code !== 0) throw new Error(`${path.basename(playbook)} ${JSON.stringify(vars)} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  // What the lock holder steps cost, for docs/statd.md (the engine prints each step's time).
  const steps = r.stdout.split('\n').filter((l) => /lock holders/.test(l) && /\(\d+ ms\)/.test(l));
  console.log(`${path.basename(playbook)} ${JSON.stringify(vars)}: ${(performance.now() - t0).toFixed(0)} ms\n${steps.map((l) => `  ${l.trim()}`).join('\n')}`);
}

/** An NFSv3 lock through the group's VIP, taken from the client's namespace. */
async function lockThrough(client: string, g: ServiceGroup, file: string): Promise<void> {
  const o = { server: g.vip.address, exportPath: g.nfsExports[0]!.path, file, caller: client };
  const r = await L().clientExec(client, [process.execPath, viteNode, path.resolve('test/helpers/nlm-lock-main.ts'), JSON.stringify(o)], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${client}: NLM lock on ${g.vip.address}:${o.exportPath}/${file} failed (exit ${r.code}): ${r.stderr.trim()}`);
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { stat: number };
  expect(res.stat, `${client}'s NLM LOCK through ${g.name} (nlm4_stats 0 = granted)`).toBe(0);
}

/** The holders recorded in a group's list, read on the node that has its volume mounted. */
async function holders(node: string, g: ServiceGroup): Promise<string[]> {
  const out = await L().sshOk(node, ['ls', '-A', `${stateDir(g)}/sm`]);
  return out.split('\n').filter(Boolean).sort();
}

async function groupState(node: string, g: ServiceGroup): Promise<number> {
  return parseStatdState(await L().sshOk(node, statdStateReadArgv(stateDir(g))))!;
}

async function statdPid(node: string): Promise<string> {
  return (await L().sshOk(node, ['pgrep', '-o', '-x', 'rpc.statd'])).trim();
}

/** The name sm-notify sends for the VIP (its first name in the node's hosts file). */
async function vipName(node: string, g: ServiceGroup): Promise<string> {
  return (await L().sshOk(node, ['getent', 'hosts', g.vip.address])).trim().split(/\s+/)[1]!;
}

const notifies = (c: string) => (statds[c]!.log().match(/Received SM_NOTIFY from .*/g) ?? []).map((l) => l.trim());

describe('NFSv3 lock holders of two groups on one node', () => {
  beforeAll(async () => {
    requireRoot();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-statdgrp-'));
    lab = await startLab({ name: 'statdgrp', subnet: '198.18.197.0/24', nodes: 2, clients: 2, groups: 2 });
    groups = loadServiceGroups(loadInventory(lab.inventoryPath));
    // Both on n2, then both onto n1 at once: the landing records each group's holders there.
    for (const g of groups) await run('playbooks/nfs-start.yml', groupStartVars(g, 'n2'));
    await run('playbooks/node-evacuate.yml', { node: 'n2' });
    for (const c of ['c1', 'c2']) statds[c] = await startClientStatd(lab, c);
  });

  afterAll(async () => {
    for (const s of Object.values(statds)) s.stop();
    await lab?.down();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("records each lock holder in the list of the group whose VIP it locked through, on that group's volume", async () => {
    const [a, b] = [group('nfs-a'), group('nfs-b')];
    expect([a.name, b.name]).toEqual(['nfs-a', 'nfs-b']);
    // Both groups are tracked on n1, each to its own volume.
    expect((await L().sshOk('n1', ['readlink', nsmLinkPath(a.vip.address)])).trim()).toBe(stateDir(a));
    expect((await L().sshOk('n1', ['readlink', nsmLinkPath(b.vip.address)])).trim()).toBe(stateDir(b));
    await L().sshOk('n1', ['touch', `${a.mount!.path}/lock-c1`, `${b.mount!.path}/lock-c2`]);
    await lockThrough('c1', a, 'lock-c1');
    await lockThrough('c2', b, 'lock-c2');
    expect(await holders('n1', a)).toEqual([clientAddress('c1')]);
    expect(await holders('n1', b)).toEqual([clientAddress('c2')]);
    // n1's one statd monitors both (Ganesha registered them there).
    expect((await L().sshOk('n1', ['ls', '/var/lib/nfs/sm'])).split('\n').filter(Boolean).sort()).toEqual(['c1', 'c2']);
  });

  it("moving nfs-a notifies only c1, from nfs-a's VIP, with a larger state number; c2 and n1's statd are left alone", async () => {
    const [a, b] = [group('nfs-a'), group('nfs-b')];
    const before = { a: await groupState('n1', a), b: await groupState('n1', b), pid: await statdPid('n1') };
    await run('playbooks/service-move.yml', { service: 'nfs-a', to: 'n2' });
    const after = await groupState('n2', a);
    expect(after).toBeGreaterThan(before.a);
    const name = await vipName('n2', a);
    const line = `Received SM_NOTIFY from ${name}, state: ${after}`;
    expect(await statds.c1!.waitFor(line, 10_000), `c1's statd log:\n${statds.c1!.log()}`).toBe(true);
    expect(statds.c1!.log()).toContain(`access by ${a.vip.address} ALLOWED`);
    // Give a stray notification to c2 the time c1's took, and more.
    await new Promise((r) => setTimeout(r, 1500));
    expect(notifies('c2'), `c2's statd log:\n${statds.c2!.log()}`).toEqual([]);
    expect(notifies('c1')).toEqual([line]);
    // n1 still serves nfs-b with the same statd; nfs-b's list and state number are as they were.
    expect(await statdPid('n1')).toBe(before.pid);
    expect(await holders('n1', b)).toEqual([clientAddress('c2')]);
    expect(await groupState('n1', b)).toBe(before.b);
    // nfs-a's list moved with its volume, whole; n1 no longer records for nfs-a, n2 does.
    expect(await holders('n2', a)).toEqual([clientAddress('c1')]);
    expect((await L().sshExec('n1', ['readlink', nsmLinkPath(a.vip.address)])).code).not.toBe(0);
    expect((await L().sshOk('n2', ['readlink', nsmLinkPath(a.vip.address)])).trim()).toBe(stateDir(a));
  });

  it("then moving nfs-b notifies only c2, from nfs-b's VIP", async () => {
    const b = group('nfs-b');
    const before = await groupState('n1', b);
    const c1Before = notifies('c1');
    await run('playbooks/service-move.yml', { service: 'nfs-b', to: 'n2' });
    const after = await groupState('n2', b);
    expect(after).toBeGreaterThan(before);
    const line = `Received SM_NOTIFY from ${await vipName('n2', b)}, state: ${after}`;
    expect(await statds.c2!.waitFor(line, 10_000), `c2's statd log:\n${statds.c2!.log()}`).toBe(true);
    expect(statds.c2!.log()).toContain(`access by ${b.vip.address} ALLOWED`);
    await new Promise((r) => setTimeout(r, 1500));
    expect(notifies('c2')).toEqual([line]);
    expect(notifies('c1')).toEqual(c1Before);
  });

  it('n2 fails with both groups: after node-failover each client is notified once more, from its own group\'s VIP', async () => {
    const [a, b] = [group('nfs-a'), group('nfs-b')];
    const before = { a: await groupState('n2', a), b: await groupState('n2', b), c1: notifies('c1'), c2: notifies('c2') };
    // The lists are on the volumes: the dead node's memory and /run are not needed.
    await run('playbooks/node-failover.yml', { failed: 'n2' });
    const after = { a: await groupState('n1', a), b: await groupState('n1', b) };
    expect(after.a).toBeGreaterThan(before.a);
    expect(after.b).toBeGreaterThan(before.b);
    const lineA = `Received SM_NOTIFY from ${await vipName('n1', a)}, state: ${after.a}`;
    const lineB = `Received SM_NOTIFY from ${await vipName('n1', b)}, state: ${after.b}`;
    expect(await statds.c1!.waitFor(lineA, 10_000), `c1's statd log:\n${statds.c1!.log()}`).toBe(true);
    expect(await statds.c2!.waitFor(lineB, 10_000), `c2's statd log:\n${statds.c2!.log()}`).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    expect(notifies('c1')).toEqual([...before.c1, lineA]);
    expect(notifies('c2')).toEqual([...before.c2, lineB]);
    expect(await holders('n1', a)).toEqual([clientAddress('c1')]);
    expect(await holders('n1', b)).toEqual([clientAddress('c2')]);
  });
});
