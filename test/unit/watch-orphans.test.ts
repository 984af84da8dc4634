/**
 * What the leading watcher does with a run a dead controller left (docs/watch.md, "A
 * controller killed mid-run"), without any cluster: the rule (re-run a failover whose node is
 * still confirmed failed, undo it when the node is healthy again, wait while neither; re-run an
 * undo; undo anything else), and the loop acting on it once, journaling why, through the
 * ordinary failover and undo.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/engine/journal.js';
import { judgeOrphan, OrphanFinder, type Orphan } from '../../src/engine/orphans.js';
import { journalLineKey, lockKey } from '../../src/engine/locks/etcd.js';
import { MemEtcd } from '../helpers/mem-etcd.js';
import { DecisionLog, watch, type Leadership, type NodeHealth, type WatchSettings } from '../../src/engine/watch.js';

const S: WatchSettings = { intervalMs: 1, failures: 2, cooldownMs: 60_000, dryRun: false };
const ok = (name: string): NodeHealth => ({ name, read: true, reachable: true, power: 'on', groups: ['g1'] });
const off = (name: string): NodeHealth => ({ name, read: false, reachable: false, power: 'off', error: 'connect ECONNREFUSED', groups: ['g1'] });
const head = (h: Partial<RunRecord>): RunRecord => ({ t: 'run', runId: 'R', mode: 'run', controller: 'w1', pid: 42, argv: [], at: '2026-11-27T10:00:00.000Z', lock: 'fence-n1,service-g1', ...h });
const failoverOrphan: Orphan = { runId: '20261127T100000Z-aaaaaa', head: head({ playbook: '/etc/baton/playbooks/node-failover.yml', extraVars: { failed: 'n1' } }) };
const switchoverOrphan: Orphan = { runId: '20261127T100000Z-bbbbbb', head: head({ playbook: '/srv/nfs-switchover.yml', extraVars: { from: 'n1', to: 'n2' }, lock: 'service-g1' }) };
const undoOrphan: Orphan = { runId: '20261127T100000Z-cccccc', head: head({ mode: 'undo', undoOf: '20261127T090000Z-dddddd' }) };
const lead: Leadership = { label: 'test', lead: async () => true, resign: async () => undefined };

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the rule for a run a dead controller left', () => {
  it('a failover whose node is still confirmed failed is re-run; healthy again, undone; neither yet, wait', () => {
    expect(judgeOrphan(failoverOrphan, 'node-failover.yml', () => 'failed')).toMatchObject({ action: 'rerun', node: 'n1', why: expect.stringMatching(/never ended and its locks \(fence-n1,service-g1\) are free.*n1 is still confirmed failed: re-running node-failover.yml -e failed=n1/) });
    expect(judgeOrphan(failoverOrphan, 'node-failover.yml', () => 'healthy')).toMatchObject({ action: 'undo', node: 'n1' });
    expect(judgeOrphan(failoverOrphan, 'node-failover.yml', () => 'unknown')).toMatchObject({ action: 'wait', node: 'n1' });
  });

  it('an undo left half done is re-run; a run that is no failover of the watcher is undone', () => {
    expect(judgeOrphan(undoOrphan, 'node-failover.yml', () => 'failed')).toMatchObject({ action: 'rerun', why: expect.stringMatching(/undoing run 20261127T090000Z-dddddd again/) });
    expect(judgeOrphan(switchoverOrphan, 'node-failover.yml', () => 'failed')).toMatchObject({ action: 'undo', why: expect.stringMatching(/not a failover of this watcher's/) });
    // Another failover playbook than the watcher's is not the watcher's to re-run.
    expect(judgeOrphan(failoverOrphan, 'my-failover.yml', () => 'failed')).toMatchObject({ action: 'undo' });
  });
});

interface Calls {
  failovers: string[];
  undos: string[];
  starts: string[];
}

async function loop(o: { orphans: Orphan[][]; health: NodeHealth[]; failoverExit?: number[]; undoExit?: number; dryRun?: boolean; leader?: boolean; rounds?: number }): Promise<Calls & { decisions: Array<{ action: string; why: string; run?: string; exit?: number; saw: { power: string } }> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-watch-orphans-'));
  dirs.push(dir);
  const calls: Calls = { failovers: [], undos: [], starts: [] };
  let round = 0;
  const exits = [...(o.failoverExit ?? [])];
  await watch({
    settings: { ...S, dryRun: Boolean(o.dryRun) },
    leadership: o.leader === false ? { ...lead, lead: async () => false } : lead,
    log: new DecisionLog(dir),
    say: () => undefined,
    signal: new AbortController().signal,
    rounds: o.rounds ?? 4,
    observe: async () => o.health,
    // Each round's orphans (the last list stays: an orphan nobody took over is found again).
    orphans: { find: async () => o.orphans[Math.min(round++, o.orphans.length - 1)]! },
    failover: async (node) => (calls.failovers.push(node), exits.shift() ?? 0),
    undo: async (runId) => (calls.undos.push(runId), o.undoExit ?? 0),
    groupOfLock: (lock) => (lock.startsWith('service-') ? lock.slice('service-'.length) : undefined),
    start: async (group) => (calls.starts.push(group), 0),
  });
  const file = path.join(dir, 'watch.jsonl');
  const decisions = (existsSync(file) ? readFileSync(file, 'utf8') : '').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { action: string; why: string; run?: string; exit?: number; saw: { power: string } });
  return { ...calls, decisions };
}

describe('the leading watcher and orphaned runs', () => {
  it('waits until the node is confirmed failed, then re-runs the failover once, journaling why and how it ended', async () => {
    const r = await loop({ orphans: [[failoverOrphan], [failoverOrphan], []], health: [off('n1'), ok('n2')] });
    expect(r.failovers).toEqual(['n1']);
    expect(r.undos).toEqual([]);
    const about = r.decisions.filter((d) => d.run === failoverOrphan.runId);
    expect(about.map((d) => d.action)).toEqual(['orphan-wait', 'rerun', 'rerun']);
    expect(about[2]).toMatchObject({ exit: 0, why: `node-failover for n1 (finishing orphan ${failoverOrphan.runId}) ended with exit 0` });
    // What it saw of n1 is journaled with the decision.
    expect(about[1]!.saw.power).toBe('off');
    // The round that re-ran it did not start a second failover of n1.
    expect(r.decisions.filter((d) => d.action === 'failover')).toEqual([]);
  });

  it('a re-run that cannot finish it (refused before any change) undoes the orphan, then fails the node over anew', async () => {
    const r = await loop({ orphans: [[], [failoverOrphan], []], health: [off('n1')], failoverExit: [2, 0] });
    expect(r.failovers).toEqual(['n1', 'n1']);
    expect(r.undos).toEqual([failoverOrphan.runId]);
    expect(r.decisions.filter((d) => d.run).map((d) => `${d.action}${d.exit === undefined ? '' : `:${d.exit}`}`)).toEqual(['rerun', 'rerun:2', 'undo', 'undo:0', 'rerun', 'rerun:0']);
  });

  it('a re-run that meets the lock held (exit 5) is left for a later round, never undone under another run', async () => {
    const r = await loop({ orphans: [[], [failoverOrphan], []], health: [off('n1')], failoverExit: [5] });
    expect(r.undos).toEqual([]);
  });

  it('undoes a failover whose node is healthy again, and any run that is not a failover; re-runs a half-done undo', async () => {
    const r = await loop({ orphans: [[failoverOrphan, switchoverOrphan, undoOrphan], []], health: [ok('n1'), ok('n2')], rounds: 3 });
    expect(r.undos).toEqual([failoverOrphan.runId, switchoverOrphan.runId, undoOrphan.head.undoOf]);
    expect(r.failovers).toEqual([]);
  });

  it('a failover undone because its node came back: each group it was moving is started where it may run (its fence may have left it running nowhere); not after a failed undo, nor for other runs', async () => {
    const r = await loop({ orphans: [[failoverOrphan, switchoverOrphan], []], health: [ok('n1'), ok('n2')], rounds: 2 });
    expect(r.undos).toEqual([failoverOrphan.runId, switchoverOrphan.runId]);
    expect(r.starts).toEqual(['g1']);
    expect(r.decisions.filter((d) => d.action === 'start').map((d) => `${d.exit ?? ''} ${d.why}`)).toEqual([
      expect.stringMatching(/^ failover 20261127T100000Z-aaaaaa was undone and n1 is back; g1, which it was failing over, may run nowhere since/),
      expect.stringMatching(/^0 service-start of g1 \(after undoing failover 20261127T100000Z-aaaaaa\) ended with exit 0/),
    ]);
    const failedUndo = await loop({ orphans: [[failoverOrphan], []], health: [ok('n1')], rounds: 2, undoExit: 3 });
    expect(failedUndo.starts).toEqual([]);
  });

  it("the watcher's own start, left half done by a dead leader, is started again, not undone", async () => {
    const start: Orphan = { runId: '20261127T100500Z-eeeeee', head: head({ playbook: '/usr/share/baton/playbooks/service-start.yml', extraVars: { service: 'g1' }, argv: ['watch', '-i', 'inv.yml'], lock: 'service-g1' }) };
    expect(judgeOrphan(start, 'node-failover.yml', () => 'healthy')).toMatchObject({ action: 'rerun', group: 'g1' });
    const r = await loop({ orphans: [[start], []], health: [ok('n1')], rounds: 2 });
    expect(r.undos).toEqual([]);
    expect(r.starts).toEqual(['g1']);
    // A person's service-start cut short is undone as any other run of a person's.
    const persons: Orphan = { ...start, head: { ...start.head, argv: ['run', 'service-start.yml'] } };
    expect(judgeOrphan(persons, 'node-failover.yml', () => 'healthy')).toMatchObject({ action: 'undo' });
  });

  it('an orphaned undo of a failover whose node is back: once finished, the groups that failover was moving are started', async () => {
    const failover = head({ runId: '20261127T090000Z-dddddd', playbook: '/etc/baton/playbooks/node-failover.yml', extraVars: { failed: 'n1' } });
    const undoOfFailover: Orphan = { ...undoOrphan, undone: failover };
    const r = await loop({ orphans: [[undoOfFailover], []], health: [ok('n1'), ok('n2')], rounds: 2 });
    expect(r.undos).toEqual(['20261127T090000Z-dddddd']);
    expect(r.starts).toEqual(['g1']);
    // The node not (yet) healthy, or an undo of some other run: nothing started.
    expect(judgeOrphan(undoOfFailover, 'node-failover.yml', () => 'failed').startGroupsOf).toBeUndefined();
    expect((await loop({ orphans: [[undoOrphan], []], health: [ok('n1')], rounds: 2 })).starts).toEqual([]);
  });

  it('--dry-run and a watcher that is not the leader change nothing; dry-run says once what it would do', async () => {
    const dry = await loop({ orphans: [[switchoverOrphan]], health: [ok('n1')], dryRun: true });
    expect(dry.undos).toEqual([]);
    expect(dry.decisions.filter((d) => d.run).map((d) => d.action)).toEqual(['would-undo']);
    const follower = await loop({ orphans: [[switchoverOrphan]], health: [ok('n1')], leader: false });
    expect(follower.undos).toEqual([]);
    expect(follower.decisions.filter((d) => d.run)).toEqual([]);
  });
});

describe('a cool-down another watcher left', () => {
  it('counts from that failover, not from when this watcher read it: once it is over, the node is failed over', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-watch-cooldown-'));
    dirs.push(dir);
    const cooldownMs = 1000;
    // The leader before this one failed n1 over 900 ms before this watcher's first round.
    const before = Date.now() - 900;
    class Journaled extends DecisionLog {
      override async lastFailover(): Promise<number | undefined> {
        return before;
      }
    }
    const failovers: number[] = [];
    const said: string[] = [];
    await watch({
      settings: { intervalMs: 150, failures: 1, cooldownMs, dryRun: false },
      leadership: lead,
      log: new Journaled(dir),
      say: (l) => said.push(l),
      signal: new AbortController().signal,
      rounds: 4,
      observe: async () => [off('n1')],
      failover: async () => (failovers.push(Date.now()), 0),
    });
    expect(said.some((l) => /n1: cooldown: .*journaled in etcd/.test(l)), said.join('\n')).toBe(true);
    expect(failovers.length, said.join('\n')).toBe(1);
    expect(failovers[0]! - before).toBeGreaterThanOrEqual(cooldownMs);
  });
});

describe('finding orphans in etcd', () => {
  /** `rounds` of a leading watcher whose nodes are healthy, finding orphans in `etcd`: the runs it undid. */
  async function undosOfOrphans(etcd: MemEtcd, rounds: number, undo: (runId: string) => Promise<number>): Promise<string[]> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-watch-orphans-'));
    dirs.push(dir);
    const undos: string[] = [];
    await watch({
      settings: S,
      leadership: lead,
      log: new DecisionLog(dir),
      say: () => undefined,
      signal: new AbortController().signal,
      rounds,
      observe: async () => [ok('n1'), ok('n2')],
      orphans: new OrphanFinder(etcd as never),
      failover: async () => 0,
      undo: async (runId) => (undos.push(runId), undo(runId)),
    });
    return undos;
  }

  const RUN = '20261127T100000Z-bbbbbb';
  const runHead = { t: 'run', runId: RUN, mode: 'run', playbook: '/srv/service-stop.yml', extraVars: { service: 'g1' }, controller: 'laptop', pid: 7, argv: ['run'], at: '2026-11-27T10:00:00.000Z', lock: 'service-g1' };

  it('a run that ends between the scan of the journals and the look at its locks is no orphan (before, the watcher undid the finished run)', async () => {
    const etcd = new MemEtcd();
    etcd.put(journalLineKey(RUN, 0), JSON.stringify(runHead));
    etcd.put(journalLineKey(RUN, 1), JSON.stringify({ t: 'intent', seq: 1 }));
    etcd.put(lockKey('service-g1'), '{}', { lease: '123' });
    // The run ends (its end record, then its lock let go) right as the finder reads its last line.
    etcd.onGet = (key) => {
      if (key !== journalLineKey(RUN, 1)) return;
      etcd.put(journalLineKey(RUN, 2), JSON.stringify({ t: 'end', outcome: 'succeeded', at: '2026-11-27T10:00:05.000Z' }));
      etcd.kv.delete(lockKey('service-g1'));
    };
    expect(await new OrphanFinder(etcd as never).find()).toEqual([]);
  });

  it('an orphan whose undo has nothing to undo (exit 0, no journal written) is undone once, not every round', async () => {
    const etcd = new MemEtcd();
    etcd.put(journalLineKey(RUN, 0), JSON.stringify(runHead));
    etcd.put(journalLineKey(RUN, 1), JSON.stringify({ t: 'intent', seq: 1 }));
    // As `baton undo` with nothing to undo: exit 0, no undo journal in etcd.
    const undos = await undosOfOrphans(etcd, 4, async () => 0);
    expect(undos).toEqual([RUN]);
  });

  it('two orphans in one round: one that ended while the watcher acted on the other is not undone', async () => {
    const etcd = new MemEtcd();
    const OTHER = '20261127T100100Z-cccccc';
    for (const [id, lock] of [[RUN, 'service-g1'], [OTHER, 'service-g2']] as const) {
      etcd.put(journalLineKey(id, 0), JSON.stringify({ ...runHead, runId: id, lock }));
      etcd.put(journalLineKey(id, 1), JSON.stringify({ t: 'intent', seq: 1 }));
    }
    const undos = await undosOfOrphans(etcd, 1, async () => {
      // Meanwhile the other run, only slow (its controller paused), writes its end.
      etcd.put(journalLineKey(OTHER, 2), JSON.stringify({ t: 'end', outcome: 'succeeded', at: '2026-11-27T10:01:05.000Z' }));
      return 0;
    });
    expect(undos).toEqual([RUN]);
  });

  it('a run that died (no end, its lock let go by its lease) is an orphan', async () => {
    const etcd = new MemEtcd();
    etcd.put(journalLineKey(RUN, 0), JSON.stringify(runHead));
    etcd.put(journalLineKey(RUN, 1), JSON.stringify({ t: 'intent', seq: 1 }));
    expect((await new OrphanFinder(etcd as never).find()).map((o) => o.runId)).toEqual([RUN]);
  });
});
