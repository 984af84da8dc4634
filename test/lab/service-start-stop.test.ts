/**
 * service-start and service-stop on a 2-node lab with two service groups (`lab up --groups 2`:
 * nfs-a home n1, nfs-b home n2), as an operator uses them: the plan names where the start goes,
 * read from the nodes; a start runs the group on its first preferred node and the client reads
 * through its VIP; a second start changes nothing (exit 0); a start naming another node is
 * refused and points at service-move; a stop releases it wherever it runs (a second stop changes
 * nothing); `baton undo` of a start stops the group again; a group seen on two nodes is refused by
 * both. Root only; the lab is torn down whatever happens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientReadFrom, clientWriteTo, groupRuns, ok } from '../helpers/group-runs.js';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { changedCount, clusterState, runIdOf, vipHolders } from '../helpers/nfs-service.js';
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
const g = (name: string) => groups.find((x) => x.name === name)!;
const runs = groupRuns(L, () => path.join(tmp, 'state'));
const START = 'playbooks/service-start.yml';
const STOP = 'playbooks/service-stop.yml';

describe('service-start and service-stop of one group, placement read from the nodes', () => {
  beforeAll(async () => {
    requireRoot();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-startstop-'));
    lab = await startLab({ name: 'grpshow2', subnet: '198.18.196.0/24', nodes: 2, groups: 2 });
    groups = loadServiceGroups(loadInventory(lab.inventoryPath));
  });

  afterAll(async () => {
    await lab?.down();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('both groups stopped at first; the plan of a start names the node it will use, read from the nodes', async () => {
    expect(groups.map((x) => `${x.name} ${x.nodes.join(',')}`)).toEqual(['nfs-a n1,n2', 'nfs-b n2,n1']);
    expect((await runs.status()).where).toEqual({ 'nfs-a': 'stopped', 'nfs-b': 'stopped' });
    const plan = await runs.baton(['plan', '-i', L().inventoryPath, path.resolve(START), '-e', 'service=nfs-b']);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/^ {2}\S+ \[nfs-b\] on n2 {2}\(lock: service-nfs-b\)$/m);
    expect(plan.stdout).not.toMatch(/\[nfs-b\] on n1/);
  });

  it('service-start -e service=nfs-a: running on n1 (its first node), the client writes and reads through its VIP', async () => {
    const r = ok(await runs.run(START, { service: 'nfs-a' }), 'service-start nfs-a');
    expect(changedCount(r.stdout)).toBeGreaterThan(0);
    expect(await runs.status()).toMatchObject({ code: 1, where: { 'nfs-a': 'running on n1', 'nfs-b': 'stopped' } });
    written = await clientWriteTo(L().clients[0]!, g('nfs-a'), 'kept.bin', 128 * 1024);
    expect(await clientReadFrom(L().clients[0]!, g('nfs-a'), 'kept.bin')).toBe(written);
  });

  it('starting it again changes nothing (exit 0, a note says why); -e on=n2 is refused, pointing at service-move', async () => {
    const again = ok(await runs.run(START, { service: 'nfs-a' }), 'second service-start nfs-a');
    expect(changedCount(again.stdout)).toBe(0);
    expect(again.stderr).toContain('note: group nfs-a already runs on n1: nothing to start');
    const elsewhere = await runs.run(START, { service: 'nfs-a', on: 'n2' });
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toContain('group nfs-a already runs on n1, not n2: to move it, run playbooks/service-move.yml -e service=nfs-a -e to=n2; nothing was touched');
    expect(vipHolders(await clusterState(L()), g('nfs-a').vip.address)).toEqual(['n1']);
  });

  it('service-stop releases it on n1 (stopped, nothing left on any node); a second stop changes nothing', async () => {
    ok(await runs.run(STOP, { service: 'nfs-a' }), 'service-stop nfs-a');
    expect((await runs.status()).where['nfs-a']).toBe('stopped');
    const nodes = await clusterState(L());
    expect(vipHolders(nodes, g('nfs-a').vip.address)).toEqual([]);
    expect(Object.values(nodes).flatMap((n) => n.mounts).filter((m) => m.includes(g('nfs-a').mount!.path))).toEqual([]);
    const again = ok(await runs.run(STOP, { service: 'nfs-a' }), 'second service-stop nfs-a');
    expect(changedCount(again.stdout)).toBe(0);
    expect(again.stderr).toContain('note: group nfs-a is stopped already: nothing to stop');
  });

  it('service-start -e on=n2 runs it on n2 with the same bytes; `baton undo` of that start stops it again', async () => {
    const r = ok(await runs.run(START, { service: 'nfs-a', on: 'n2' }), 'service-start nfs-a on n2');
    expect((await runs.status()).where['nfs-a']).toBe('running on n2 (home n1)');
    expect(await clientReadFrom(L().clients[0]!, g('nfs-a'), 'kept.bin')).toBe(written);
    const undo = await runs.baton(['undo', '--yes', '-i', L().inventoryPath, runIdOf(r.stdout)]);
    if (undo.code !== 0) throw new Error(`undo failed (exit ${undo.code}):\n${undo.stdout}\n${undo.stderr}`);
    expect((await runs.status()).where['nfs-a']).toBe('stopped');
    expect(vipHolders(await clusterState(L()), g('nfs-a').vip.address)).toEqual([]);
  });

  it('a group seen on two nodes (its VIP raised by hand on the other) is refused by start and stop, nothing touched', async () => {
    ok(await runs.run(START, { service: 'nfs-b' }), 'service-start nfs-b');
    const vip = `${g('nfs-b').vip.address}/${g('nfs-b').vip.prefix}`;
    await L().sshOk('n1', ['ip', 'addr', 'add', vip, 'dev', 'eth0']);
    try {
      const start = await runs.run(START, { service: 'nfs-b' });
      expect(start.code).toBe(2);
      expect(start.stderr).toMatch(/cannot start group nfs-b: it is SPLIT on n2 and n1 .*; nothing was touched/);
      const stop = await runs.run(STOP, { service: 'nfs-b' });
      expect(stop.code).toBe(2);
      expect(stop.stderr).toMatch(/cannot stop group nfs-b: it is SPLIT on n2 and n1 .*; nothing was touched/);
      expect(vipHolders(await clusterState(L()), g('nfs-b').vip.address).sort()).toEqual(['n1', 'n2']);
    } finally {
      await L().sshExec('n1', ['ip', 'addr', 'del', vip, 'dev', 'eth0']);
    }
    expect((await runs.status()).where['nfs-b']).toBe('running on n2');
  });
});
