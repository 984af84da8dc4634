/**
 * `baton watch`: a controller that turns confirmed node failures into node-failover runs
 * (docs/watch.md). Each round it observes every node of every service group; a node is
 * confirmed failed after N rounds in a row in which it could not be read, when its BMC also
 * says it is off or it cannot be reached at all (a node that answers SSH but fails its read is
 * sick, not dead: a person decides). Only the elected leader acts, and only after a cool-down
 * since its last failover of that node; the failover run then takes the run locks like any other
 * run, so a second leader (an election is never trusted alone) or an operator meets exit 5.
 *
 * The observing and the acting are handed in (facts/groups.ts and the engine's session, wired by
 * cli/watch.ts), so this file holds only the decisions, and tests drive it with fakes.
 */
import { appendFileSync, fsyncSync, mkdirSync, openSync, closeSync } from 'node:fs';
import path from 'node:path';
import type { ClusterStatus } from '../facts/groups.js';
import { acquireLock, LockHeldError, type HeldLock } from './lock.js';
import { controllerIdentity } from './locks/identity.js';
import type { EtcdClient } from '../transport/etcd.js';
import { judgeOrphan, lastSucceededFailover, type NodeVerdict, type Orphan } from './orphans.js';
import type { RunRecord } from './journal.js';

/** The playbook a watcher runs for a confirmed failed node unless told another (`--playbook`). */
export const FAILOVER_PLAYBOOK = 'node-failover.yml';

export interface WatchSettings {
  /** Between rounds (default 5 s). */
  intervalMs: number;
  /** Rounds in a row a node must fail before it is confirmed failed (default 3). */
  failures: number;
  /** After a failover of a node, no other for that node for this long (default 10 min). */
  cooldownMs: number;
  /** Say what would be done, do nothing. */
  dryRun: boolean;
}

export const DEFAULT_WATCH: WatchSettings = { intervalMs: 5000, failures: 3, cooldownMs: 600_000, dryRun: false };

/** What one round saw of one node, as the decision needs it. */
export interface NodeHealth {
  name: string;
  /** The node was read whole (its view). */
  read: boolean;
  /** A connection could be opened at all. */
  reachable: boolean;
  /** Not reachable, but its host answered (refused the connection, our login or our key): it is up. */
  answered?: boolean;
  power: 'on' | 'off' | 'unknown';
  error?: string;
  /** Groups seen on it (in part or whole), or that may be on it (it could not be read). */
  groups: string[];
  /**
   * Groups a failover of it could have to take over: those above, and those it may run that
   * are not running whole anywhere (a node its BMC says is off is read as holding nothing, yet
   * may have held them). Absent: not known (every confirmed failed node is failed over).
   */
  mayHold?: string[];
}

/** `allowed`: each group's nodes (its `nodes:`), to tell which groups a node may hold. */
export function healthOf(status: ClusterStatus, allowed?: ReadonlyMap<string, readonly string[]>): NodeHealth[] {
  return status.nodes.map((n) => {
    const groups = status.groups.filter((g) => g.nodes.includes(n.name) || g.unknownNodes.includes(n.name)).map((g) => g.name);
    const mayHold = allowed && status.groups.filter((g) => groups.includes(g.name) || (g.state !== 'running' && (allowed.get(g.name) ?? []).includes(n.name))).map((g) => g.name);
    return {
      name: n.name,
      read: Boolean(n.view),
      reachable: n.reachable,
      ...(n.answered ? { answered: true } : {}),
      power: n.power,
      ...(n.error ? { error: n.error } : {}),
      groups,
      ...(mayHold ? { mayHold } : {}),
    };
  });
}

export type WatchAction =
  | 'failover'
  | 'would-failover'
  | 'suspect'
  | 'sick'
  // Confirmed failed, but every group it may run is running whole elsewhere: nothing to take over.
  | 'idle'
  | 'cooldown'
  | 'not-leader'
  | 'recovered'
  // A run whose controller died mid-run (orphans.ts): re-run, undone, or not decided yet.
  | 'rerun'
  | 'undo'
  | 'orphan-wait'
  | 'would-rerun'
  | 'would-undo'
  // After undoing an orphaned failover of a node that came back: its groups started where they may run.
  | 'start';

/** One decision, as logged and journaled: what was seen, what was done, and why. */
export interface WatchDecision {
  at: string;
  controller: string;
  node: string;
  action: WatchAction;
  why: string;
  /** Rounds in a row this node failed. */
  failures: number;
  saw: { reachable: boolean; power: string; error?: string; groups: string[] };
  /** The groups this watcher last saw on the node while it could be read (what a failover takes over). */
  lastSeen?: string[];
  /** The orphaned run a rerun/undo decision is about. */
  run?: string;
  /** On the record written when an action ended: its exit code. */
  exit?: number;
  /**
   * On a `rerun` that ended: what was run again. Only a node-failover's counts for the cool-down;
   * a re-run undo of a failover is the opposite of one.
   */
  ran?: 'node-failover' | 'undo';
}

/** The failure counts and cool-downs across rounds: the decision without any I/O. */
export class FailureTracker {
  private readonly streak = new Map<string, number>();
  /** Rounds in a row the node looked dead (BMC off, or nothing answered): what confirms it failed. */
  private readonly deadStreak = new Map<string, number>();
  private readonly lastFailover = new Map<string, number>();
  private readonly lastSeen = new Map<string, string[]>();
  private readonly dead = new Map<string, boolean>();
  private readonly saw = new Map<string, WatchDecision['saw']>();

  constructor(private readonly s: WatchSettings) {}

  /**
   * Judge one round. `leader`: may this controller act now. Returns the decisions worth saying
   * (nothing for a healthy node that was healthy before).
   */
  judge(health: NodeHealth[], leader: boolean, now: number, controller: string): WatchDecision[] {
    const out: WatchDecision[] = [];
    for (const h of health) {
      const before = this.streak.get(h.name) ?? 0;
      const saw = { reachable: h.reachable, power: h.power, ...(h.error ? { error: h.error } : {}), groups: h.groups };
      this.saw.set(h.name, saw);
      const lastSeen = this.lastSeen.get(h.name);
      const decide = (action: WatchAction, why: string, failures: number) =>
        out.push({ at: new Date(now).toISOString(), controller, node: h.name, action, why, failures, saw, ...(lastSeen ? { lastSeen } : {}) });
      // Dead: its BMC says off, or nothing answers at all. A node whose sshd refuses us (down,
      // our key or login refused, its host key changed) is up and may be serving: never fenced
      // for that alone.
      const silent = !h.reachable && !h.answered;
      const looksDead = !h.read && (h.power === 'off' || silent);
      this.dead.set(h.name, looksDead);
      const deadRounds = looksDead ? (this.deadStreak.get(h.name) ?? 0) + 1 : 0;
      this.deadStreak.set(h.name, deadRounds);
      if (h.read) {
        this.lastSeen.set(h.name, h.groups);
        this.streak.set(h.name, 0);
        if (before > 0) decide('recovered', `${h.name} was read again after ${before} failed round(s)`, 0);
        continue;
      }
      const n = before + 1;
      this.streak.set(h.name, n);
      if (n < this.s.failures) {
        decide('suspect', `${h.name} could not be read (${h.error ?? 'no answer'}); ${n} of ${this.s.failures} rounds before it counts as failed`, n);
        continue;
      }
      const dead = h.power === 'off' ? 'its BMC says it is powered off' : silent ? 'it cannot be reached at all' : undefined;
      if (!dead) {
        decide('sick', `${h.name} failed ${n} rounds in a row but answers (${h.error ?? 'its read failed'}) and its BMC does not say it is off: not failing it over; a person should look`, n);
        continue;
      }
      if (deadRounds < this.s.failures) {
        // Rounds it answered (sick) do not count towards dead: a node whose sshd refused us for a
        // while and then dropped one connection is not confirmed failed by that one round.
        decide('suspect', `${h.name} looks failed (${dead}) for ${deadRounds} of ${this.s.failures} rounds in a row; before that it answered`, n);
        continue;
      }
      if (h.mayHold !== undefined && h.mayHold.length === 0) {
        // A failover would only fence it: a node being brought back (powered on a moment after
        // this round read its BMC) would be powered off again for nothing.
        decide('idle', `${h.name} is confirmed failed (${dead}), but every group it may run is running whole elsewhere: nothing to take over, not fencing it`, n);
        continue;
      }
      const last = this.lastFailover.get(h.name);
      if (last !== undefined && now - last < this.s.cooldownMs) {
        decide('cooldown', `${h.name} is confirmed failed (${dead}), but it was failed over ${Math.round((now - last) / 1000)} s ago; the cool-down is ${this.s.cooldownMs / 1000} s`, n);
        continue;
      }
      if (!leader) {
        decide('not-leader', `${h.name} is confirmed failed (${n} rounds, ${dead}); another controller is the leader and acts`, n);
        continue;
      }
      if (this.s.dryRun) {
        decide('would-failover', `${h.name} is confirmed failed (${n} rounds, ${dead}): would run node-failover -e failed=${h.name} (--dry-run)`, n);
        this.lastFailover.set(h.name, now);
        continue;
      }
      decide('failover', `${h.name} is confirmed failed (${n} rounds, ${dead}): running node-failover -e failed=${h.name}`, n);
      this.lastFailover.set(h.name, now);
    }
    return out;
  }

  /** A failover ran (or was tried): the node starts counting again from zero. */
  acted(node: string): void {
    this.streak.set(node, 0);
    this.deadStreak.set(node, 0);
  }

  /**
   * A failover this watcher ran ended. One that did not succeed holds no cool-down: the node is
   * still failed and its groups may run nowhere; it is tried again once confirmed anew (N more
   * rounds), as another leader would at once.
   */
  failoverEnded(node: string, exit: number): void {
    if (exit !== 0) this.noCooldown(node);
  }

  /** No failover of `node` completed (or whether one did cannot be told): nothing to cool down from. */
  noCooldown(node: string): void {
    this.lastFailover.delete(node);
  }

  /** A failover of `node` started outside judge() (an orphan's re-run, another watcher's): the cool-down counts from `at`. */
  startedFailover(node: string, at: number): void {
    this.lastFailover.set(node, at);
  }

  /** What the last round saw of a node (absent: never observed). */
  lastSaw(node: string): WatchDecision['saw'] | undefined {
    return this.saw.get(node);
  }

  /** Confirmed failed (as judge() would say), read whole in the last round, or neither yet. */
  verdict(node: string): NodeVerdict {
    const streak = this.streak.get(node);
    if (streak === undefined) return 'unknown';
    if (streak === 0) return this.lastSeen.has(node) ? 'healthy' : 'unknown';
    return (this.deadStreak.get(node) ?? 0) >= this.s.failures ? 'failed' : 'unknown';
  }
}

/** Who acts: one watcher at a time. */
export interface Leadership {
  readonly label: string;
  /** Campaign or renew; true while this watcher leads. */
  lead(): Promise<boolean>;
  /** Give up leadership (at exit). */
  resign(): Promise<void>;
}

/** The embedded default: a single watcher per controller, kept single by a lock file. */
export class SingleWatcher implements Leadership {
  readonly label = 'embedded (a single watcher)';
  private lock: HeldLock | undefined;
  constructor(private readonly id: string) {}
  async lead(): Promise<boolean> {
    // Throws LockHeldError (exit 5) naming the other watcher of this state dir.
    this.lock ??= acquireLock('baton-watch', this.id);
    return true;
  }
  async resign(): Promise<void> {
    this.lock?.release();
    this.lock = undefined;
  }
}

export const LEADER_KEY = 'baton/watch/leader';

/**
 * Leader election in etcd: the leader key, created only if absent, attached to this watcher's
 * lease. Losing the lease (a paused watcher) loses the key; the next round campaigns again.
 */
export class EtcdLeadership implements Leadership {
  readonly label: string;
  private lease: string | undefined;
  constructor(
    private readonly etcd: EtcdClient,
    private readonly id: string,
    private readonly leaseS: number,
  ) {
    this.label = `etcd (${etcd.endpoints.join(', ')})`;
  }

  private timer: NodeJS.Timeout | undefined;

  async lead(): Promise<boolean> {
    if (this.lease && (await this.etcd.leaseKeepAlive(this.lease)) <= 0) this.lease = undefined;
    if (!this.lease) {
      this.lease = await this.etcd.leaseGrant(this.leaseS);
      // Renewed between rounds too: a round (a failover run above all) may last longer than the lease.
      clearInterval(this.timer);
      const lease = this.lease;
      this.timer = setInterval(() => void this.etcd.leaseKeepAlive(lease, Math.max(1000, (this.leaseS * 1000) / 3)).catch(() => undefined), (this.leaseS * 1000) / 3);
      this.timer.unref();
    }
    const me = controllerIdentity();
    const value = JSON.stringify({ watcher: this.id, controller: me.name, pid: process.pid, since: new Date().toISOString() });
    const r = await this.etcd.txn(
      [{ key: LEADER_KEY, target: 'CREATE', result: 'EQUAL', value: 0 }],
      [{ put: { key: LEADER_KEY, value, lease: this.lease } }],
      [{ range: { key: LEADER_KEY } }],
    );
    return r.succeeded || r.responses[0]?.[0]?.lease === this.lease;
  }

  /** The leader now, for the log. */
  async leader(): Promise<string | undefined> {
    return (await this.etcd.get(LEADER_KEY))?.value;
  }

  async resign(): Promise<void> {
    clearInterval(this.timer);
    if (this.lease) await this.etcd.leaseRevoke(this.lease).catch(() => undefined);
    this.lease = undefined;
  }
}

/** Completed failovers, by node, in etcd: `baton/watch/failovers/NODE/AT-CONTROLLER-PID`. */
const FAILOVERS_PREFIX = 'baton/watch/failovers/';

/** A failover, or an orphan's re-run node-failover, that ended with exit 0. */
const completedFailover = (d: WatchDecision): boolean => d.exit === 0 && (d.action === 'failover' || (d.action === 'rerun' && d.ran === 'node-failover'));

/** Where decisions go: a JSON-lines file in the state dir (fsync'd), and etcd when there is one. */
/** Decisions that change nothing (suspect, not-leader, cool-down…): kept in etcd a day, not for ever. */
const PASSING: ReadonlySet<WatchAction> = new Set<WatchAction>(['suspect', 'sick', 'idle', 'cooldown', 'not-leader', 'recovered']);
const PASSING_TTL_S = 26 * 3600;
const PASSING_LEASE_ROTATE_MS = 3600_000;

export class DecisionLog {
  readonly file: string;
  /** The lease the passing decisions are written under, and when it was granted (one per hour). */
  private passing: { id: string; at: number } | undefined;
  constructor(
    dir: string,
    private readonly etcd?: EtcdClient,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = path.join(dir, 'watch.jsonl');
  }

  async write(d: WatchDecision): Promise<void> {
    const line = JSON.stringify(d);
    appendFileSync(this.file, `${line}\n`, { mode: 0o600 });
    const fd = openSync(this.file, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // Every controller's decisions side by side: who saw what, who acted. Each watcher writes one
    // per failing node per round: those that changed nothing go under a lease that ends a day
    // later, or a node down for weeks fills etcd's quota, and then no run can take a lock.
    const lease = this.etcd && PASSING.has(d.action) ? await this.passingLease().catch(() => undefined) : undefined;
    await this.etcd?.put(`baton/watch/decisions/${d.at}-${d.controller}-${d.node}-${d.action}-${process.pid}`, line, lease ? { lease } : {}).catch(() => undefined);
    // A completed failover also under its node, where the cool-down is read: every watcher writes
    // a decision per node per round (suspect, not-leader…), and reading all of them to find the
    // last failover grew with the days a node stayed down, until the read timed out.
    if (completedFailover(d)) await this.etcd?.put(`${FAILOVERS_PREFIX}${d.node}/${d.at}-${d.controller}-${process.pid}`, line).catch(() => undefined);
  }

  private async passingLease(): Promise<string> {
    const now = Date.now();
    if (!this.passing || now - this.passing.at > PASSING_LEASE_ROTATE_MS) this.passing = { id: await this.etcd!.leaseGrant(PASSING_TTL_S), at: now };
    return this.passing.id;
  }

  /**
   * When any watcher last completed a failover of `node`, as etcd knows it: its decision with exit
   * 0, or the run's own journal ended succeeded (a watcher killed right after its run ended, before
   * it said so). A new leader keeps the cool-down its predecessor's failover started; without the
   * journal, it failed the node over again, and its fence powered off a node being brought back.
   * A failover decided and never ended (its watcher killed) does not count: either it never
   * reached its first change (nothing journaled; this watcher fails the node over), or its run is
   * journaled in etcd and is finished
   * or undone as an orphan once its lease expired (orphans.ts); a run still alive holds its locks,
   * and a second one meets exit 5.
   */
  async lastFailover(node: string, playbook: string, cooldownMs: number): Promise<number | undefined> {
    if (!this.etcd) return undefined;
    // A watcher killed right after its failover ended never said so: the run's journal did.
    // (Runs that started before the cool-down, give or take the longest failover, cannot matter.)
    const ran = await lastSucceededFailover(this.etcd, playbook, node, Date.now() - cooldownMs - 10 * 60_000);
    const kvs = await this.etcd.range(`${FAILOVERS_PREFIX}${node}/`, { prefix: true });
    let last: number | undefined;
    for (const kv of kvs) {
      try {
        const d = JSON.parse(kv.value) as WatchDecision;
        if (d.node === node && completedFailover(d)) last = Math.max(last ?? 0, Date.parse(d.at));
      } catch {
        // not a decision
      }
    }
    return ran === undefined ? last : Math.max(last ?? 0, ran);
  }
}

export interface WatchLoop {
  settings: WatchSettings;
  leadership: Leadership;
  observe(): Promise<NodeHealth[]>;
  /** Run node-failover for the node (`held`: the groups last seen on it); the run's exit code. */
  failover(node: string, why: string, held: string[]): Promise<number>;
  /** The orphaned runs in etcd (absent: embedded, where a single watcher's own runs are a person's to finish). */
  orphans?: {
    find(): Promise<Orphan[]>;
    /**
     * The watcher dealt with this orphan (its undo ended 0): not looked at again by this watcher.
     * An undo with nothing to undo writes no journal, so etcd alone would offer it every round.
     */
    settle?(runId: string): void;
    /** Still an orphan (locks free, no end) just before it is acted on. */
    stillOrphaned?(o: Orphan): Promise<boolean>;
  };
  /** Undo a run, as `baton undo RUN --yes`; the exit code. */
  undo?(runId: string): Promise<number>;
  /** The failover playbook's name (default node-failover.yml): an orphan running it is a failover. */
  playbook?: string;
  /** Start a service group where it may run, as `baton run service-start.yml -e service=G --yes`; the exit code. */
  start?(group: string): Promise<number>;
  /** The service group whose lock this is (a failover's locks: `fence-N` and one per group it moves). */
  groupOfLock?(lock: string): string | undefined;
  log: DecisionLog;
  say(line: string): void;
  signal: AbortSignal;
  /** Stop after this many rounds (tests); default: until the signal. */
  rounds?: number;
}

/** An action's exit code, also when it threw (a BatonError carries its own). */
async function exitOf(w: WatchLoop, what: string, act: () => Promise<number>): Promise<number> {
  // A leader busy with a run stays the leader: its key is renewed while the run lasts (a run
  // outlasts the leadership lease, and another watcher taking over meanwhile would start a second
  // failover of the same node, to meet its lock). A leader killed mid-run stops renewing and
  // loses the key with its lease, as before.
  let renewing = false;
  const keep = setInterval(
    () => {
      if (renewing) return;
      renewing = true;
      void w.leadership
        .lead()
        .catch(() => false)
        .finally(() => (renewing = false));
    },
    Math.max(250, Math.floor(w.settings.intervalMs / 2)),
  );
  try {
    return await act().catch((e: Error & { exitCode?: number }) => {
      w.say(`watch: ${what} stopped: ${e.message}`);
      return typeof e.exitCode === 'number' ? e.exitCode : 3;
    });
  } finally {
    clearInterval(keep);
  }
}

const LOCKED = 5;

/**
 * The leader's turn at orphaned runs (orphans.ts), before this round's failovers: the nodes whose
 * failover it finished or undid are returned, so this round does not start another for them.
 */
async function settleOrphans(w: WatchLoop, tracker: FailureTracker, controller: string, told: Set<string>): Promise<Set<string>> {
  const handled = new Set<string>();
  if (!w.orphans) return handled;
  let orphans: Orphan[];
  try {
    orphans = await w.orphans.find();
  } catch (e) {
    w.say(`watch: cannot look for runs left by a dead controller: ${(e as Error).message}; looking again next round`);
    return handled;
  }
  const playbook = w.playbook ?? FAILOVER_PLAYBOOK;
  for (const o of orphans) {
    // Asked to stop (systemd's stop, a Ctrl-C): the run in flight went on to its end; start no other.
    if (w.signal.aborted) break;
    const j = judgeOrphan(o, playbook, (n) => tracker.verdict(n));
    // What was seen of the failed node of an orphaned failover; of no node for another run.
    const saw = (j.node && tracker.lastSaw(j.node)) || { reachable: false, power: 'unknown', groups: [] as string[] };
    const base = { controller, node: j.node ?? '-', failures: 0, saw, run: o.runId };
    const write = async (action: WatchAction, why: string, exit?: number, ran?: WatchDecision['ran']) => {
      const d: WatchDecision = { ...base, at: new Date().toISOString(), action, why, ...(exit !== undefined ? { exit } : {}), ...(ran ? { ran } : {}) };
      w.say(`watch: ${d.node}: ${action}: ${why}`);
      await w.log.write(d);
    };
    if (j.action === 'wait' || w.settings.dryRun) {
      // Said once per orphan and verdict: it is looked at every round.
      const key = `${o.runId}:${j.action}`;
      if (!told.has(key)) await write(j.action === 'wait' ? 'orphan-wait' : j.action === 'rerun' ? 'would-rerun' : 'would-undo', j.why);
      told.add(key);
      continue;
    }
    // Acting on the orphans before it took time: one may have ended (or been taken over) since the scan.
    if (w.orphans.stillOrphaned && !(await w.orphans.stillOrphaned(o).catch(() => false))) continue;
    if (j.node) handled.add(j.node);
    await write(j.action, j.why);
    let code: number;
    if (j.action === 'rerun' && o.head.mode === 'undo') {
      code = await exitOf(w, `the undo of ${o.head.undoOf}`, () => w.undo!(o.head.undoOf!));
      await write('rerun', `undo of run ${o.head.undoOf} (finishing orphan ${o.runId}) ended with exit ${code}`, code, 'undo');
      if (code === 0) w.orphans.settle?.(o.runId);
      if (code === 0 && j.startGroupsOf && j.node && w.start) await startGroupsOf(w, o.head.undoOf!, j.startGroupsOf, j.node, write);
      continue;
    }
    if (j.action === 'rerun' && j.group) {
      if (!w.start) continue;
      code = await exitOf(w, `service-start of ${j.group}`, () => w.start!(j.group!));
      await write('start', `service-start of ${j.group} (finishing orphan ${o.runId}) ended with exit ${code}`, code);
      continue;
    }
    if (j.action === 'undo') {
      code = await exitOf(w, `the undo of ${o.runId}`, () => w.undo!(o.runId));
      await write('undo', `undo of orphan ${o.runId} ended with exit ${code}`, code);
      if (code === 0) w.orphans.settle?.(o.runId);
      // A failover undone because its node came back: if the orphan's fence had powered the node
      // off, what ran there is gone and the undo cannot bring it back (powering a node on starts
      // no service). Each group the orphan was moving is started where it may run; one still
      // running is left as it is (service-start: nothing to do).
      if (code === 0 && j.startGroupsOf && j.node && w.start) await startGroupsOf(w, o.runId, j.startGroupsOf, j.node, write);
      continue;
    }
    const node = j.node!;
    tracker.startedFailover(node, Date.now());
    tracker.acted(node);
    code = await exitOf(w, `node-failover for ${node}`, () => w.failover(node, j.why, []));
    await write('rerun', `node-failover for ${node} (finishing orphan ${o.runId}) ended with exit ${code}`, code, 'node-failover');
    if (code === 0) continue;
    if (code === LOCKED || w.signal.aborted) {
      tracker.failoverEnded(node, code);
      continue;
    }
    // The re-run could not finish it (e.g. placement refuses a group the orphan left in part on
    // the survivor, before any change): put back what the orphan did, then fail over anew.
    await write('undo', `the re-run could not finish orphan ${o.runId} (exit ${code}): undoing it, then failing ${node} over anew`);
    code = await exitOf(w, `the undo of ${o.runId}`, () => w.undo!(o.runId));
    await write('undo', `undo of orphan ${o.runId} ended with exit ${code}`, code);
    if (code !== 0 || w.signal.aborted) {
      tracker.noCooldown(node);
      continue;
    }
    await write('rerun', `orphan ${o.runId} was undone and ${node} is still confirmed failed: running node-failover -e failed=${node} anew`);
    code = await exitOf(w, `node-failover for ${node}`, () => w.failover(node, j.why, []));
    await write('rerun', `node-failover for ${node} (after undoing orphan ${o.runId}) ended with exit ${code}`, code, 'node-failover');
    tracker.failoverEnded(node, code);
  }
  return handled;
}

/** Start each group whose lock the failover `runId` (first record `failover`) held. */
async function startGroupsOf(w: WatchLoop, runId: string, failover: RunRecord, node: string, write: (action: WatchAction, why: string, exit?: number) => Promise<void>): Promise<void> {
  const groups = (failover.lock ?? '').split(',').flatMap((l) => w.groupOfLock?.(l) ?? []);
  for (const g of groups) {
    await write('start', `failover ${runId} was undone and ${node} is back; ${g}, which it was failing over, may run nowhere since (a fenced node comes back with nothing running): starting it where it may run`);
    const code = await exitOf(w, `service-start of ${g}`, () => w.start!(g));
    await write('start', `service-start of ${g} (after undoing failover ${runId}) ended with exit ${code}`, code);
  }
}

/** The watch loop: observe, decide, act; until the signal fires. */
export async function watch(w: WatchLoop): Promise<void> {
  const tracker = new FailureTracker(w.settings);
  const controller = controllerIdentity().name;
  const told = new Set<string>();
  let wasLeader: boolean | undefined;
  for (let round = 0; !w.signal.aborted && (w.rounds === undefined || round < w.rounds); round++) {
    const started = Date.now();
    let leader = false;
    try {
      leader = await w.leadership.lead();
    } catch (e) {
      // Another watcher on this state dir: this one is the second, and leaves (exit 5).
      if (e instanceof LockHeldError) throw e;
      // Cannot tell: not the leader. Acting without knowing is what must never happen.
      w.say(`watch: cannot campaign for leadership in ${w.leadership.label}: ${(e as Error).message}; not acting this round`);
    }
    if (leader !== wasLeader) w.say(`watch: ${leader ? 'this watcher is the leader' : 'another watcher is the leader'} (${w.leadership.label})`);
    wasLeader = leader;
    let health: NodeHealth[] = [];
    try {
      health = await w.observe();
    } catch (e) {
      w.say(`watch: observing the cluster failed: ${(e as Error).message}`);
    }
    const judged = tracker.judge(health, leader, Date.now(), controller);
    const handled = leader ? await settleOrphans(w, tracker, controller, told) : new Set<string>();
    for (let d of judged) {
      if (d.action === 'failover' && handled.has(d.node)) {
        d = { ...d, action: 'cooldown', why: `${d.node} is confirmed failed, and this round already finished or undid the failover a dead controller left of it` };
      } else if (d.action === 'failover') {
        // Another watcher (a leader before this one) may have failed it over already.
        let last: number | undefined;
        try {
          last = await w.log.lastFailover(d.node, w.playbook ?? FAILOVER_PLAYBOOK, w.settings.cooldownMs);
        } catch (e) {
          // Whether a watcher failed it over a moment ago cannot be told: failing it over again
          // could fence a node being brought back. Decided again next round.
          d = { ...d, action: 'cooldown', why: `${d.node} is confirmed failed, but whether a watcher failed it over within the cool-down cannot be read from etcd (${(e as Error).message}): not acting this round` };
          tracker.noCooldown(d.node);
        }
        if (d.action === 'failover' && last !== undefined && Date.now() - last < w.settings.cooldownMs) {
          // The cool-down runs from that failover, not from this round (judge() counted from now).
          tracker.startedFailover(d.node, last);
          d = { ...d, action: 'cooldown', why: `${d.node} is confirmed failed, but a watcher failed it over ${Math.round((Date.now() - last) / 1000)} s ago (journaled in etcd); the cool-down is ${w.settings.cooldownMs / 1000} s` };
        }
      }
      if (d.action === 'failover' && w.signal.aborted) {
        // Asked to stop while an earlier run of this round went on to its end: start no other.
        w.say(`watch: ${d.node}: not failing it over: the watcher is stopping (the next leader decides)`);
        continue;
      }
      w.say(`watch: ${d.node}: ${d.action}: ${d.why}`);
      await w.log.write(d);
      if (d.action !== 'failover') continue;
      tracker.acted(d.node);
      const node = d.node;
      const code = await exitOf(w, `node-failover for ${node}`, () => w.failover(node, d.why, d.lastSeen ?? []));
      const result: WatchDecision = { ...d, at: new Date().toISOString(), action: 'failover', why: `node-failover for ${node} ended with exit ${code}`, exit: code };
      w.say(`watch: ${node}: ${result.why}`);
      await w.log.write(result);
      tracker.failoverEnded(node, code);
    }
    const wait = w.settings.intervalMs - (Date.now() - started);
    if (wait > 0 && !w.signal.aborted && (w.rounds === undefined || round + 1 < w.rounds)) {
      await new Promise<void>((r) => {
        const onAbort = () => (clearTimeout(t), r());
        const t = setTimeout(() => (w.signal.removeEventListener('abort', onAbort), r()), wait);
        w.signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  }
  await w.leadership.resign();
}
