import type { Inventory, Host } from '../../src/inventory/model.js';
import type { Play, Playbook, StepSpec } from '../../src/playbook/model.js';
import { ValidationError } from '../../src/util/errors.js';

/** Build the loaded-playbook model in code, for engine tests that need no YAML. */
export function step(kind: string, args: unknown, extra: Partial<StepSpec> = {}): StepSpec {
  return {
    id: extra.id ?? `p0.s${Math.random().toString(36).slice(2, 8)}`,
    kind,
    args,
    tags: [kind, ...(extra.tags ?? [])],
    when: [],
    loopVar: 'item',
    runOnce: false,
    retries: 0,
    delayS: 0,
    ignoreErrors: false,
    loc: { file: 'test.yml', line: 1, col: 1 },
    ...extra,
  };
}

export function playbook(steps: StepSpec[], extra: Partial<Play> = {}): Playbook {
  steps.forEach((s, i) => (s.id = `p0.s${i}`));
  return {
    file: 'test.yml',
    plays: [{ name: 'test play', hosts: 'all', vars: {}, steps, tags: [], loc: { file: 'test.yml', line: 1, col: 1 }, ...extra }],
  };
}

export function localInventory(names = ['local']): Inventory {
  const hosts = new Map<string, Host>();
  for (const name of names) hosts.set(name, { name, vars: { ansible_connection: 'local' }, groups: ['all'] });
  return { file: '<test>', hosts, groups: new Map([['all', { name: 'all', hosts: names, children: [], vars: {} }]]) };
}

/** The problems a load reports, as `line:col message` (none when it loads). */
export function loadProblems(load: () => unknown): string[] {
  try {
    load();
  } catch (e) {
    if (e instanceof ValidationError) return e.problems.map((p) => `${p.loc.line}:${p.loc.col} ${p.message}`);
    throw e;
  }
  return [];
}
