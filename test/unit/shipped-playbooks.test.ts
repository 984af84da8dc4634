import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadInventory } from '../../src/inventory/load.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { defaultRegistry } from '../../src/steps/registry.js';

const playbooks = readdirSync('playbooks').filter((f) => f.endsWith('.yml'));
const extraVars = (file: string, from: string, to: string): Record<string, unknown> => {
  if (/nfs-(start|stop)/.test(file)) return { on: from };
  // The health checks look at a group of nodes: the lab's is `nodes`, the production example's `nas`.
  if (file === 'nfs-health.yml' || file === 'iscsi-health.yml') return from === 'nas1' ? { health_group: 'nas' } : {};
  // The service-group playbooks name a group or a node; where each group runs is read at run time.
  if (/^service-(move|start|stop)\.yml$/.test(file)) return { service: 'nfs' };
  if (file === 'node-evacuate.yml') return { node: from };
  if (file === 'node-failover.yml') return { failed: from };
  return { from, to };
};

describe('shipped playbooks', () => {
  it.each(playbooks)('%s validates against the lab inventory', (file) => {
    const inventory = loadInventory(path.resolve('inventory/lab.example.yml'));
    const pb = loadPlaybook(path.resolve('playbooks', file), { inventory, extraVars: extraVars(file, 'n1', 'n2'), registry: defaultRegistry() });
    expect(pb.plays.length).toBeGreaterThan(0);
  });

  it.each(playbooks)('%s validates against the production example inventory', (file) => {
    const inventory = loadInventory(path.resolve('inventory/production.example.yml'));
    loadPlaybook(path.resolve('playbooks', file), { inventory, extraVars: extraVars(file, 'nas1', 'nas2'), registry: defaultRegistry() });
  });

  it('every step of the failover playbooks is tagged with its phase', () => {
    const inventory = loadInventory(path.resolve('inventory/lab.example.yml'));
    const phases = ['fence', 'release', 'takeover'];
    for (const file of ['nfs-switchover.yml', 'nfs-failover.yml', 'nfs-failback.yml']) {
      const pb = loadPlaybook(path.resolve('playbooks', file), { inventory, extraVars: { from: 'n1', to: 'n2' }, registry: defaultRegistry() });
      for (const play of pb.plays) {
        for (const step of play.steps) {
          if (step.kind === 'assert') continue;
          expect(step.tags.some((t) => phases.includes(t)), `${file}: ${step.name ?? step.kind} has a phase tag`).toBe(true);
        }
      }
    }
  });

  it('a takeover without a fence or release before it is refused by validation', () => {
    const inventory = loadInventory(path.resolve('inventory/lab.example.yml'));
    const pb = path.resolve('test/unit/fixtures/unsafe-takeover.yml');
    expect(() => loadPlaybook(pb, { inventory, extraVars: { to: 'n2' }, registry: defaultRegistry() })).toThrow(/unsafe order: takeover step/);
  });
});
