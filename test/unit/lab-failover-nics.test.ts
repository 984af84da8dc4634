/**
 * `baton lab up --groups N --failover-nics K`, without building the lab: each node's spare
 * interfaces (names, switch ports, own MACs), and the inventory: groups 1..K with a failover MAC
 * of their own on fo1..foK, the others as before, and each node's own MACs for release_mac.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yaml from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { inventoryObject } from '../../src/lab/inventory.js';
import { planLab, type LabSpec } from '../../src/lab/plan.js';
import { sameSpec } from '../../src/lab/state.js';
import { loadInventory } from '../../src/inventory/load.js';
import { loadServiceGroups } from '../../src/inventory/services.js';
import { moveOf } from '../../src/engine/placement.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-lab-fnics-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const spec = (more: Partial<LabSpec> = {}): LabSpec => ({ name: 'fnicu', subnet: '198.18.198.0/24', nodes: 3, clients: 1, disks: 2, diskMiB: 64, ...more });

function inventoryOf(s: LabSpec) {
  const file = path.join(tmp, `${s.groups ?? 0}-${s.failoverNics ?? 0}.yml`);
  writeFileSync(file, yaml.dump(inventoryObject(planLab(s))));
  return loadInventory(file);
}

describe('lab up --failover-nics', () => {
  it('every node gets fo1..foK, each with its own locally administered MAC and its own port on the switch', () => {
    const plan = planLab(spec({ groups: 3, failoverNics: 2 }));
    expect(plan.nodes.map((n) => n.failoverNics)).toEqual([
      [{ name: 'fo1', switchPort: 'n1f1', mac: '02:ba:12:c6:04:11' }, { name: 'fo2', switchPort: 'n1f2', mac: '02:ba:12:c6:04:12' }],
      [{ name: 'fo1', switchPort: 'n2f1', mac: '02:ba:12:c6:04:21' }, { name: 'fo2', switchPort: 'n2f2', mac: '02:ba:12:c6:04:22' }],
      [{ name: 'fo1', switchPort: 'n3f1', mac: '02:ba:12:c6:04:31' }, { name: 'fo2', switchPort: 'n3f2', mac: '02:ba:12:c6:04:32' }],
    ]);
    const macs = [...plan.nodes.flatMap((n) => [n.mac, ...n.failoverNics.map((f) => f.mac)]), ...plan.clients.map((c) => c.mac), ...plan.groups.flatMap((g) => (g.mac ? [g.mac] : []))];
    expect(new Set(macs).size).toBe(macs.length);
  });

  it('groups 1..K carry a failover MAC on fo1..foK (validated as a user\'s would be); the rest stay on eth0', () => {
    const inv = inventoryOf(spec({ groups: 3, failoverNics: 2 }));
    const groups = loadServiceGroups(inv);
    expect(groups.map((g) => [g.name, g.mac ?? null, g.failoverInterface ?? null, g.interface ?? null])).toEqual([
      ['nfs-a', '02:ba:12:c6:03:01', 'fo1', null],
      ['nfs-b', '02:ba:12:c6:03:02', 'fo2', null],
      ['nfs-c', null, null, 'eth0'],
    ]);
    // The move of nfs-a raises its VIP on fo1 and carries its MAC; nfs-c's move is the one of before.
    expect(moveOf(groups[0]!, 'n1', 'n2', 'switchover', inv)).toMatchObject({ interface: 'fo1', interface_from: 'fo1', mac: '02:ba:12:c6:03:01' });
    expect(moveOf(groups[2]!, 'n3', 'n1', 'switchover', inv)).toMatchObject({ interface: 'eth0', interface_from: 'eth0', mac: '' });
    // Each node tells release_mac the own MACs of its spare interfaces.
    expect(inv.hosts.get('n2')!.vars.failover_nics).toEqual({ fo1: '02:ba:12:c6:04:21', fo2: '02:ba:12:c6:04:22' });
  });

  it('without --failover-nics: no spare interface, no MAC, no failover_nics var; a different count is a different lab', () => {
    const plan = planLab(spec({ groups: 2 }));
    expect(plan.nodes.every((n) => n.failoverNics.length === 0)).toBe(true);
    const inv = inventoryOf(spec({ groups: 2 }));
    expect(loadServiceGroups(inv).map((g) => g.mac ?? null)).toEqual([null, null]);
    expect(inv.hosts.get('n1')!.vars).not.toHaveProperty('failover_nics');
    expect(sameSpec(spec({ groups: 2 }), spec({ groups: 2, failoverNics: 1 }))).toBe(false);
  });

  it('more than 8 per node: refused, nothing made', () => {
    expect(() => planLab(spec({ failoverNics: 9 }))).toThrow(/--failover-nics must be an integer from 0 to 8, got 9/);
  });
});
