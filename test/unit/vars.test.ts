import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Inventory } from '../../src/inventory/model.js';
import { parseExtraVars } from '../../src/playbook/extra-vars.js';
import type { Play, StepSpec } from '../../src/playbook/model.js';
import { varsFor } from '../../src/playbook/vars.js';

const inventory: Inventory = {
  file: 'inv.yml',
  hosts: new Map([
    ['n1', { name: 'n1', groups: ['all', 'nas'], vars: { x: 'inventory', ansible_host: '10.0.0.1' } }],
    ['n2', { name: 'n2', groups: ['all'], vars: {} }],
  ]),
  groups: new Map([
    ['all', { name: 'all', hosts: ['n1', 'n2'], children: ['nas'], vars: {} }],
    ['nas', { name: 'nas', hosts: ['n1'], children: [], vars: {} }],
  ]),
};
const play = (vars: Record<string, unknown>): Play => ({ name: 'p', hosts: 'all', vars, steps: [], tags: [], loc: { file: 'p.yml', line: 1, col: 1 } });
const step = (defaults: Record<string, unknown>, params: Record<string, unknown>): StepSpec => ({
  id: 'p0.s0.r.s0', kind: 'command', args: [], tags: [], when: [], loopVar: 'item', runOnce: false, retries: 0, delayS: 5, ignoreErrors: false,
  role: { name: 'r', defaults, params }, loc: { file: 'r.yml', line: 1, col: 1 },
});

describe('varsFor precedence', () => {
  const layers = (upTo: number) => {
    const v = (n: number) => (n <= upTo ? `layer${n}` : undefined);
    const only = (n: number) => (v(n) ? { x: v(n) } : {});
    return varsFor({
      host: { ...inventory.hosts.get('n1')!, vars: { ...inventory.hosts.get('n1')!.vars, ...(upTo >= 1 ? { x: 'layer1' } : { x: undefined }) } },
      inventory,
      play: play(only(2)),
      step: step({ x: 'layer0' }, only(3)),
      registered: only(4),
      loop: upTo >= 5 ? { var: 'x', value: 'layer5' } : undefined,
      extraVars: only(6),
    }).x;
  };
  it('orders role defaults < inventory < play < role params < registered < loop < extra vars', () => {
    expect(varsFor({ host: { name: 'n2', groups: [], vars: {} }, inventory, play: play({}), step: step({ x: 'layer0' }, {}) }).x).toBe('layer0');
    for (let n = 1; n <= 6; n++) expect(layers(n)).toBe(`layer${n}`);
  });

  it('sets magic vars nobody can override', () => {
    const v = varsFor({ host: inventory.hosts.get('n1')!, inventory, play: play({ inventory_hostname: 'fake' }), playHosts: ['n1', 'n2'] });
    expect(v.inventory_hostname).toBe('n1');
    expect((v.hostvars as Record<string, Record<string, unknown>>).n1!.ansible_host).toBe('10.0.0.1');
    expect(v.groups).toEqual({ all: ['n1', 'n2'], nas: ['n1'] });
    expect(v.play_hosts).toEqual(['n1', 'n2']);
  });
});

describe('parseExtraVars', () => {
  it('reads key=value pairs as strings, several per argument, later wins', () => {
    expect(parseExtraVars(['from=nas1 to=nas2', 'port=22', 'to=nas3', 'msg="a b"'])).toEqual({ from: 'nas1', to: 'nas3', port: '22', msg: 'a b' });
  });

  it('reads JSON with types, and @files', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-ev-'));
    try {
      writeFileSync(path.join(dir, 'v.yml'), 'vips: [a, b]\nn: 3\n');
      expect(parseExtraVars(['{"n": 1, "on": true}', '@v.yml'], dir)).toEqual({ n: 3, on: true, vips: ['a', 'b'] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses what it cannot read, saying which -e', () => {
    expect(() => parseExtraVars(['to=nas2', 'oops'])).toThrow('-e #2:1:1: extra var "oops" is not key=value');
    expect(() => parseExtraVars(['{"a": '])).toThrow('look like JSON but do not parse');
    expect(() => parseExtraVars(['@/nonexistent/v.yml'])).toThrow('cannot read extra vars from @/nonexistent/v.yml');
  });
});
