import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadInventory } from '../../src/inventory/load.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { stepKindsInSchema } from '../../src/playbook/schemas.js';
import { defaultRegistry } from '../../src/steps/registry.js';
import { testRegistry } from './fixtures/kinds.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const inventory = loadInventory(path.join(here, 'fixtures/inv/prod.yml'));
const file = path.join(here, 'fixtures/project/failover.yml');
const load = (extraVars: Record<string, unknown> = { to: 'nas2', from: 'nas1' }) => loadPlaybook(file, { inventory, extraVars, registry: testRegistry() });

describe('loadPlaybook', () => {
  it('expands roles before the play steps, with stable ids', () => {
    const [play] = load().plays;
    expect(play!.steps.map((s) => [s.id, s.kind])).toEqual([
      ['p0.s0.fencing.s0', 'fence'],
      ['p0.s1.vip.s0', 'raise_vip'],
      ['p0.s1.vip.s1', 'command'],
      ['p0.s2', 'wait_for'],
      ['p0.s3', 'command'],
    ]);
  });

  it('tags each step with its kind and the play and role tags', () => {
    const steps = load().plays[0]!.steps;
    expect(steps[1]!.tags).toEqual(['network', 'failover', 'vip', 'raise_vip']);
    expect(steps[4]!.tags).toEqual(['nfs', 'failover', 'command']);
  });

  it('keeps role defaults and params on role steps (roles/ next to the playbook, both layouts)', () => {
    const steps = load().plays[0]!.steps;
    // Every role's defaults are visible to the whole play, as in Ansible; a role's own win.
    expect(steps[0]!.role).toEqual({ name: 'fencing', defaults: { fence_target: '{{ from }}', vip_interface: 'eth0', vip_prefix: 24 }, params: {} });
    expect(steps[1]!.role).toEqual({ name: 'vip', defaults: { fence_target: '{{ from }}', vip_interface: 'eth0', vip_prefix: 24 }, params: { vip_interface: 'bond0' } });
    expect(steps[1]!.loc.file).toBe(path.join(here, 'fixtures/project/roles/vip/steps.yml'));
  });

  it('reads the step keys into the model, templates unrendered', () => {
    const play = load().plays[0]!;
    expect(play).toMatchObject({ name: 'move the service', hosts: '{{ to }}', requiresFence: true, tags: ['failover'] });
    const s = play.steps[4]!;
    expect(s).toMatchObject({
      args: { argv: ['exportfs', '{{ svc.export }}'] },
      loop: '{{ services }}',
      loopVar: 'svc',
      when: ['garp is changed', "svc.vip != '0.0.0.0'"],
      retries: 2,
      delayS: 1,
      timeoutS: 30,
      delegateTo: 'nas1',
      runOnce: false,
      ignoreErrors: false,
    });
    expect(s.loc).toEqual({ file, line: 19, col: 7 });
    expect(play.steps[3]).toMatchObject({ loopVar: 'item', retries: 0, delayS: 5, name: 'wait for ssh' });
  });

  it('resolves hosts from extra vars: another target is checked against the inventory', () => {
    expect(() => load({ to: 'nas5', from: 'nas1' })).toThrow('hosts: no host or group "nas5" (from "{{ to }}")');
  });

  it('finds roles through rolesPath when none sit next to the playbook', () => {
    const uses = path.join(here, 'fixtures/uses-role.yml');
    const pb = loadPlaybook(uses, { inventory, registry: testRegistry(), rolesPath: path.join(here, 'fixtures/project/roles') });
    expect(pb.plays[0]!.steps.map((s) => s.id)).toEqual(['p0.s0.fixture_vip.s0', 'p0.s0.fixture_vip.s1']);
    expect(() => loadPlaybook(uses, { inventory, registry: testRegistry() })).toThrow('role "fixture_vip" not found');
  });
});

describe('schemas/playbook.json', () => {
  it('references the schema of every registered step kind', () => {
    const listed = stepKindsInSchema();
    for (const kind of defaultRegistry().kinds()) expect(listed[kind], `step kind "${kind}" missing from schemas/playbook.json`).toBe(`steps/${kind}.json`);
  });
});
