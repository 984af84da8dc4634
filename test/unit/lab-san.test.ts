/**
 * `baton lab up --san`, without building the lab: where the SAN sits and what the inventory
 * tells the scsi-pr provider. The SAN stays inside the lab (its /24, its name prefix, its dir)
 * and a lab without --san is as before.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yaml from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { inventoryObject } from '../../src/lab/inventory.js';
import { planLab, type LabSpec } from '../../src/lab/plan.js';
import { sanOf } from '../../src/lab/san.js';
import { sameSpec } from '../../src/lab/state.js';
import { loadInventory } from '../../src/inventory/load.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-lab-san-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const spec = (more: Partial<LabSpec> = {}): LabSpec => ({ name: 'sanu', subnet: '198.18.202.0/24', nodes: 2, clients: 1, disks: 1, diskMiB: 64, ...more });

describe('lab up --san', () => {
  it('puts the SAN on .250 of the lab\'s /24, in a namespace and directory of the lab', () => {
    const plan = planLab(spec({ san: true }));
    const s = sanOf(plan);
    expect(s.address).toBe('198.18.202.250');
    expect(s.portal).toBe('198.18.202.250:3260');
    expect(s.netns).toBe('baton-sanu-san');
    expect(s.image.startsWith(`${plan.dir}/`)).toBe(true);
    expect(s.iqn).toBe('iqn.2026-11.dev.baton.lab:sanu.san');
    // Clear of every node, client and VIP of the lab.
    const taken = [...plan.nodes.map((n) => n.address), ...plan.clients.map((c) => c.address), plan.controllerAddress, plan.vip];
    expect(taken).not.toContain(s.address);
    expect([...plan.nodes.map((n) => n.mac), ...plan.clients.map((c) => c.mac)]).not.toContain(s.mac);
  });

  it('writes the shared LUN into the inventory, where every node\'s vars have it', () => {
    const file = path.join(tmp, 'san.yml');
    writeFileSync(file, yaml.dump(inventoryObject(planLab(spec({ san: true })))));
    const inv = loadInventory(file);
    for (const n of ['n1', 'n2']) {
      expect(inv.hosts.get(n)!.vars).toMatchObject({ scsi_pr_portal: '198.18.202.250:3260', scsi_pr_iqn: 'iqn.2026-11.dev.baton.lab:sanu.san', scsi_pr_lun: 1 });
    }
  });

  it('without --san: no scsi_pr_* vars, and a running lab with a SAN is another spec', () => {
    const vars = (inventoryObject(planLab(spec())) as { all: { vars: Record<string, unknown> } }).all.vars;
    expect(Object.keys(vars).filter((k) => k.startsWith('scsi_pr'))).toEqual([]);
    expect(sameSpec(spec(), spec({ san: true }))).toBe(false);
    expect(sameSpec(spec(), spec({ san: false }))).toBe(true);
  });
});
