/**
 * The engine's early start of a takeover kind's `prepare` (src/engine/prefetch.ts), on the local
 * transport with stand-in kinds: it starts when a release of the same resource completes, runs
 * while the steps in between do, and reaches the kind's preconditions only for the same args.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execute } from '../../src/engine/execute.js';
import { Redactor } from '../../src/engine/redact.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { defaultRegistry, StepRegistry } from '../../src/steps/registry.js';
import { allKinds } from '../../src/steps/index.js';
import type { StepKind } from '../../src/steps/contract.js';
import { TransportPool } from '../../src/transport/index.js';
import { connectionFor } from '../../src/inventory/connection.js';
import { localInventory, playbook, step } from '../helpers/model.js';
import type { Play, StepSpec } from '../../src/playbook/model.js';

let stateDir: string;
beforeEach(() => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'baton-prefetch-'));
  started.length = 0;
  given.length = 0;
});
afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

/** When each prepare started, and what each preconditions call was handed (resolved). */
const started: Array<{ name: string; at: number }> = [];
const given: Array<{ name: string; prepared: unknown }> = [];
const holding = new Set<string>(['x', 'y']);
const taken = new Set<string>();

const take: StepKind<{ name: string }, { held: boolean }> = {
  kind: 'take',
  inverse: 'give',
  role: 'takeover',
  resource: (a) => `thing ${a.name}`,
  async prepare(_ctx, a) {
    started.push({ name: a.name, at: Date.now() });
    return { name: a.name, at: Date.now() };
  },
  async preconditions(_ctx, a, prepared) {
    given.push({ name: a.name, prepared: prepared ? await prepared : undefined });
  },
  probe: async (_ctx, a) => ({ held: taken.has(a.name) }),
  satisfied: (o) => o.held,
  apply: async (_ctx, a) => void taken.add(a.name),
  revert: async () => undefined,
  describe: (a) => ({ summary: `take ${a.name}`, commands: [] }),
};

const give: StepKind<{ name: string }, { held: boolean }> = {
  kind: 'give',
  inverse: 'take',
  role: 'release',
  resource: (a) => `thing ${a.name}`,
  probe: async (_ctx, a) => ({ held: holding.has(a.name) }),
  satisfied: (o) => !o.held,
  apply: async (_ctx, a) => void holding.delete(a.name),
  revert: async () => undefined,
  describe: (a) => ({ summary: `give ${a.name}`, commands: [] }),
};

async function run(steps: StepSpec[], check = false, play: Partial<Play> = {}) {
  holding.clear();
  holding.add('x').add('y');
  taken.clear();
  const inventory = localInventory(['n1']);
  const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
  const events: EngineEvent[] = [];
  const registry = new StepRegistry([...allKinds, take as StepKind, give as StepKind], (k) => (['take', 'give'].includes(k) ? {} : defaultRegistry().schema(k)));
  try {
    const result = await execute({
      playbook: playbook(steps, { hosts: 'n1', ...play }),
      inventory,
      extraVars: {},
      registry,
      pool,
      runId: 'prefetch-run',
      redactor: new Redactor(),
      check,
      onEvent: (e) => events.push(e),
    });
    return { result, events };
  } finally {
    await pool.closeAll();
  }
}

const endOf = (events: EngineEvent[], kind: string) =>
  events.find((e): e is Extract<EngineEvent, { type: 'step-end' }> => e.type === 'step-end' && e.step.kind === kind)!;

describe('prepare: started once the release of the same resource completed', () => {
  it('runs while the steps in between do, and its result reaches the takeover\'s preconditions', async () => {
    const { result, events } = await run([step('give', { name: 'x' }), step('command', { argv: ['sleep', '0.3'] }), step('take', { name: 'x' })]);
    expect(result.exitCode).toBe(0);
    expect(started.map((s) => s.name)).toEqual(['x']);
    expect(endOf(events, 'give').status).toBe('changed');
    // Started when the release ended, before the 300 ms step in between began, not after it.
    const sleepStart = events.find((e) => e.type === 'step-start' && e.step.kind === 'command') as Extract<EngineEvent, { type: 'step-start' }>;
    expect(started[0]!.at).toBeLessThanOrEqual(sleepStart.at + 50);
    expect(given).toEqual([{ name: 'x', prepared: { name: 'x', at: started[0]!.at } }]);
  });

  it('is not started for another resource, nor handed to a step whose args differ', async () => {
    const { result } = await run([step('give', { name: 'y' }), step('take', { name: 'x' })]);
    expect(result.exitCode).toBe(0);
    expect(started).toEqual([]);
    expect(given).toEqual([{ name: 'x', prepared: undefined }]);
  });

  it('is not started on a host where the step\'s when is false (it would skip there)', async () => {
    const { result } = await run([step('give', { name: 'x' }), step('take', { name: 'x' }, { when: ['inventory_hostname == "elsewhere"'] })]);
    expect(result.exitCode).toBe(0);
    expect(started).toEqual([]);
    expect(given).toEqual([]);
  });

  it('is not started before any release, and not at all in check mode', async () => {
    await run([step('take', { name: 'x' })]);
    expect(started).toEqual([]);
    expect(given).toEqual([{ name: 'x', prepared: undefined }]);
    given.length = 0;
    await run([step('give', { name: 'x' }), step('take', { name: 'x' })], true);
    expect(started).toEqual([]);
  });
});

describe('prepare in a play run once per item', () => {
  it('each item prepares its own takeover once its own release completed, and gets it at its turn', async () => {
    const steps = [step('give', { name: '{{ group }}' }), step('command', { argv: ['sleep', '0.2'] }), step('take', { name: '{{ group }}' })];
    const { result } = await run(steps, false, { loop: { items: ['x', 'y'], var: 'group', onItemFailure: 'rollback_item' } });
    expect(result.exitCode).toBe(0);
    expect(started.map((s) => s.name).sort()).toEqual(['x', 'y']);
    // Each item's takeover got its own item's early work, never the other's.
    expect(given.map((g) => [g.name, (g.prepared as { name: string } | undefined)?.name]).sort()).toEqual([
      ['x', 'x'],
      ['y', 'y'],
    ]);
  });
});
