import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInputs } from '../../src/cli/inputs.js';
import { renderPlan } from '../../src/cli/plan.js';
import { loadInventory } from '../../src/inventory/load.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { testRegistry } from './fixtures/kinds.js';

/**
 * Roles offer one step per provider (`when: volume_provider == 'zfs'`); the steps of the
 * providers not in use are left out when the play is built, so a plan shows only what can run.
 */
let dir: string;
let inventory: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'baton-providers-'));
  inventory = path.join(dir, 'lab.yml');
  copyFileSync(path.resolve('inventory/lab.example.yml'), inventory);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function plan(playbook: string, extraVars: string[]): Promise<string> {
  const o = { inventory, extraVars };
  const inputs = loadInputs(path.resolve('playbooks', playbook), o);
  await inputs.registry.ensureLoaded();
  return renderPlan(inputs, o);
}

describe('provider steps of the shipped roles', () => {
  it('the plan of nfs-switchover on the lab (loop volumes) has no ZFS or LVM step', async () => {
    const out = await plan('nfs-switchover.yml', ['from=n1', 'to=n2']);
    expect(out).not.toMatch(/zfs|lvm|zpool|vgchange|volume group|skipped/i);
    // ...and still every step of a loop move, in order.
    const steps = out.split('\n').filter((l) => /^ {2}n[12]: /.test(l)).map((l) => l.replace(/ {2}\[.*$/, '').trim());
    expect(steps).toEqual([
      'n1: lower the VIP 198.18.0.200 on eth0',
      'n1: stop exporting /srv/disk1',
      'n1: unmount /srv/disk1',
      'n1: detach the shared volume /var/lib/baton-lab/lab/disks/disk1.img',
      'n2: attach the shared volume /var/lib/baton-lab/lab/disks/disk1.img',
      'n2: mount /var/lib/baton-lab/lab/disks/disk1.img on /srv/disk1',
      'n2: export /srv/disk1 as /disk1 (fsid 101)',
      'n2: raise the VIP 198.18.0.200/24 on eth0',
      // Decided at run time (when: vip_raised is changed), so still in the plan:
      'n2: announce 198.18.0.200 from its new holder',
      'n2: restart statd with the shared state and notify lock holders from 198.18.0.200',
    ]);
  });

  it('with -e volume_provider=zfs the plan has the ZFS steps and no loop or LVM step', async () => {
    const out = await plan('nfs-switchover.yml', ['from=n1', 'to=n2', 'volume_provider=zfs', 'volume_pool=tank']);
    expect(out).toContain('n1: export the ZFS pool tank');
    expect(out).toContain('n2: import the ZFS pool tank');
    expect(out).not.toMatch(/loop|LVM|detach the shared volume|unmount/);
  });

  it('every shipped playbook that moves the volume plans without another provider\'s step', async () => {
    for (const [pb, vars] of [
      ['nfs-failover.yml', ['from=n1', 'to=n2']],
      ['nfs-failback.yml', ['from=n2', 'to=n1']],
      ['nfs-start.yml', ['on=n1']],
      ['nfs-stop.yml', ['on=n1']],
    ] as const) {
      expect(await plan(pb, [...vars]), pb).not.toMatch(/zfs|lvm/i);
    }
  });
});

describe('steps left out when their when: is false on every host', () => {
  const pb = (text: string) => {
    const f = path.join(mkdtempSync(path.join(dir, 'pb-')), 'pb.yml');
    writeFileSync(f, text);
    return f;
  };
  const load = (file: string, extraVars: Record<string, unknown> = {}) =>
    loadPlaybook(file, { inventory: loadInventory(inventory), extraVars, registry: testRegistry() });
  const names = (file: string, extraVars?: Record<string, unknown>) => load(file, extraVars).plays[0]!.steps.map((s) => s.name);

  it('keeps a step that is true on some host of the play, drops it when false on all', () => {
    const f = pb(
      [
        '- hosts: nodes',
        '  steps:',
        '    - { name: on n1 only, command: [uptime], when: "inventory_hostname == \'n1\'" }',
        '    - { name: on no node, command: [uptime], when: "iface == \'bond0\'" }',
        '    - { name: if asked, command: [uptime], when: "mode | default(\'x\') == \'on\'" }',
        '',
      ].join('\n'),
    );
    expect(names(f)).toEqual(['on n1 only']);
    expect(names(f, { mode: 'on' })).toEqual(['on n1 only', 'if asked']);
  });

  it('leaves to the run what depends on registered results, loop items or play_hosts', () => {
    const f = pb(
      [
        '- hosts: nodes',
        '  steps:',
        '    - { name: first, command: [uptime], register: first }',
        '    - { name: after first, command: [uptime], when: first is changed }',
        '    - { name: guarded, command: [uptime], when: first is not defined }',
        '    - { name: looped, command: [uptime], loop: [a, b], when: "item == \'z\'" }',
        '    - { name: few hosts, command: [uptime], when: "play_hosts | length > 5" }',
        '    - { name: registers, command: [uptime], when: "iface == \'bond0\'", register: r }',
        '',
      ].join('\n'),
    );
    expect(names(f)).toEqual(['first', 'after first', 'guarded', 'looped', 'few hosts', 'registers']);
  });

  it('tells a -v reader which steps were left out and why', () => {
    const f = pb('- hosts: nodes\n  steps:\n    - { name: never here, command: [uptime], when: "iface == \'bond0\'" }\n');
    expect(load(f).notices).toEqual([
      { loc: { file: f, line: 3, col: 7 }, message: `left out of the play: "never here" never runs here (when: iface == 'bond0' is false for every host of the play)` },
    ]);
  });
});
