/**
 * The engine's safety invariants (issue: recovery that can never make things worse), on the
 * local transport with stand-in kinds. A "claim" is a file ROOT/NODE/NAME: held on NODE when it
 * exists. `claim` is a takeover kind, `unclaim` its release; the engine decides every safety
 * question, the kinds only say what their resource is and how to see it on a peer.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execute, type ExecuteOptions } from '../../src/engine/execute.js';
import { Journal, readJournal } from '../../src/engine/journal.js';
import { RecapCollector, type EngineEvent } from '../../src/engine/events.js';
import { Redactor } from '../../src/engine/redact.js';
import { stepTimeoutMs, DEFAULT_STEP_TIMEOUT_S } from '../../src/engine/timeouts.js';
import { defaultRegistry, StepRegistry } from '../../src/steps/registry.js';
import { allKinds } from '../../src/steps/index.js';
import { StepRefusedError, type StepContext, type StepKind } from '../../src/steps/contract.js';
import { unmountStep } from '../../src/steps/unmount.js';
import { mountStep } from '../../src/steps/mount.js';
import { TransportPool } from '../../src/transport/index.js';
import { UnreachableError } from '../../src/transport/transport.js';
import { connectionFor } from '../../src/inventory/connection.js';
import type { TransportSource } from '../../src/engine/context.js';
import { localInventory, playbook, step } from '../helpers/model.js';
import type { StepSpec } from '../../src/playbook/model.js';
import { BatonError } from '../../src/util/errors.js';

let root: string;
let stateDir: string;
beforeEach(() => {
  fencedOff.clear();
  root = mkdtempSync(path.join(os.tmpdir(), 'baton-safety-'));
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'baton-safety-state-'));
  for (const n of ['n1', 'n2', 'n3']) mkdirSync(path.join(root, n));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
});

interface ClaimArgs {
  name: string;
  peers: string[];
  /** Precondition: this file must exist on the node (stands for "the path is mounted"). */
  needs?: string;
}
const at = (node: string, name: string) => path.join(root, node, name);
const held = (name: string) => ['n1', 'n2', 'n3'].filter((n) => existsSync(at(n, name)));

const claim: StepKind<ClaimArgs, { held: boolean }> = {
  kind: 'claim',
  inverse: 'unclaim',
  role: 'takeover',
  resource: (a) => `claim ${a.name}`,
  async heldBy(peer: StepContext, a) {
    // Like mount without source: nothing named, nothing to find.
    if (!a.name) return null;
    const r = await peer.run(['test', '-e', at(peer.host.name, a.name)], { okCodes: [0, 1] });
    return r.code === 0 ? `holds ${a.name}` : null;
  },
  async preconditions(ctx, a) {
    if (a.needs && !existsSync(at(ctx.host.name, a.needs))) throw new StepRefusedError(`${ctx.host.name}: ${a.needs} is missing`);
  },
  probe: async (ctx, a) => ({ held: existsSync(at(ctx.host.name, a.name)) }),
  satisfied: (o) => o.held,
  apply: async (ctx, a) => void (await ctx.run(['touch', at(ctx.host.name, a.name)])),
  revert: async (ctx, a, before) => void (before.held ? undefined : await ctx.run(['rm', '-f', at(ctx.host.name, a.name)])),
  describe: (a) => ({ summary: `claim ${a.name}`, commands: [] }),
};

const unclaim: StepKind<ClaimArgs, { held: boolean }> = {
  kind: 'unclaim',
  inverse: 'claim',
  role: 'release',
  resource: (a) => `claim ${a.name}`,
  probe: async (ctx, a) => ({ held: existsSync(at(ctx.host.name, a.name)) }),
  satisfied: (o) => !o.held,
  apply: async (ctx, a) => void (await ctx.run(['rm', '-f', at(ctx.host.name, a.name)])),
  revert: async (ctx, a, before) => void (before.held ? await ctx.run(['touch', at(ctx.host.name, a.name)]) : undefined),
  describe: (a) => ({ summary: `unclaim ${a.name}`, commands: [] }),
};

/** A fence that "powers off" its target at once (it only tells the engine it confirmed it off). */
const fencedOff = new Set<string>();
const fakeFence: StepKind<{ target: string }, { off: boolean }> = {
  kind: 'fake_fence',
  role: 'fence',
  probe: async (_ctx, a) => ({ off: fencedOff.has(a.target) }),
  satisfied: (o) => o.off,
  apply: async (ctx, a) => {
    fencedOff.add(a.target);
    ctx.markDown(a.target, 'fenced (test: confirmed off)');
  },
  revert: async () => undefined,
  reversible: () => false,
  describe: (a) => ({ summary: `fence ${a.target}`, commands: [] }),
};

/** Never finishes: a SIGSTOPped daemon. */
const hang: StepKind<Record<string, never>, { done: boolean }> = {
  kind: 'hang',
  defaultTimeoutS: 1,
  probe: async () => ({ done: false }),
  satisfied: (o) => o.done,
  apply: () => new Promise<void>(() => undefined),
  revert: async () => undefined,
  describe: () => ({ summary: 'hang', commands: [] }),
};

/**
 * A release whose arguments do not name what it released, as `unmount: {path}` does not name the
 * disk: the slot file ROOT/NODE/SLOT says which claim sits in it; the probe records it.
 */
const empty: StepKind<{ slot: string }, { name: string | null }> = {
  kind: 'empty_slot',
  inverse: 'claim',
  role: 'release',
  resource: (a) => `slot ${a.slot}`,
  revertAs: (_a, before) => ({ name: before.name, peers: ['n2', 'n3'] }),
  probe: async (ctx, a) => ({ name: existsSync(at(ctx.host.name, a.slot)) ? readFileSync(at(ctx.host.name, a.slot), 'utf8') : null }),
  satisfied: (o) => o.name === null,
  apply: async (ctx, a, before) => void (await ctx.run(['rm', '-f', at(ctx.host.name, a.slot), at(ctx.host.name, before.name ?? '.none')])),
  revert: async (ctx, a, before) => {
    if (!before.name) return;
    await ctx.run(['sh', '-c', 'printf %s "$1" > "$2" && touch "$3"', 'sh', before.name, at(ctx.host.name, a.slot), at(ctx.host.name, before.name)]);
  },
  describe: (a) => ({ summary: `empty ${a.slot}`, commands: [] }),
};

const registry = () =>
  new StepRegistry([...allKinds, claim as StepKind, unclaim as StepKind, fakeFence as StepKind, hang as StepKind, empty as StepKind], (k) =>
    ['claim', 'unclaim', 'fake_fence', 'hang', 'empty_slot'].includes(k) ? {} : defaultRegistry().schema(k),
  );

/** The run's pool, with some hosts unreachable (a dead sshd). */
function poolWith(unreachable: string[], hosts: string[]): { pool: TransportSource; close: () => Promise<void> } {
  const inventory = localInventory(hosts);
  const real = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
  const down = new Map<string, string>();
  return {
    pool: {
      get: (h) =>
        unreachable.includes(h) ? Promise.reject(new UnreachableError(h, `cannot reach ${h}: connect ETIMEDOUT`)) : down.has(h) ? Promise.reject(new UnreachableError(h, down.get(h)!)) : real.get(h),
      markDown: (h, reason) => (reason ? down.set(h, reason) : down.delete(h)),
    },
    close: () => real.closeAll(),
  };
}

async function run(steps: StepSpec[], o: { unreachable?: string[]; hosts?: string[]; over?: Partial<ExecuteOptions>; play?: object; inventoryVars?: Record<string, Record<string, unknown>> } = {}) {
  const hosts = o.hosts ?? ['n1', 'n2', 'n3'];
  const inventory = localInventory(hosts);
  for (const [h, vars] of Object.entries(o.inventoryVars ?? {})) Object.assign(inventory.hosts.get(h)!.vars, vars);
  const events: EngineEvent[] = [];
  const recap = new RecapCollector();
  const journal = new Journal('safety-run', path.join(stateDir, 'runs'));
  const { pool, close } = poolWith(o.unreachable ?? [], hosts);
  try {
    const result = await execute({
      playbook: playbook(steps, { hosts: hosts[0], ...(o.play ?? {}) }),
      inventory,
      extraVars: {},
      registry: registry(),
      pool,
      runId: 'safety-run',
      journal,
      redactor: new Redactor(),
      onEvent: (e) => {
        events.push(e);
        recap.onEvent(e);
      },
      ...o.over,
    });
    return { result, events, recap, journal: existsSync(journal.path) ? readJournal(journal.path) : [] };
  } finally {
    journal.close();
    await close();
  }
}

const failedEnds = (events: EngineEvent[]) => events.filter((e): e is Extract<EngineEvent, { type: 'step-end' }> => e.type === 'step-end' && e.status === 'failed');
const warnings = (events: EngineEvent[]) => events.filter((e): e is Extract<EngineEvent, { type: 'log' }> => e.type === 'log' && e.level === 'warn').map((e) => e.message);

describe('one outcome: any failed step fails the run', () => {
  it('arguments that fail validation after templating fail the run, and the next step never runs (defect 1)', async () => {
    const marker = at('n1', 'second');
    const steps = [step('command', { argv: ['touch', '{{ n }}'] }), step('command', { argv: ['touch', marker], creates: marker })];
    const { result, events } = await run(steps, { hosts: ['n1'], play: { vars: { n: 5 } } });
    expect(result.exitCode).toBe(1);
    expect(result.outcome).toBe('failed-rolled-back');
    expect(existsSync(marker)).toBe(false);
    expect(failedEnds(events)[0]!.error).toMatch(/arguments after templating/);
  });

  it('a failure in a loop item fails the run too', async () => {
    const s = step('command', { argv: ['sh', '-c', 'test "$0" != b', '{{ item }}'] }, { loop: ['a', 'b', 'c'] });
    const { result } = await run([s], { hosts: ['n1'] });
    expect(result.exitCode).toBe(1);
  });
});

describe('unknown is not free: peers are asked on every takeover', () => {
  const take = (extra: Partial<ClaimArgs> = {}) => step('claim', { name: 'disk', peers: ['n1', 'n3'], ...extra });

  it('refuses a takeover while a reachable peer holds the resource, naming it, and takes nothing', async () => {
    await run([step('command', ['touch', at('n1', 'disk')])], { hosts: ['n1'] });
    const { result, events } = await run([take()], { play: { hosts: 'n2' } });
    expect(result.exitCode).toBe(1);
    expect(failedEnds(events)[0]!.error).toMatch(/n1 holds disk/);
    expect(held('disk')).toEqual(['n1']);
  });

  it('refuses while a peer cannot be reached, naming it and why (defect 4)', async () => {
    const { result, events } = await run([take()], { play: { hosts: 'n2' }, unreachable: ['n1'] });
    expect(result.exitCode).toBe(1);
    expect(failedEnds(events)[0]!.error).toMatch(/n1 cannot be reached .*ETIMEDOUT.*unknown is not free/);
    expect(held('disk')).toEqual([]);
  });

  it('goes on when this run fenced the unreachable peer, and says so at the default verbosity', async () => {
    const { result, events } = await run([step('fake_fence', { target: 'n1' }), take()], { play: { hosts: 'n2' }, unreachable: [] });
    expect(result.exitCode).toBe(0);
    expect(held('disk')).toEqual(['n2']);
    expect(warnings(events).join('\n')).toMatch(/n1 cannot be asked .* fenced in this run/);
  });

  it('goes on when this run released the resource on the peer before it became unreachable', async () => {
    await run([step('command', ['touch', at('n1', 'disk')])], { hosts: ['n1'] });
    const hosts = ['n1', 'n2', 'n3'];
    const inventory = localInventory(hosts);
    const events: EngineEvent[] = [];
    // n1 answers the release, then drops off the network before the takeover's peer check.
    const real = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
    let n1Gone = false;
    const pool: TransportSource = { get: (h) => (h === 'n1' && n1Gone ? Promise.reject(new UnreachableError('n1', 'connection lost')) : real.get(h)) };
    const cut: StepKind = { ...hang, kind: 'cut', defaultTimeoutS: 5, probe: async () => ({ done: n1Gone }), satisfied: (o: { done: boolean }) => o.done, apply: async () => void (n1Gone = true), reversible: () => false };
    const reg = new StepRegistry([...allKinds, claim as StepKind, unclaim as StepKind, cut], (k) => (['claim', 'unclaim', 'cut'].includes(k) ? {} : defaultRegistry().schema(k)));
    const pb = {
      file: 't.yml',
      plays: [
        { ...playbook([step('unclaim', { name: 'disk', peers: [] }), step('cut', {})], { hosts: 'n1' }).plays[0]! },
        { ...playbook([take()], { hosts: 'n2' }).plays[0]!, steps: playbook([take()]).plays[0]!.steps.map((s) => ({ ...s, id: 'p1.s0' })) },
      ],
    };
    try {
      const result = await execute({ playbook: pb, inventory, extraVars: {}, registry: reg, pool, runId: 'r', redactor: new Redactor(), onEvent: (e) => events.push(e) });
      expect(result.exitCode).toBe(0);
      expect(held('disk')).toEqual(['n2']);
      expect(warnings(events).join('\n')).toMatch(/released claim disk in this run/);
    } finally {
      await real.closeAll();
    }
  });

  it("goes on when the unreachable peer's BMC says it is powered off, and says so; a BMC saying on still refuses", async () => {
    const off = await run([take()], { play: { hosts: 'n2' }, unreachable: ['n1'], over: { peerPower: async (h) => ({ power: h.name === 'n1' ? 'off' : 'on' }) } });
    expect(off.result.exitCode).toBe(0);
    expect(held('disk')).toEqual(['n2']);
    expect(warnings(off.events).join('\n')).toMatch(/n1 cannot be asked whether it holds claim disk, but its BMC says it is powered off: going on/);
    const on = await run([step('claim', { name: 'disk2', peers: ['n1'] })], { play: { hosts: 'n2' }, unreachable: ['n1'], over: { peerPower: async () => ({ power: 'on' }) } });
    expect(on.result.exitCode).toBe(1);
    expect(failedEnds(on.events)[0]!.error).toMatch(/n1 cannot be reached .*ETIMEDOUT.*its BMC says power on.*unknown is not free/);
    expect(held('disk2')).toEqual([]);
  });

  it('a rollback re-taking what this run released goes on past a peer powered off (by its BMC): rolled back whole, exit 1', async () => {
    // A move whose takeover fails, with a third node off: the release's revert must not be blocked by it.
    await run([step('command', ['touch', at('n2', 'disk')])], { hosts: ['n2'] });
    const steps = [step('unclaim', { name: 'disk', peers: ['n1'] }), step('claim', { name: 'disk', peers: ['n1'], needs: 'missing' })];
    const blocked = await run(steps, { play: { hosts: 'n2' }, unreachable: ['n1'] });
    expect([blocked.result.exitCode, held('disk')]).toEqual([3, []]);
    await run([step('command', ['touch', at('n2', 'disk')])], { hosts: ['n2'] });
    const r = await run(steps, { play: { hosts: 'n2' }, unreachable: ['n1'], over: { peerPower: async () => ({ power: 'off' }) } });
    expect([r.result.exitCode, held('disk')]).toEqual([1, ['n2']]);
  });

  it('--force takes it anyway, and says so at the default verbosity', async () => {
    const { result, events } = await run([take()], { play: { hosts: 'n2' }, unreachable: ['n1'], over: { force: true } });
    expect(result.exitCode).toBe(0);
    expect(held('disk')).toEqual(['n2']);
    expect(warnings(events).join('\n')).toMatch(/--force: claim claim disk on n2 although n1 cannot be reached/);
  });

  it('peers default to the inventory hosts reached over the network, never the controller-local ones', async () => {
    const { peersOf } = await import('../../src/engine/safety.js');
    const inventory = localInventory(['n1', 'n2', 'c1']);
    for (const n of ['n1', 'n2']) inventory.hosts.get(n)!.vars = { ansible_host: `198.18.0.${n.slice(1)}` };
    expect(peersOf(inventory, inventory.hosts.get('n2')!, {})).toEqual(['n1']);
    expect(peersOf(inventory, inventory.hosts.get('n2')!, { peers: ['c1', 'n2'] })).toEqual(['c1']);
  });
});

describe('rollback never does what a run would refuse', () => {
  it('reverting a release runs the takeover kind\'s preconditions: no re-export of an unmounted path (defect 5)', async () => {
    await run([step('command', ['touch', at('n1', 'disk'), at('n1', 'mounted')])], { hosts: ['n1'] });
    const steps = [
      step('unclaim', { name: 'disk', peers: [], needs: 'mounted' }),
      // The mount went away behind the run's back (its revert failed, the node lost it).
      step('command', ['rm', '-f', at('n1', 'mounted')]),
      step('command', ['false']),
    ];
    const { result, events } = await run(steps, { hosts: ['n1'] });
    expect(result.exitCode).toBe(3);
    expect(held('disk')).toEqual([]);
    const bad = events.find((e) => e.type === 'revert-end' && !e.ok) as Extract<EngineEvent, { type: 'revert-end' }>;
    expect(bad.error).toMatch(/mounted is missing/);
  });

  it('reverting a release asks the peers first: never a resource on two nodes (defects 2 and 3 at engine level)', async () => {
    await run([step('command', ['touch', at('n1', 'disk')])], { hosts: ['n1'] });
    const steps = [
      step('unclaim', { name: 'disk', peers: ['n2', 'n3'] }),
      // Someone else takes it meanwhile (a later run from another controller).
      step('command', ['touch', at('n3', 'disk')]),
      step('command', ['false']),
    ];
    const { result, events } = await run(steps, { hosts: ['n1', 'n2', 'n3'], play: { hosts: 'n1' } });
    expect(result.exitCode).toBe(3);
    expect(held('disk')).toEqual(['n3']);
    const bad = events.find((e) => e.type === 'revert-end' && !e.ok) as Extract<EngineEvent, { type: 'revert-end' }>;
    expect(bad.error).toMatch(/n3 holds disk/);
  });
});

describe('the revert of a release is checked as the takeover of what it released', () => {
  it('asks the peers about what the release\'s probe saw, when its arguments do not name it (an unmount names only a path)', async () => {
    await run([step('command', ['sh', '-c', `printf disk > ${at('n1', 'slot')} && touch ${at('n1', 'disk')}`])], { hosts: ['n1'] });
    const steps = [
      step('empty_slot', { slot: 'slot' }),
      // The disk is taken on n2 meanwhile (the takeover half of a move whose connection then died).
      step('command', ['touch', at('n2', 'disk')]),
      step('command', ['false']),
    ];
    const { result, events } = await run(steps, { hosts: ['n1', 'n2', 'n3'], play: { hosts: 'n1' } });
    expect(result.exitCode).toBe(3);
    expect(held('disk')).toEqual(['n2']);
    const bad = events.find((e) => e.type === 'revert-end' && !e.ok) as Extract<EngineEvent, { type: 'revert-end' }>;
    expect(bad.error).toMatch(/n2 holds disk/);
  });
});

describe('a revert is verified by intent, not by bytes (defect 6)', () => {
  it('a disk mounted back from another loop device is back as before', () => {
    const fs = (source: string) => ({ source, fstype: 'ext4', options: 'rw,relatime', superOptions: 'rw' });
    expect(unmountStep.restored!({ mounted: fs('/dev/loop2'), image: '/srv/san/d.img' }, { mounted: fs('/dev/loop1'), image: '/srv/san/d.img' }, { path: '/srv/d' })).toBe(true);
    expect(unmountStep.restored!({ mounted: fs('/dev/loop2') }, { mounted: null }, { path: '/srv/d' })).toBe(false);
    expect(mountStep.restored!({ device: null, mounted: null, submounts: [] }, { device: '/dev/loop7', mounted: null, submounts: [] }, { path: '/srv/d', fstype: 'ext4' })).toBe(true);
  });

  it('without a kind-specific judgement, a revert counts when satisfied() says the same of before and now', async () => {
    let n = 0;
    const counter: StepKind<Record<string, never>, { on: boolean; pid: number }> = {
      kind: 'counter',
      probe: async () => ({ on: false, pid: ++n }),
      satisfied: () => false,
      apply: async () => undefined,
      revert: async () => undefined,
      describe: () => ({ summary: 'counter', commands: [] }),
    };
    const reg = new StepRegistry([...allKinds, counter as StepKind], (k) => (k === 'counter' ? {} : defaultRegistry().schema(k)));
    // The apply "fails" its after-probe (satisfied is false), so the change is rolled back and verified.
    const { result } = await run([step('counter', {})], { hosts: ['n1'], over: { registry: reg } });
    expect(result.exitCode).toBe(1);
    expect(result.outcome).toBe('failed-rolled-back');
  });
});

describe('every step is bounded (defect 9)', () => {
  it('every shipped kind has a finite bound, documented in docs/timeouts.md', async () => {
    const reg = defaultRegistry();
    await reg.ensureLoaded();
    const doc = readFileSync(path.resolve('docs/timeouts.md'), 'utf8');
    for (const kind of reg.kinds()) {
      const ms = stepTimeoutMs(reg.get(kind)!, {});
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThanOrEqual(DEFAULT_STEP_TIMEOUT_S * 1000);
      expect(doc).toContain(`\`${kind}\``);
    }
  });

  it('a step that hangs is ended at its kind\'s default bound and the run rolls back', { timeout: 30_000 }, async () => {
    const marker = at('n1', 'a');
    const steps = [step('command', { argv: ['touch', marker], creates: marker, revert: ['rm', '-f', marker] }), step('hang', {})];
    const { result, events } = await run(steps, { hosts: ['n1'] });
    expect(result.exitCode).toBe(1);
    expect(existsSync(marker)).toBe(false);
    expect(failedEnds(events)[0]!.error).toMatch(/timed out after 1 s \(the default bound of hang/);
  });

  it('a step\'s own timeout: wins over the kind\'s default', () => {
    expect(stepTimeoutMs(hang as StepKind, {}, 7)).toBe(7000);
  });
});

describe('selections that match nothing are errors, not successes (defect 10)', () => {
  it('a --limit that matches no host is invalid input, and nothing runs', async () => {
    const marker = at('n1', 'm');
    const err = await run([step('command', { argv: ['touch', marker], creates: marker })], { hosts: ['n1', 'n2'], play: { hosts: 'all' }, over: { limit: 'nosuchhost' } }).catch((e) => e);
    expect(err).toBeInstanceOf(BatonError);
    expect((err as BatonError).exitCode).toBe(2);
    expect(err.message).toMatch(/--limit "nosuchhost" matches no host/);
    expect(existsSync(marker)).toBe(false);
  });

  it('a play left with no host while another has some is invalid input (a switchover limited to one side)', async () => {
    const marker = at('n1', 'm');
    const one = playbook([step('command', { argv: ['touch', marker], creates: marker })], { hosts: 'n1' }).plays[0]!;
    const two = { ...playbook([step('command', ['true'])], { hosts: 'n2', name: 'take over on n2' }).plays[0]!, steps: [{ ...step('command', ['true']), id: 'p1.s0' }] };
    const inventory = localInventory(['n1', 'n2']);
    const { pool, close } = poolWith([], ['n1', 'n2']);
    try {
      const err = await execute({ playbook: { file: 't.yml', plays: [one, two] }, inventory, extraVars: {}, registry: registry(), pool, runId: 'r', redactor: new Redactor(), limit: 'n1', onEvent: () => undefined }).catch((e) => e);
      expect((err as BatonError).exitCode).toBe(2);
      expect(err.message).toMatch(/no host selected for play 2 "take over on n2"/);
      expect(existsSync(marker)).toBe(false);
    } finally {
      await close();
    }
  });
});

describe('extra vars win over inventory vars for every key (defect 12)', () => {
  it('hostvars of another host see -e too, as a fence reads the BMC password of its target', async () => {
    const out = at('n2', 'pw');
    const s = step('command', { argv: ['sh', '-c', 'printf %s "$1" > "$0"', out, "{{ hostvars['n1'].bmc_password }}"], creates: out });
    const { result } = await run([s], { hosts: ['n1', 'n2'], play: { hosts: 'n2' }, inventoryVars: { n1: { bmc_password: 'old-inventory-pw' } }, over: { extraVars: { bmc_password: 'new-from-e' } } });
    expect(result.exitCode).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('new-from-e');
  });
});
