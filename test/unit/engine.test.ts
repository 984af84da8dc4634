import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execute, type ExecuteOptions } from '../../src/engine/execute.js';
import { Journal, pendingChanges, readJournal } from '../../src/engine/journal.js';
import { RecapCollector, type EngineEvent } from '../../src/engine/events.js';
import { Redactor } from '../../src/engine/redact.js';
import { revertChanges } from '../../src/engine/rollback.js';
import { defaultRegistry, StepRegistry } from '../../src/steps/registry.js';
import { allKinds } from '../../src/steps/index.js';
import { StepRefusedError, type StepKind } from '../../src/steps/contract.js';
import { TransportPool } from '../../src/transport/index.js';
import { connectionFor } from '../../src/inventory/connection.js';
import { localInventory, playbook, step } from '../helpers/model.js';
import type { StepSpec } from '../../src/playbook/model.js';

let dir: string;
let stateDir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'baton-engine-'));
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'baton-state-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
});

/** A reversible, idempotent step: create a file, and remove it on revert. */
const touch = (name: string, extra: Partial<StepSpec> = {}) =>
  step('command', { argv: ['touch', path.join(dir, name)], creates: path.join(dir, name), revert: ['rm', '-f', path.join(dir, name)] }, extra);

const files = () => readdirSync(dir).sort();

async function run(steps: StepSpec[], over: Partial<ExecuteOptions> = {}, playExtra = {}, hosts = ['local']) {
  const inventory = localInventory(hosts);
  const events: EngineEvent[] = [];
  const recap = new RecapCollector();
  const journal = over.check ? undefined : new Journal('test-run', path.join(stateDir, 'runs'));
  const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
  try {
    const result = await execute({
      playbook: playbook(steps, playExtra),
      inventory,
      extraVars: {},
      registry: defaultRegistry(),
      pool,
      runId: 'test-run',
      journal,
      redactor: new Redactor(),
      onEvent: (e) => {
        events.push(e);
        recap.onEvent(e);
      },
      ...over,
    });
    return { result, events, recap: recap.hosts.get(hosts[0]!)!, recaps: recap.hosts, journal: journal ? readJournal(journal.path) : [] };
  } finally {
    journal?.close();
    await pool.closeAll();
  }
}

describe('engine on the local transport', () => {
  it('applies every change once, then a second run changes nothing', async () => {
    const steps = () => [touch('a'), touch('b'), touch('c')];
    const first = await run(steps());
    expect(first.result.exitCode).toBe(0);
    expect(first.recap).toMatchObject({ changed: 3, ok: 0, failed: 0 });
    expect(files()).toEqual(['a', 'b', 'c']);

    const second = await run(steps());
    expect(second.result.exitCode).toBe(0);
    expect(second.recap).toMatchObject({ changed: 0, ok: 3 });
  });

  it('check mode reports what would change and changes nothing', async () => {
    const { result, recap, events } = await run([touch('a'), touch('b')], { check: true });
    expect(result.exitCode).toBe(0);
    expect(recap).toMatchObject({ wouldChange: 2, changed: 0 });
    expect(files()).toEqual([]);
    const end = events.find((e) => e.type === 'step-end') as Extract<EngineEvent, { type: 'step-end' }>;
    expect(end.commands).toEqual([['touch', path.join(dir, 'a')]]);
  });

  // For every k: a run of reversible steps that fails at step k leaves the node exactly as before.
  for (let k = 0; k < 5; k++) {
    it(`a failure at step ${k} of 5 is rolled back completely`, async () => {
      writeFileSync(path.join(dir, 'pre-existing'), 'keep me');
      const steps = [touch('s0'), touch('s1'), touch('s2'), touch('s3'), touch('s4')];
      steps[k] = step('command', { argv: ['sh', '-c', 'echo "disk on fire" >&2; exit 3'] });
      const { result, recap, journal, events } = await run(steps);
      expect(result.exitCode).toBe(1);
      expect(result.outcome).toBe('failed-rolled-back');
      expect(files()).toEqual(['pre-existing']);
      expect(recap).toMatchObject({ changed: k, failed: 1, reverted: k });
      const failed = events.find((e) => e.type === 'step-end' && e.status === 'failed') as Extract<EngineEvent, { type: 'step-end' }>;
      expect(failed.error).toContain('exited 3: disk on fire');
      // Every change and every revert is journaled; nothing is left to undo.
      expect(pendingChanges(journal)).toEqual([]);
    });
  }

  it('fails a step whose command exits 0 but whose state is not there, and rolls back', async () => {
    const liar = step('command', { argv: ['true'], creates: path.join(dir, 'never') });
    const { result, events } = await run([touch('a'), liar]);
    expect(result.exitCode).toBe(1);
    expect(files()).toEqual([]);
    const failed = events.find((e) => e.type === 'step-end' && e.status === 'failed') as Extract<EngineEvent, { type: 'step-end' }>;
    expect(failed.error).toMatch(/not in the wanted state/);
  });

  it('on_failure: stop leaves the changes in place and says so (exit 3)', async () => {
    const { result } = await run([touch('a'), step('command', ['false'])], {}, { onFailure: 'stop' });
    expect(result.exitCode).toBe(3);
    expect(files()).toEqual(['a']);
    expect(result.changes.map((c) => c.ref.stepId)).toEqual(['p0.s0']);
  });

  it('ignore_errors lets the run go on', async () => {
    const { result, recap } = await run([step('command', ['false'], { ignoreErrors: true }), touch('a')]);
    expect(result.exitCode).toBe(0);
    expect(recap).toMatchObject({ failed: 1, changed: 1 });
    expect(files()).toEqual(['a']);
  });

  it('when: skips, and `is changed` follows registered outcomes', async () => {
    const steps = [
      touch('a', { register: 'made_a' }),
      touch('b', { when: ['made_a is changed'] }),
      touch('c', { when: ['made_a is not changed'] }),
    ];
    const first = await run(steps);
    expect(files()).toEqual(['a', 'b']);
    expect(first.recap).toMatchObject({ changed: 2, skipped: 1 });
  });

  it('loop runs the step once per item, each journaled as its own change', async () => {
    const s = step('command', { argv: ['touch', `${dir}/{{ item }}`], creates: `${dir}/{{ item }}`, revert: ['rm', '-f', `${dir}/{{ item }}`] }, { loop: ['x', 'y', 'z'] });
    const { result, journal } = await run([s]);
    expect(result.exitCode).toBe(0);
    expect(files()).toEqual(['x', 'y', 'z']);
    expect(journal.filter((r) => r.t === 'intent').map((r) => (r as { instance: string }).instance)).toEqual(['p0.s0[0]', 'p0.s0[1]', 'p0.s0[2]']);
  });

  it('retries a failing step until it succeeds', async () => {
    const counter = path.join(dir, 'count');
    // Fails twice, then succeeds: appends a line per attempt, and succeeds at the third.
    const flaky = step('command', { argv: ['sh', '-c', 'echo x >> "$0"; [ "$(wc -l < "$0")" -ge 3 ]', counter] }, { retries: 3, delayS: 0 });
    const { result } = await run([flaky]);
    expect(result.exitCode).toBe(0);
    expect(readdirSync(dir)).toContain('count');
  });

  it('a step timeout kills its command and fails the step', async () => {
    const marker = `baton-timeout-${process.pid}-${Date.now()}`;
    const t0 = Date.now();
    const { result } = await run([step('command', ['sh', '-c', 'sleep 30', marker], { timeoutS: 1 })]);
    expect(result.exitCode).toBe(1);
    expect(Date.now() - t0).toBeLessThan(20_000);
    const { execFileSync } = await import('node:child_process');
    let survivors = '';
    try {
      survivors = execFileSync('pgrep', ['-f', marker]).toString();
    } catch {
      survivors = '';
    }
    expect(survivors).toBe('');
  });

  it('journals the intent before the change and the outcome after it', async () => {
    const { journal } = await run([touch('a')]);
    const kinds = journal.map((r) => r.t);
    expect(kinds).toEqual(['intent', 'done']);
    const intent = journal[0] as { before: unknown; args: unknown };
    expect(intent.before).toEqual({ createsExists: false });
  });

  it('a journal replayed by undo reverts a finished run', async () => {
    const { journal } = await run([touch('a'), touch('b')]);
    expect(files()).toEqual(['a', 'b']);
    const pending = pendingChanges(journal);
    expect(pending.map((p) => p.stepId)).toEqual(['p0.s1', 'p0.s0']);
    const inventory = localInventory();
    const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
    const undoJournal = new Journal('undo-run', path.join(stateDir, 'runs'));
    const ok = await revertChanges(
      pending.map((p) => ({
        ref: { play: 0, playName: 'undo', stepId: p.stepId, instance: p.instance, name: p.name, kind: p.kind, host: p.host, tags: [] },
        kind: p.kind,
        args: p.args,
        before: p.before,
        seq: p.seq,
        runId: 'test-run',
        journaledArgs: p.args,
      })),
      { registry: defaultRegistry(), inventory, pool, journal: undoJournal, onEvent: () => {} },
    );
    undoJournal.close();
    await pool.closeAll();
    expect(ok).toBe(true);
    expect(files()).toEqual([]);
  });

  it('a failed step is reverted too: a change that failed half-way may have half-happened', async () => {
    // Creates its file, then fails: the revert must remove the file although the step "failed".
    const half = step('command', {
      argv: ['sh', '-c', 'touch "$0"; exit 1', path.join(dir, 'half')],
      creates: path.join(dir, 'half'),
      revert: ['rm', '-f', path.join(dir, 'half')],
    });
    const { result, recap } = await run([touch('a'), half]);
    expect(result.exitCode).toBe(1);
    expect(files()).toEqual([]);
    expect(recap).toMatchObject({ changed: 1, failed: 1, reverted: 2 });
  });

  it('a revert that does not restore the state is reported, and rollback is incomplete (exit 3)', async () => {
    const stubborn = step('command', { argv: ['touch', path.join(dir, 'a')], creates: path.join(dir, 'a'), revert: ['true'] });
    const { result, events } = await run([stubborn, step('command', ['false'])]);
    expect(result.exitCode).toBe(3);
    const bad = events.find((e) => e.type === 'revert-end' && !e.ok) as Extract<EngineEvent, { type: 'revert-end' }>;
    expect(bad.error).toMatch(/is not back as before/);
  });

  describe('several hosts', () => {
    const perHost = (extra: Partial<StepSpec> = {}) =>
      step('command', { argv: ['touch', `${dir}/{{ inventory_hostname }}`], creates: `${dir}/{{ inventory_hostname }}`, revert: ['rm', '-f', `${dir}/{{ inventory_hostname }}`] }, extra);
    const hosts = ['a', 'b', 'c'];

    it('runs each step on every host of the play', async () => {
      const { result } = await run([perHost()], {}, {}, hosts);
      expect(result.exitCode).toBe(0);
      expect(files()).toEqual(['a', 'b', 'c']);
    });

    it('--limit narrows the hosts (a:c, b:&all, all:!b)', async () => {
      await run([perHost()], { limit: 'a:c' }, {}, hosts);
      expect(files()).toEqual(['a', 'c']);
      rmSync(path.join(dir, 'a'));
      rmSync(path.join(dir, 'c'));
      await run([perHost()], { limit: 'all:!b' }, {}, hosts);
      expect(files()).toEqual(['a', 'c']);
    });

    it('run_once runs on the first host only', async () => {
      await run([perHost({ runOnce: true })], {}, {}, hosts);
      expect(files()).toEqual(['a']);
    });

    it('run_once with the first host unreachable (left out by the session): runs on the next one', async () => {
      await run([perHost({ runOnce: true })], { unreachable: new Set(['a']) }, {}, hosts);
      expect(files()).toEqual(['b']);
    });

    it('delegate_to runs the commands on another host, for the host the step is for', async () => {
      const { events } = await run([perHost({ delegateTo: 'c' })], {}, {}, ['a', 'b', 'c']);
      const ends = events.filter((e) => e.type === 'step-end') as Extract<EngineEvent, { type: 'step-end' }>[];
      expect(ends.map((e) => [e.step.host, e.step.on]).sort()).toEqual([
        ['a', 'c'],
        ['b', 'c'],
        ['c', undefined],
      ]);
    });

    it('serial: a failure in the second batch rolls back the first batch too', async () => {
      const failOnC = step('command', ['sh', '-c', 'test "$0" != c', '{{ inventory_hostname }}']);
      const { result, recaps } = await run([perHost(), failOnC], {}, { serial: 2 }, hosts);
      expect(result.exitCode).toBe(1);
      expect(files()).toEqual([]);
      // Two changes on a: its file, and the check command (a command without creates: always counts as a change).
      expect(recaps.get('a')).toMatchObject({ changed: 2, reverted: 1 });
      expect(recaps.get('c')).toMatchObject({ changed: 1, failed: 1, reverted: 1 });
    });

    it('a failure on one host stops the run after that step, and every host is rolled back', async () => {
      const failOnB = step('command', ['sh', '-c', 'test "$0" != b', '{{ inventory_hostname }}']);
      const after = step('command', { argv: ['touch', `${dir}/never`], creates: `${dir}/never` });
      const { result } = await run([perHost(), failOnB, after], {}, {}, hosts);
      expect(result.exitCode).toBe(1);
      expect(files()).toEqual([]);
    });
  });

  it('a refusal is not a change: nothing to revert for it, and undo will not list it', async () => {
    const refuser: StepKind = {
      kind: 'refuser',
      probe: async () => ({ held: false }),
      satisfied: () => false,
      apply: async () => {
        throw new StepRefusedError('n1 still holds 198.18.0.200 (it answers ARP from 02:00:00:00:00:01)');
      },
      revert: async () => {
        throw new Error('must never be called: the refusal changed nothing');
      },
      describe: () => ({ summary: 'refuse', commands: [] }),
    };
    const registry = new StepRegistry([...allKinds, refuser], (k) => (k === 'refuser' ? {} : defaultRegistry().schema(k)));
    const { result, recap, journal, events } = await run([touch('a'), step('refuser', {})], { registry });
    expect(result.exitCode).toBe(1);
    expect(files()).toEqual([]);
    expect(recap).toMatchObject({ changed: 1, failed: 1, reverted: 1 });
    const failed = events.find((e) => e.type === 'step-end' && e.status === 'failed') as Extract<EngineEvent, { type: 'step-end' }>;
    expect(failed.error).toContain('n1 still holds');
    expect(journal.some((r) => r.t === 'done' && r.status === 'refused')).toBe(true);
    expect(pendingChanges(journal)).toEqual([]);
  });
});
