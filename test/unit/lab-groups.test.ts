/**
 * `baton lab up --groups N`, without building the lab: the plan and the inventory it writes.
 * The inventory must load as service groups a user would then move (homes round-robin, every
 * node allowed, one disk and one VIP each), and without --groups nothing changes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yaml from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { inventoryObject } from '../../src/lab/inventory.js';
import { labsRoot, planLab, type LabSpec } from '../../src/lab/plan.js';
import { loadInventory } from '../../src/inventory/load.js';
import { loadServiceGroups } from '../../src/inventory/services.js';
import { BatonError } from '../../src/util/errors.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-lab-groups-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const disk = (i: number) => path.join(labsRoot(), 'grpu', 'disks', `disk${i}.img`);
const spec = (more: Partial<LabSpec> = {}): LabSpec => ({ name: 'grpu', subnet: '198.18.190.0/24', nodes: 3, clients: 1, disks: 2, diskMiB: 64, ...more });

function groupsOfInventory(s: LabSpec) {
  const file = path.join(tmp, `${s.name}-${s.groups ?? 0}.yml`);
  writeFileSync(file, yaml.dump(inventoryObject(planLab(s))));
  return loadServiceGroups(loadInventory(file));
}

describe('lab up --groups', () => {
  it('4 groups on 3 nodes: homes n1 n2 n3 n1, every node allowed, one disk and one VIP of the /24 each', () => {
    const groups = groupsOfInventory(spec({ groups: 4 }));
    expect(groups.map((g) => [g.name, g.nodes.join(' '), `${g.vip.address}/${g.vip.prefix}`, g.volume, g.mount?.path, g.nfsExports.map((e) => `${e.pseudo} ${e.fsid}`)])).toEqual([
      ['nfs-a', 'n1 n2 n3', '198.18.190.200/24', { provider: 'loop', image: disk(1) }, '/srv/disk1', ['/disk1 101']],
      ['nfs-b', 'n2 n3 n1', '198.18.190.201/24', { provider: 'loop', image: disk(2) }, '/srv/disk2', ['/disk2 102']],
      ['nfs-c', 'n3 n1 n2', '198.18.190.202/24', { provider: 'loop', image: disk(3) }, '/srv/disk3', ['/disk3 103']],
      ['nfs-d', 'n1 n2 n3', '198.18.190.203/24', { provider: 'loop', image: disk(4) }, '/srv/disk4', ['/disk4 104']],
    ]);
  });

  it('makes enough disks for the groups, and keeps more when --disks asks for more', () => {
    expect(planLab(spec({ groups: 4 })).disks).toHaveLength(4);
    expect(planLab(spec({ groups: 2, disks: 5 })).disks).toHaveLength(5);
  });

  it('the first group is the single service of the nfs-* playbooks (same VIP, disk, mount, fsid)', () => {
    const [a] = groupsOfInventory(spec({ groups: 1 }));
    const plan = planLab(spec({ groups: 1 }));
    expect(`${a!.vip.address}`).toBe(plan.vip);
    expect(a!.volume).toEqual({ provider: 'loop', image: plan.disks[0] });
  });

  it('without --groups: the inventory of before (no baton_services; the implied group nfs)', () => {
    const inv = inventoryObject(planLab(spec())) as { all: { vars: Record<string, unknown> } };
    expect(inv.all.vars).not.toHaveProperty('baton_services');
    expect(groupsOfInventory(spec()).map((g) => [g.name, g.implied, g.nodes])).toEqual([['nfs', true, ['n1', 'n2', 'n3']]]);
  });

  it('more groups than the lab has disks and VIPs for: refused, nothing made', () => {
    expect(() => planLab(spec({ groups: 9 }))).toThrow(BatonError);
    expect(() => planLab(spec({ groups: 9 }))).toThrow(/--groups must be an integer from 0 to 8, got 9/);
  });
});
