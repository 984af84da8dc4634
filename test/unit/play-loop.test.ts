/**
 * A play that runs once per item (service groups moved in parallel), on the local transport with
 * stand-in kinds. A "mark" is a file DIR/NAME; a "barrier" step of one item waits (bounded) for
 * the other item to arrive at its own barrier, so it succeeds only when the items really overlap.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execute, type ExecuteOptions } from '../../src/engine/execute.js';
import { Journal, readJournal, type IntentRecord } from '../../src/engine/journal.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { Redactor } from '../../src/engine/redact.js';
import { runSession, type RunInputs } from '../../src/engine/session.js';
import type { RunSummary } from '../../src/engine/summary.js';
import { changesToRevert, executeUndo, planUndo } from '../../src/engine/undo.js';
import { defaultRegistry, StepRegistry } from '../../src/steps/registry.js';
import { allKinds } from '../../src/steps/index.js';
import type { StepKind } from '../../src/steps/contract.js';
import { TransportPool } from '../../src/transport/index.js';
import { connectionFor } from '../../src/inventory/connection.js';
import { loadPlaybookText } from '../../src/playbook/load.js';
import type { Play, PlayLoop, Playbook, StepSpec } from '../../src/playbook/model.js';
import { BatonError } from '../../src/util/errors.js';
import { localInventory, playbook, step, loadProblems } from '../helpers/model.js';
import { formatSummary } from '../../src/report/reporter.js';
import { renderPlan } from '../../src/cli/plan.js';
import { planDocument } from '../../src/cli/plan-json.js';
import { check } from '../../src/engine/check.js';
import { describeRuns } from '../../src/engine/runs.js';

let dir: string;
let stateDir: string;
const savedStateDir = process.env.BATON_STATE_DIR;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'baton-items-'));
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'baton-items-state-'));
  process.env.BATON_STATE_DIR = stateDir;
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
  if (savedStateDir === undefined) delete process.env.BATON_STATE_DIR;
  else process.env.BATON_STATE_DIR = savedStateDir;
});

const at = (name: string) => path.join(dir, name);
/** What the items left, the barriers' guest book aside. */
const files = () => readdirSync(dir).filter((f) => !f.startsWith('arrived-')).sort();

const mark: StepKind<{ name: string }, { held: boolean }> = {
  kind: 'mark',
  probe: async (_ctx, a) => ({ held: existsSync(at(a.name)) }),
  satisfied: (o) => o.held,
  apply: async (_ctx, a) => writeFileSync(at(a.name), ''),
  revert: async (_ctx, a, before) => void (before.held ? undefined : rmSync(at(a.name), { force: true })),
  describe: (a) => ({ summary: `mark ${a.name}`, commands: [] }),
};

/** Fails as a mount on a wrong path does: the command ran and said no. */
const broken: StepKind<{ path: string }, { done: boolean }> = {
  kind: 'broken',
  probe: async () => ({ done: false }),
  satisfied: (o) => o.done,
  apply: async (_ctx, a) => {
    throw new Error(`mount: ${a.path}: mount point does not exist`);
  },
  revert: async () => undefined,
  describe: (a) => ({ summary: `mount ${a.path}`, commands: [] }),
};

/**
 * Arrives (DIR/arrived-ME, a guest book never wiped), then waits at most `waitMs` for OTHER to
 * arrive; passing (DIR/passed-ME) is the change, and what a revert takes back.
 */
const barrier: StepKind<{ me: string; other: string; waitMs: number }, { passed: boolean }> = {
  kind: 'barrier',
  probe: async (_ctx, a) => ({ passed: existsSync(at(`passed-${a.me}`)) }),
  satisfied: (o) => o.passed,
  apply: async (_ctx, a) => {
    writeFileSync(at(`arrived-${a.me}`), '');
    const until = Date.now() + a.waitMs;
    while (!existsSync(at(`arrived-${a.other}`))) {
      if (Date.now() > until) throw new Error(`${a.me} waited ${a.waitMs} ms for ${a.other}: the items did not run at the same time`);
      await new Promise((r) => setTimeout(r, 10));
    }
    writeFileSync(at(`passed-${a.me}`), '');
  },
  revert: async (_ctx, a) => rmSync(at(`passed-${a.me}`), { force: true }),
  describe: (a) => ({ summary: `meet ${a.other}`, commands: [] }),
};

const mine = ['mark', 'broken', 'barrier'];
const registry = () => new StepRegistry([...allKinds, mark as StepKind, broken as StepKind, barrier as StepKind], (k) => (mine.includes(k) ? {} : defaultRegistry().schema(k)));

const groups = [
  { name: 'nfs-a', other: 'nfs-b' },
  { name: 'nfs-b', other: 'nfs-a' },
];
const loop = (extra: Partial<PlayLoop> = {}): PlayLoop => ({ items: groups, var: 'group', onItemFailure: 'rollback_item', ...extra });

/** The steps of one group's move: two marks, a meeting with the other group, and (for failing groups) a bad mount. */
function moveSteps(o: { waitMs?: number; failing?: string } = {}): StepSpec[] {
  const steps = [
    step('mark', { name: '{{ group.name }}-vip' }),
    step('barrier', { me: '{{ group.name }}', other: '{{ group.other }}', waitMs: o.waitMs ?? 5000 }),
    step('mark', { name: '{{ group.name }}-export' }),
  ];
  if (o.failing) steps.push(step('broken', { path: '/srv/{{ group.name }}' }, { name: 'mount /srv/{{ group.name }}', when: [`group.name == '${o.failing}'`] }));
  return steps;
}

async function run(pb: Playbook, over: Partial<ExecuteOptions> = {}, hosts = ['n1']) {
  const inventory = localInventory(hosts);
  const events: EngineEvent[] = [];
  const journal = new Journal('items-run', path.join(stateDir, 'runs'));
  const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
  try {
    const result = await execute({ playbook: pb, inventory, extraVars: {}, registry: registry(), pool, runId: 'items-run', journal, redactor: new Redactor(), onEvent: (e) => events.push(e), ...over });
    return { result, events, journal: readJournal(journal.path) };
  } finally {
    journal.close();
    await pool.closeAll();
  }
}

describe('a play run once per item, items at the same time', () => {
  it('runs the items concurrently: each item meets the other at its barrier', async () => {
    const { result, events } = await run(playbook(moveSteps(), { name: 'move {{ group.name }}', loop: loop() }));
    expect(result.failures).toEqual([]);
    expect(result.exitCode).toBe(0);
    expect(files()).toEqual(['nfs-a-export', 'nfs-a-vip', 'nfs-b-export', 'nfs-b-vip', 'passed-nfs-a', 'passed-nfs-b']);
    expect(result.items?.map((i) => [i.label, i.outcome, i.title])).toEqual([
      ['nfs-a', 'succeeded', 'move nfs-a'],
      ['nfs-b', 'succeeded', 'move nfs-b'],
    ]);
    // Every step instance says which item it belongs to.
    const ends = events.filter((e): e is Extract<EngineEvent, { type: 'step-end' }> => e.type === 'step-end');
    expect(ends.map((e) => e.step.item).sort()).toEqual(['nfs-a', 'nfs-a', 'nfs-a', 'nfs-b', 'nfs-b', 'nfs-b']);
  });

  it('never runs more items at once than loop_control.concurrency', async () => {
    const { result } = await run(playbook(moveSteps({ waitMs: 300 }), { loop: loop({ concurrency: 1 }) }));
    expect(result.exitCode).toBe(1);
    // nfs-a waited for nfs-b in vain: nfs-b started only once nfs-a was over (and found its arrival).
    expect(result.failures).toEqual(['group nfs-a failed at meet nfs-b on n1: nfs-a waited 300 ms for nfs-b: the items did not run at the same time; rolled back']);
    expect(result.items?.map((i) => [i.label, i.outcome])).toEqual([
      ['nfs-a', 'rolled-back'],
      ['nfs-b', 'succeeded'],
    ]);
    expect(files()).toEqual(['nfs-b-export', 'nfs-b-vip', 'passed-nfs-b']);
  });

  it('one item failing rolls back that item only; the other finishes and keeps its changes; exit 1 names the failed item', async () => {
    const { result, journal } = await run(playbook(moveSteps({ failing: 'nfs-b' }), { loop: loop() }));
    expect(result.exitCode).toBe(1);
    expect(result.outcome).toBe('failed-rolled-back');
    expect(files()).toEqual(['nfs-a-export', 'nfs-a-vip', 'passed-nfs-a']);
    expect(result.failures).toEqual(['group nfs-b failed at mount /srv/nfs-b on n1: mount: /srv/nfs-b: mount point does not exist; rolled back']);
    expect(result.items?.map((i) => [i.label, i.outcome])).toEqual([
      ['nfs-a', 'succeeded'],
      ['nfs-b', 'rolled-back'],
    ]);
    // nfs-a's changes are still the run's (undo can take them); nfs-b's reverts are journaled as nfs-b's.
    expect(result.changes.map((c) => c.item?.label)).toEqual(['nfs-a', 'nfs-a', 'nfs-a']);
    const reverts = journal.filter((r): r is IntentRecord => r.t === 'intent' && r.reverts !== undefined);
    // Its three changes and the mount that failed midway (it may have started), newest first.
    expect(reverts.map((r) => `${r.item?.label}: ${r.name}`)).toEqual(['nfs-b: revert: mount /srv/nfs-b', 'nfs-b: revert: mark nfs-b-export', 'nfs-b: revert: meet nfs-a', 'nfs-b: revert: mark nfs-b-vip']);
  });

  it('on_item_failure: rollback_all rolls back every item, the finished ones too', async () => {
    const { result } = await run(playbook(moveSteps({ failing: 'nfs-b' }), { loop: loop({ onItemFailure: 'rollback_all' }) }));
    expect(result.exitCode).toBe(1);
    expect(files()).toEqual([]);
    expect(result.failures[0]).toMatch(/^group nfs-b failed at mount \/srv\/nfs-b on n1: .*; every item is rolled back with the run \(on_item_failure: rollback_all\)$/);
    expect(result.items?.map((i) => [i.label, i.outcome])).toEqual([
      ['nfs-a', 'rolled-back'],
      ['nfs-b', 'rolled-back'],
    ]);
  });

  it('an item that cannot roll back makes the run exit 3, naming it', async () => {
    const stuck: StepKind<{ name: string }, { held: boolean }> = { ...mark, kind: 'stuck', revert: async () => { throw new Error('device busy'); } };
    const reg = new StepRegistry([...allKinds, mark as StepKind, broken as StepKind, stuck as StepKind], (k) => (['mark', 'broken', 'stuck'].includes(k) ? {} : defaultRegistry().schema(k)));
    const steps = [step('stuck', { name: '{{ group.name }}-disk' }), step('broken', { path: '/srv/{{ group.name }}' }, { name: 'mount', when: ["group.name == 'nfs-b'"] })];
    const { result } = await run(playbook(steps, { loop: loop() }), { registry: reg });
    expect(result.exitCode).toBe(3);
    expect(result.failures).toEqual([expect.stringMatching(/^group nfs-b failed at mount on n1: .*; ROLLBACK INCOMPLETE: its changes are still in place$/)]);
    expect(files()).toEqual(['nfs-a-disk', 'nfs-b-disk']);
  });

  it('the recap names the failed item, and the summary line says which failed and which completed', async () => {
    const { result } = await run(playbook(moveSteps({ failing: 'nfs-b' }), { loop: loop() }));
    const summary: RunSummary = { runId: 'R', mode: 'run', outcome: result.outcome, exitCode: result.exitCode, recap: new Map(), failures: result.failures, durationMs: 1, notes: [], items: result.items };
    const text = formatSummary(summary);
    expect(text).toMatch(/^ {2}group nfs-a {2}succeeded$/m);
    expect(text).toMatch(/^ {2}group nfs-b {2}rolled back: failed at mount \/srv\/nfs-b on n1: mount: \/srv\/nfs-b: mount point does not exist$/m);
    expect(text).toMatch(/^run R FAILED for group nfs-b \(rolled back\); nfs-a completed {2}\(0\.00 s, exit 1\)$/m);
  });

  it('hosts: may name the item: each item runs on its own hosts', async () => {
    const items = [
      { name: 'nfs-a', to: 'n1' },
      { name: 'nfs-b', to: 'n2' },
    ];
    const steps = [step('mark', { name: '{{ group.name }}-on-{{ inventory_hostname }}' })];
    const { result } = await run(playbook(steps, { hosts: '{{ group.to }}', loop: { items, var: 'group', onItemFailure: 'rollback_item' } }), {}, ['n1', 'n2']);
    expect(result.exitCode).toBe(0);
    expect(files()).toEqual(['nfs-a-on-n1', 'nfs-b-on-n2']);
  });
});

describe('locks per item', () => {
  const inputs = (pb: Playbook, items: unknown[]): RunInputs => {
    pb.plays[0]!.loop = { items, var: 'group', onItemFailure: 'rollback_item' };
    pb.plays[0]!.lock = 'service-{{ group.name }}';
    return { playbookFile: path.join(dir, 'service-move.yml'), inventorySources: [], playbook: pb, inventory: localInventory(['n1']), extraVars: {}, registry: registry() };
  };
  const quiet = () => ({ onEvent: () => undefined, finish: () => undefined });
  const meeting = (waitMs: number) => [step('barrier', { me: '{{ group.name }}', other: '{{ group.other }}', waitMs })];

  it('two runs moving different groups proceed at once', async () => {
    const a = runSession(inputs(playbook(meeting(5000)), [groups[0]]), {}, { reporter: quiet() });
    const b = runSession(inputs(playbook(meeting(5000)), [groups[1]]), {}, { reporter: quiet() });
    const [ra, rb] = await Promise.all([a, b]);
    expect([ra.exitCode, rb.exitCode]).toEqual([0, 0]);
    expect(files()).toContain('passed-nfs-a');
    expect(files()).toContain('passed-nfs-b');
  });

  it('the same group moved twice at once: the second exits 5 naming the first', async () => {
    // The first run holds service-nfs-a until the test lets it go (the "arrived-go" file).
    const first = runSession(inputs(playbook(meeting(10_000)), [{ name: 'nfs-a', other: 'go' }]), {}, { reporter: quiet() });
    const until = Date.now() + 10_000;
    while (!existsSync(at('arrived-nfs-a')) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    const second = await runSession(inputs(playbook([step('mark', { name: 'second-{{ group.name }}' })]), [{ name: 'nfs-c' }, { name: 'nfs-a' }]), {}, { reporter: quiet() }).catch((e: unknown) => e);
    writeFileSync(at('arrived-go'), '');
    const r1 = await first;
    expect(r1.exitCode).toBe(0);
    expect(second).toBeInstanceOf(BatonError);
    expect((second as BatonError).exitCode).toBe(5);
    expect((second as BatonError).message).toContain('service-nfs-a');
    expect((second as BatonError).message).toContain(r1.summary.runId);
    // It took nothing, changed nothing: not even the group nobody held.
    expect(files().filter((f) => f.startsWith('second-'))).toEqual([]);
  });

  it('a run failing for one group: the reporter, the journal and `baton runs` say which group failed and which moved', async () => {
    let summary: RunSummary | undefined;
    const r = await runSession(inputs(playbook(moveSteps({ failing: 'nfs-b' })), groups), {}, { reporter: { onEvent: () => undefined, finish: (s) => void (summary = s) } });
    expect(r.exitCode).toBe(1);
    expect(summary?.failures).toEqual(['group nfs-b failed at mount /srv/nfs-b on n1: mount: /srv/nfs-b: mount point does not exist; rolled back']);
    expect(summary?.undoCommand).toBe(`baton undo ${r.summary.runId}`);
    const row = describeRuns().find((x) => x.runId === r.summary.runId)!;
    expect(row.outcome).toBe('failed-rolled-back');
    expect(row.changesInPlace).toBe(3);
    expect(row.items).toEqual([
      { label: 'nfs-a', outcome: 'succeeded' },
      { label: 'nfs-b', outcome: 'rolled-back' },
    ]);
  });

  it('undo of a looped run reverts every item', async () => {
    const pb = playbook([step('mark', { name: '{{ group.name }}-vip' }), step('mark', { name: '{{ group.name }}-export' })]);
    const r = await runSession(inputs(pb, groups), {}, { reporter: quiet() });
    expect(r.exitCode).toBe(0);
    expect(r.summary.undoCommand).toBe(`baton undo ${r.summary.runId}`);
    expect(files()).toEqual(['nfs-a-export', 'nfs-a-vip', 'nfs-b-export', 'nfs-b-vip']);

    const plan = planUndo(r.summary.runId);
    expect(plan.pending.map((p) => p.item?.label).sort()).toEqual(['nfs-a', 'nfs-a', 'nfs-b', 'nfs-b']);
    const inventory = localInventory(['n1']);
    const reg = registry();
    const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
    const reverted: string[] = [];
    let journal: Journal | undefined;
    try {
      const complete = await executeUndo({
        plan,
        changes: changesToRevert(plan, inventory, reg),
        inventory,
        registry: reg,
        pool,
        openJournal: () => (journal = new Journal('undo-run', path.join(stateDir, 'runs'))),
        onEvent: (e) => void (e.type === 'revert-end' && e.ok && reverted.push(`${e.step.item}: ${e.step.name}`)),
        force: false,
      });
      expect(complete).toBe(true);
    } finally {
      journal?.close();
      await pool.closeAll();
    }
    expect(files()).toEqual([]);
    // Newest first within each item.
    expect(reverted.filter((x) => x.startsWith('nfs-a'))).toEqual(['nfs-a: mark nfs-a-export', 'nfs-a: mark nfs-a-vip']);
    expect(reverted.filter((x) => x.startsWith('nfs-b'))).toEqual(['nfs-b: mark nfs-b-export', 'nfs-b: mark nfs-b-vip']);
  });
});

describe('loading a looped play', () => {
  const load = (yaml: string) => loadPlaybookText(yaml, 'move.yml', { inventory: localInventory(['n1', 'n2']), registry: defaultRegistry(), extraVars: { moving: [{ name: 'a', to: 'n2' }] } });
  const problems = (yaml: string): string[] => loadProblems(() => load(yaml));
  const step1 = `  steps:\n    - command: { argv: [echo, "{{ group.name }}"] }\n`;

  it('reads loop, loop_control and on_item_failure', () => {
    const pb = load(`- hosts: "{{ group.to }}"\n  loop: "{{ moving }}"\n  loop_control: { loop_var: group, concurrency: 4, label: "{{ group.name }}" }\n  on_item_failure: rollback_all\n  lock: "service-{{ group.name }}"\n${step1}`);
    const play = pb.plays[0] as Play;
    expect(play.loop).toEqual({ items: '{{ moving }}', var: 'group', label: '{{ group.name }}', concurrency: 4, onItemFailure: 'rollback_all' });
    expect(play.lock).toBe('service-{{ group.name }}');
  });

  it('says where a bad loop value is', () => {
    expect(problems(`- hosts: n1\n  loop: moving\n  loop_control: { loop_var: group }\n${step1}`)).toEqual([
      '2:9 "loop" must be a list or a "{{ template }}" that renders to one, got the string "moving"',
    ]);
    expect(problems(`- hosts: n1\n  loop: "{{ moving }}"\n  loop_control: { loop_var: group, concurrency: 0 }\n${step1}`)).toEqual([expect.stringMatching(/^3:\d+ .*concurrency.*(>=|at least) 1/)]);
    expect(problems(`- hosts: n1\n  loop: "{{ moving }}"\n  loop_control: { loop_var: group }\n  on_item_failure: sometimes\n${step1}`)).toEqual([expect.stringMatching(/^4:\d+ .*rollback_item.*rollback_all/)]);
    expect(problems(`- hosts: n1\n  on_item_failure: rollback_all\n  steps:\n    - command: { argv: [echo] }\n`)).toEqual([
      '2:3 "on_item_failure" without "loop": it only means something in a play that runs once per item of a loop',
    ]);
    expect(problems(`- hosts: n1\n  loop: "{{ movng }}"\n  loop_control: { loop_var: group }\n${step1}`)).toEqual([expect.stringMatching(/^2:9 undefined variable "movng" in play loop .*did you mean "moving"/)]);
    expect(problems(`- hosts: "{{ group.to }}"\n  loop: [{ name: a, to: n9 }]\n  loop_control: { loop_var: group }\n${step1}`)).toEqual([expect.stringMatching(/^1:10 hosts: no host or group "n9"/)]);
  });

  it('a step whose when: reads the item is kept for the run to decide, per item', () => {
    const pb = load(`- hosts: n1\n  loop: "{{ moving }}"\n  loop_control: { loop_var: group }\n  steps:\n    - command: { argv: [echo, held] }\n      when: group.hold is defined\n`);
    expect(pb.plays[0]!.steps.map((s) => s.when)).toEqual([['group.hold is defined']]);
  });

  it('a step loop may not hide the play item', () => {
    expect(problems(`- hosts: n1\n  loop: "{{ moving }}"\n  steps:\n    - command: { argv: [echo, "{{ item }}"] }\n      loop: [1, 2]\n`)).toEqual([
      expect.stringMatching(/^5:13 this step's loop item "item" would hide the play's loop item/),
    ]);
  });
});

describe('plan and check of a looped play', () => {
  const yaml = `- name: move {{ group.name }}
  hosts: "{{ group.to }}"
  loop: "{{ moving }}"
  loop_control: { loop_var: group, concurrency: 2 }
  lock: "service-{{ group.name }}"
  steps:
    - command: { argv: [touch, "/srv/{{ group.name }}/on-{{ inventory_hostname }}"], creates: "/srv/{{ group.name }}/on-{{ inventory_hostname }}" }
`;
  const moving = [
    { name: 'nfs-a', to: 'n1' },
    { name: 'nfs-b', to: 'n2' },
  ];
  const inputsOf = () => {
    const inventory = localInventory(['n1', 'n2']);
    const registry = defaultRegistry();
    const extraVars = { moving };
    return { playbookFile: 'move.yml', inventorySources: [], playbook: loadPlaybookText(yaml, 'move.yml', { inventory, registry, extraVars }), inventory, extraVars, registry };
  };

  it('the plan shows every item with its hosts, its lock and its commands', async () => {
    const inputs = inputsOf();
    await inputs.registry.ensureLoaded();
    const text = renderPlan(inputs, { extraVars: [] });
    expect(text.split('\n')).toEqual([
      'PLAN for move.yml',
      '',
      'PLAY [move {{ group.name }}] on n1, n2  (once per group, 2 item(s), 2 at a time, on_item_failure: rollback_item)',
      '  GROUP [nfs-a] on n1  (lock: service-nfs-a)',
      '    n1: run touch /srv/nfs-a/on-n1 (unless /srv/nfs-a/on-n1 exists)  [command]',
      '        $ touch /srv/nfs-a/on-n1',
      '  GROUP [nfs-b] on n2  (lock: service-nfs-b)',
      '    n2: run touch /srv/nfs-b/on-n2 (unless /srv/nfs-b/on-n2 exists)  [command]',
      '        $ touch /srv/nfs-b/on-n2',
    ]);
    const doc = planDocument(inputs, { extraVars: [] });
    expect(doc.plays[0]!.steps.map((s) => [s.item, s.host, s.step])).toEqual([
      ['nfs-a', 'n1', 'p0.s0#0'],
      ['nfs-b', 'n2', 'p0.s0#1'],
    ]);
    expect(doc.plays[0]!.loop?.items).toEqual([
      { label: 'nfs-a', hosts: ['n1'], lock: 'service-nfs-a' },
      { label: 'nfs-b', hosts: ['n2'], lock: 'service-nfs-b' },
    ]);
  });

  it('check probes every item on its own hosts', async () => {
    const i = inputsOf();
    const pool = new TransportPool((h) => connectionFor(i.inventory.hosts.get(h)!));
    try {
      const results = await check({ playbook: i.playbook, inventory: i.inventory, extraVars: i.extraVars, registry: i.registry, pool });
      expect(results.map((r) => [r.host, r.instance, r.status])).toEqual([
        ['n1', 'p0.s0#0', 'CRITICAL'],
        ['n2', 'p0.s0#1', 'CRITICAL'],
      ]);
    } finally {
      await pool.closeAll();
    }
  });
});
