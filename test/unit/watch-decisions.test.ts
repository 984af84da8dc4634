/**
 * `baton watch`'s decisions, round by round, without any cluster: when a node counts as failed
 * (N rounds in a row, and its BMC says off or it cannot be reached at all), that a node that
 * answers but fails its read is never failed over, that only the leader acts, the cool-down,
 * --dry-run, and the loop acting once and journaling what it saw.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DecisionLog, FailureTracker, healthOf, SingleWatcher, watch, type Leadership, type NodeHealth, type WatchSettings } from '../../src/engine/watch.js';
import { requireInventoryNames } from '../../src/engine/coordinator.js';
import { MemEtcd } from '../helpers/mem-etcd.js';
import type { Inventory } from '../../src/inventory/model.js';

const S: WatchSettings = { intervalMs: 1, failures: 3, cooldownMs: 60_000, dryRun: false };
const ok = (name: string): NodeHealth => ({ name, read: true, reachable: true, power: 'on', groups: [] });
const off = (name: string): NodeHealth => ({ name, read: false, reachable: false, power: 'off', error: 'connect ECONNREFUSED', groups: ['g1'] });
const hung = (name: string): NodeHealth => ({ name, read: false, reachable: false, power: 'unknown', error: 'timed out', groups: ['g1'] });
/** sshd refuses us (down, our login or key refused, its host key changed): the host answered. */
const refusing = (name: string, power: NodeHealth['power'] = 'on'): NodeHealth => ({ name, read: false, reachable: false, answered: true, power, error: 'cannot reach n1 at 10.0.0.1:22: connection refused', groups: ['g1'] });
const sick = (name: string): NodeHealth => ({ name, read: false, reachable: true, power: 'on', error: 'reading n1 failed (exit 1)', groups: ['g1'] });

const actions = (t: FailureTracker, rounds: NodeHealth[][], leader = true, t0 = 0) => rounds.map((h, i) => t.judge(h, leader, t0 + i * 1000, 'ctl').map((d) => `${d.node}:${d.action}`));

let dir: string | undefined;
afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

describe('watch decisions', () => {
  it('fails a node over only after N failed rounds in a row, when its BMC says off', () => {
    const t = new FailureTracker(S);
    expect(actions(t, [[ok('n1'), ok('n2')], [off('n1'), ok('n2')], [off('n1'), ok('n2')], [off('n1'), ok('n2')]])).toEqual([[], ['n1:suspect'], ['n1:suspect'], ['n1:failover']]);
  });

  it('a node that cannot be reached at all counts as failed too (its BMC does not answer either)', () => {
    const t = new FailureTracker(S);
    expect(actions(t, [[hung('n1')], [hung('n1')], [hung('n1')]]).at(-1)).toEqual(['n1:failover']);
  });

  it('a round where the node is read again starts the count over', () => {
    const t = new FailureTracker(S);
    expect(actions(t, [[off('n1')], [off('n1')], [ok('n1')], [off('n1')], [off('n1')]])).toEqual([['n1:suspect'], ['n1:suspect'], ['n1:recovered'], ['n1:suspect'], ['n1:suspect']]);
  });

  it('a node that answers SSH but fails its read is sick, not dead: never failed over', () => {
    const t = new FailureTracker(S);
    expect(actions(t, [[sick('n1')], [sick('n1')], [sick('n1')], [sick('n1')]]).slice(2)).toEqual([['n1:sick'], ['n1:sick']]);
  });

  it('a node whose sshd refuses us while its BMC says on (or cannot tell) is up: sick, never fenced; its BMC saying off still decides', () => {
    const t = new FailureTracker(S);
    expect(actions(t, [[refusing('n1')], [refusing('n1')], [refusing('n1')], [refusing('n1')]]).slice(2)).toEqual([['n1:sick'], ['n1:sick']]);
    const u = new FailureTracker(S);
    expect(actions(u, [[refusing('n1', 'unknown')], [refusing('n1', 'unknown')], [refusing('n1', 'unknown')]]).at(-1)).toEqual(['n1:sick']);
    const v = new FailureTracker(S);
    expect(actions(v, [[refusing('n1', 'off')], [refusing('n1', 'off')], [refusing('n1', 'off')]]).at(-1)).toEqual(['n1:failover']);
  });

  it('rounds it answered do not count towards dead: refused three rounds, then silent one round, is not failed over until silent for N rounds', () => {
    const t = new FailureTracker(S);
    const seen = actions(t, [[refusing('n1')], [refusing('n1')], [refusing('n1')], [hung('n1')], [hung('n1')], [hung('n1')]]);
    expect(seen).toEqual([['n1:suspect'], ['n1:suspect'], ['n1:sick'], ['n1:suspect'], ['n1:suspect'], ['n1:failover']]);
  });

  it('only the leader acts; the others say who does', () => {
    const t = new FailureTracker(S);
    expect(actions(t, [[off('n1')], [off('n1')], [off('n1')]], false).at(-1)).toEqual(['n1:not-leader']);
  });

  it('after a failover, the same node is not failed over again within the cool-down', () => {
    const t = new FailureTracker(S);
    const seen = actions(t, [[off('n1')], [off('n1')], [off('n1')]]);
    t.acted('n1');
    const later = actions(t, [[off('n1')], [off('n1')], [off('n1')]], true, 3000);
    expect(seen.at(-1)).toEqual(['n1:failover']);
    expect(later.at(-1)).toEqual(['n1:cooldown']);
    t.acted('n1');
    // Past the cool-down it acts again.
    expect(actions(t, [[off('n1')], [off('n1')], [off('n1')]], true, 120_000).at(-1)).toEqual(['n1:failover']);
  });

  it('--dry-run says what it would do and does not act', () => {
    const t = new FailureTracker({ ...S, dryRun: true });
    const last = t.judge([off('n1')], true, 0, 'c').concat(t.judge([off('n1')], true, 1, 'c'), t.judge([off('n1')], true, 2, 'c')).at(-1)!;
    expect(last.action).toBe('would-failover');
    expect(last.why).toMatch(/would run node-failover -e failed=n1/);
  });
});

describe('the watch loop', () => {
  it('runs node-failover once for a node confirmed failed, and journals what it saw and why', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-watch-'));
    const lead: Leadership = { label: 'test', lead: async () => true, resign: async () => undefined };
    const failovers: string[] = [];
    await watch({
      settings: S,
      leadership: lead,
      log: new DecisionLog(dir),
      say: () => undefined,
      signal: new AbortController().signal,
      rounds: 6,
      observe: async () => [off('n1'), ok('n2')],
      failover: async (node) => (failovers.push(node), 0),
    });
    expect(failovers).toEqual(['n1']);
    const lines = readFileSync(path.join(dir, 'watch.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { node: string; action: string; why: string; saw: { power: string } });
    const acted = lines.filter((l) => l.action === 'failover');
    expect(acted.map((l) => l.why)).toEqual([expect.stringMatching(/n1 is confirmed failed \(3 rounds, its BMC says it is powered off\)/), 'node-failover for n1 ended with exit 0']);
    expect(acted[0]!.saw.power).toBe('off');
    // The rounds after the failover count again from zero: no second failover within six rounds.
    expect(lines.filter((l) => l.action === 'suspect')).toHaveLength(4);
  });

  it('a leadership that cannot be told means not acting', async () => {
    const failovers: string[] = [];
    const said: string[] = [];
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-watch-'));
    await watch({
      settings: S,
      leadership: { label: 'etcd (down)', lead: async () => Promise.reject(new Error('etcd cannot be reached')), resign: async () => undefined },
      log: new DecisionLog(dir),
      say: (l) => said.push(l),
      signal: new AbortController().signal,
      rounds: 4,
      observe: async () => [off('n1')],
      failover: async (node) => (failovers.push(node), 0),
    });
    expect(failovers).toEqual([]);
    expect(said.some((l) => /cannot campaign for leadership in etcd \(down\)/.test(l))).toBe(true);
  });
});

describe('the watch loop on a bad day', () => {
  const lead: Leadership = { label: 'test', lead: async () => true, resign: async () => undefined };

  it('a failover that failed (exit 4) holds no cool-down: tried again once the node is confirmed failed anew, not held off for --cooldown', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-watch-'));
    const failovers: string[] = [];
    const said: string[] = [];
    await watch({ settings: { ...S, cooldownMs: 600_000 }, leadership: lead, log: new DecisionLog(dir), say: (l) => said.push(l), signal: new AbortController().signal, rounds: 9, observe: async () => [off('n1')], failover: async (n) => (failovers.push(n), 4) });
    // Rounds 3, 6 and 9: confirmed each time after three rounds in a row.
    expect(failovers).toEqual(['n1', 'n1', 'n1']);
    expect(said.some((l) => /n1: cooldown/.test(l))).toBe(false);
  });

  it('asked to stop during the first failover of a round: the second is not started', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-watch-'));
    const stop = new AbortController();
    const failovers: string[] = [];
    const said: string[] = [];
    await watch({ settings: { ...S, failures: 1 }, leadership: lead, log: new DecisionLog(dir), say: (l) => said.push(l), signal: stop.signal, observe: async () => [off('n1'), off('n2')], failover: async (n) => (failovers.push(n), stop.abort(), 0) });
    expect(failovers).toEqual(['n1']);
    expect(said).toContain('watch: n2: not failing it over: the watcher is stopping (the next leader decides)');
  });

  it("a re-run undo of a failover (exit 0) is no failover: it holds no cool-down; a re-run node-failover does", async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-watch-'));
    const etcd = new MemEtcd();
    const log = new DecisionLog(dir, etcd as never);
    const at = new Date().toISOString();
    const base = { at, controller: 'w2', node: 'n1', action: 'rerun' as const, failures: 0, saw: { reachable: true, power: 'on', groups: [] }, run: 'X', exit: 0 };
    await log.write({ ...base, why: 'undo of run R (finishing orphan X) ended with exit 0', ran: 'undo' });
    expect(await log.lastFailover('n1', 'node-failover.yml', 600_000)).toBeUndefined();
    await log.write({ ...base, why: 'node-failover for n1 (finishing orphan X) ended with exit 0', ran: 'node-failover' });
    expect(await log.lastFailover('n1', 'node-failover.yml', 600_000)).toBe(Date.parse(at));
  });

  it('the cool-down is read under the node, not from every decision: a day of suspect records of another node is never read', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-watch-'));
    const etcd = new MemEtcd();
    const log = new DecisionLog(dir, etcd as never);
    const at = new Date().toISOString();
    await log.write({ at, controller: 'w1', node: 'n1', action: 'failover', why: 'node-failover for n1 ended with exit 0', failures: 3, saw: { reachable: false, power: 'off', groups: [] }, exit: 0 });
    const read: string[] = [];
    const range = etcd.range.bind(etcd);
    etcd.range = async (key, o) => (read.push(key), range(key, o));
    expect(await log.lastFailover('n1', 'node-failover.yml', 600_000)).toBe(Date.parse(at));
    expect(read.filter((k) => k.startsWith('baton/watch/'))).toEqual(['baton/watch/failovers/n1/']);
  });

  it('when etcd cannot say whether a watcher failed the node over within the cool-down, the leader does not act that round', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-watch-'));
    const failovers: string[] = [];
    const said: string[] = [];
    class Unreadable extends DecisionLog {
      override async lastFailover(): Promise<number | undefined> {
        throw new Error('etcd range timed out after 3000 ms');
      }
    }
    await watch({ settings: { ...S, failures: 1 }, leadership: lead, log: new Unreadable(dir), say: (l) => said.push(l), signal: new AbortController().signal, rounds: 3, observe: async () => [off('n1')], failover: async (n) => (failovers.push(n), 0) });
    expect(failovers).toEqual([]);
    expect(said.filter((l) => /cannot be read from etcd \(etcd range timed out after 3000 ms\): not acting this round/.test(l))).toHaveLength(3);
  });
});

describe('the coordinator a watcher may use', () => {
  const inv = (coordinator?: string) => {
    const i = { file: '/etc/baton/prod.yml', groups: new Map([['all', { vars: coordinator ? { baton_coordinator: coordinator } : {} }]]) };
    return i as unknown as Inventory;
  };
  it('an etcd coordinator the inventory does not name is refused, saying what to add; named (endpoints in any order), or embedded, it is taken', () => {
    expect(() => requireInventoryNames('etcd://h1:2379,h2:2379', inv(), 'baton watch')).toThrow(
      /baton watch with the coordinator etcd:\/\/h1:2379,h2:2379: the inventory \/etc\/baton\/prod.yml names no coordinator, so a `baton run` with it and no --coordinator would take its locks embedded .*Put `baton_coordinator: etcd:\/\/h1:2379,h2:2379` in the inventory's all.vars/,
    );
    expect(() => requireInventoryNames('etcd://h1:2379', inv('etcd://h9:2379'), 'baton watch')).toThrow(/names another one \(etcd:\/\/h9:2379\)/);
    expect(() => requireInventoryNames('etcd://h1:2379,h2:2379', inv('etcd://h2:2379,h1:2379'), 'baton watch')).not.toThrow();
    expect(() => requireInventoryNames('embedded', inv(), 'baton watch')).not.toThrow();
    expect(() => requireInventoryNames(undefined, inv(), 'baton watch')).not.toThrow();
  });

  it('the other way round: the inventory names etcd and the watcher is told embedded: refused too', () => {
    expect(() => requireInventoryNames('embedded', inv('etcd://h1:2379'), 'baton watch')).toThrow(/baton watch with the coordinator embedded: the inventory \/etc\/baton\/prod.yml names etcd:\/\/h1:2379, where every `baton run` with it takes its locks/);
    expect(() => requireInventoryNames(undefined, inv('etcd://h1:2379'), 'baton watch')).toThrow(/coordinator embedded/);
  });
});

describe('a failed node that holds nothing', () => {
  it('confirmed failed, but every group it may run runs whole elsewhere: idle, never fenced (it may be coming back)', () => {
    const t = new FailureTracker(S);
    const empty = (name: string): NodeHealth => ({ ...off(name), groups: [], mayHold: [] });
    expect(actions(t, [[empty('n1')], [empty('n1')], [empty('n1')], [empty('n1')]]).slice(2)).toEqual([['n1:idle'], ['n1:idle']]);
    const u = new FailureTracker(S);
    expect(actions(u, [[{ ...off('n1'), groups: [], mayHold: ['g1'] }], [{ ...off('n1'), groups: [], mayHold: ['g1'] }], [{ ...off('n1'), groups: [], mayHold: ['g1'] }]]).at(-1)).toEqual(['n1:failover']);
  });

  it('what a node may hold: seen on it or maybe on it, or allowed on it and running whole nowhere (a node off is read as holding nothing)', () => {
    const node = (name: string, power: 'on' | 'off', read: boolean) => ({ name, reachable: read, power, ...(read ? { view: {} } : {}) });
    const group = (name: string, state: string, nodes: string[], unknownNodes: string[] = []) => ({ name, state, nodes, home: 'n1', parts: {}, missing: [], unknownNodes, summary: '', serves: [] });
    const status = {
      nodes: [node('n1', 'off', false), node('n2', 'on', true), node('n3', 'on', false)],
      groups: [group('a', 'running', ['n2']), group('b', 'stopped', []), group('c', 'running', ['n2'], ['n3'])],
    } as unknown as Parameters<typeof healthOf>[0];
    const allowed = new Map([['a', ['n1', 'n2']], ['b', ['n1', 'n2']], ['c', ['n2', 'n3']]]);
    const h = Object.fromEntries(healthOf(status, allowed).map((x) => [x.name, x.mayHold]));
    expect(h).toEqual({ n1: ['b'], n2: ['a', 'b', 'c'], n3: ['c'] });
  });
});

describe('a second embedded watcher', () => {
  it('on the same state dir: it leaves with the lock error (exit 5), never watching', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-watch-'));
    const saved = process.env.BATON_STATE_DIR;
    process.env.BATON_STATE_DIR = dir;
    const first = new SingleWatcher('first-watcher');
    try {
      expect(await first.lead()).toBe(true);
      const failovers: string[] = [];
      const second = watch({ settings: { ...S, failures: 1 }, leadership: new SingleWatcher('second-watcher'), log: new DecisionLog(dir), say: () => undefined, signal: new AbortController().signal, rounds: 3, observe: async () => [off('n1')], failover: async (n) => (failovers.push(n), 0) });
      await expect(second).rejects.toMatchObject({ exitCode: 5 });
      expect(failovers).toEqual([]);
    } finally {
      await first.resign();
      if (saved === undefined) delete process.env.BATON_STATE_DIR;
      else process.env.BATON_STATE_DIR = saved;
    }
  });
});

describe('decisions in etcd', () => {
  it('those that change nothing (suspect, not-leader, cool-down…) go under one lease of a day, granted once an hour; acting ones are kept', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-watch-'));
    const puts: Array<{ key: string; lease?: string }> = [];
    const grants: number[] = [];
    const etcd = {
      endpoints: ['http://fake:2379'],
      put: async (key: string, _value: string, o: { lease?: string } = {}) => (puts.push({ key, ...(o.lease ? { lease: o.lease } : {}) }), 1),
      leaseGrant: async (ttl: number) => (grants.push(ttl), `lease-${grants.length}`),
      range: async () => [],
    };
    const log = new DecisionLog(dir, etcd as never);
    const d = (action: 'suspect' | 'not-leader' | 'failover', exit?: number) => ({ at: new Date().toISOString(), controller: 'w1', node: 'n1', action, why: '', failures: 1, saw: { reachable: false, power: 'off', groups: [] }, ...(exit !== undefined ? { exit } : {}) });
    for (const x of [d('suspect'), d('not-leader'), d('suspect'), d('failover'), d('failover', 0)]) await log.write(x);
    const decisions = puts.filter((p) => p.key.startsWith('baton/watch/decisions/'));
    expect(decisions.map((p) => [p.key.split('-').at(-2), p.lease ?? 'kept'])).toEqual([
      ['suspect', 'lease-1'],
      ['leader', 'lease-1'],
      ['suspect', 'lease-1'],
      ['failover', 'kept'],
      ['failover', 'kept'],
    ]);
    expect(grants).toHaveLength(1);
    expect(grants[0]).toBeGreaterThanOrEqual(24 * 3600);
  });
});
