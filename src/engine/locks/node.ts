/**
 * The lock where the nodes are: an entry named after each lock on every reachable node the run
 * touches, so two controllers (two laptops, two state dirs) starting runs on the same nodes
 * exclude each other with no service beyond the nodes' own sshd.
 *
 * - Taken in a fixed order (sorted host names), one remote command per node for all of the
 *   run's lock names, all or none: the first node where another run holds a name stops the run
 *   (exit 5, naming holder and node) and gives back what it had taken.
 * - Stale entries are taken over: a lease that ran out (judged on the node's own clock, the
 *   entry's mtime against the node's now, so controllers' clocks never matter), or, at once, a
 *   holder on this same controller whose pid is gone (only this machine can judge its pids).
 * - Renewed every lease/3 while the run lasts. A node that cannot be reached during renewal
 *   does not lose the lock by itself: its entry there simply ages out, while the entries on the
 *   other nodes still keep every other run out, since a run must take the lock on every node it
 *   touches. The lock is lost only when renewal finds another run's entry on a node (twice, a
 *   moment apart, so a contender that is merely backing out does not count).
 * - Released at the end, entry by entry, only where the entry is still this run's.
 */
import { createHash } from 'node:crypto';
import type { Inventory } from '../../inventory/model.js';
import type { Transport } from '../../transport/transport.js';
import { BatonError, ExitCode } from '../../util/errors.js';
import type { TransportSource } from '../context.js';
import { LockHeldError } from '../lock.js';
import { controllerIdentity, pidAlive, type ControllerIdentity } from './identity.js';
import { guardedPool } from './guard.js';
import { holderOf, parseHolder, type LockHolder } from './holder.js';
import { nodeLockArgv, parseNodeLockOutput, type EntryArg, type EntryStatus, type NodeLockOp } from './node-script.js';
import { leaseSeconds, type HeldLocks, type LockRequest, type LockService } from './service.js';

/** Where entries live on a node: tmpfs, so a rebooted node holds no stale lock. */
export const DEFAULT_NODE_LOCK_DIR = '/run/baton/locks';
/** Inventory var naming another directory (a node whose SSH user cannot write /run, a test). */
export const LOCK_DIR_VAR = 'baton_lock_dir';

/** How long one lock command may take on a node (it waits up to 10 s for the node's guard). */
const COMMAND_TIMEOUT_MS = 20_000;

/** What a controller writes into its entries (one line of JSON). */
export type NodeHolder = LockHolder;

/** A file-system-safe entry name for a lock name: readable part plus a hash of the whole name. */
export function entryName(lockName: string): string {
  let slug = lockName.replace(/[^A-Za-z0-9._-]+/g, '_').slice(-60);
  if (!slug || slug.startsWith('.')) slug = `_${slug}`;
  const hash = createHash('sha256').update(lockName).digest('hex').slice(0, 12);
  return `${slug}.${hash}`;
}

export function lockDirFor(host: string, inventory?: Inventory): string {
  const v = inventory?.hosts.get(host)?.vars[LOCK_DIR_VAR];
  return typeof v === 'string' && v ? v : DEFAULT_NODE_LOCK_DIR;
}

/** The lock was taken over by another run while this one still ran. */
export class LockLostError extends BatonError {
  constructor(
    message: string,
    readonly node: string,
    readonly holder: Partial<NodeHolder>,
  ) {
    super(message, ExitCode.FAILED_NOT_ROLLED_BACK);
    this.name = 'LockLostError';
  }
}

interface LockedNode {
  host: string;
  dir: string;
}

interface Ctx {
  pool: TransportSource;
  runId: string;
  holderJson: string;
  leaseS: number;
  /** entry name → lock name */
  names: Map<string, string>;
  me: ControllerIdentity;
}

async function runOp(ctx: Ctx, t: Transport, node: LockedNode, op: NodeLockOp, entries: EntryArg[], timeoutMs = COMMAND_TIMEOUT_MS): Promise<EntryStatus[]> {
  const argv = nodeLockArgv(op, node.dir, ctx.runId, ctx.holderJson, ctx.leaseS, entries);
  const r = await t.exec(argv, { timeoutMs });
  if (r.code !== 0) {
    const why = r.timedOut ? `timed out after ${timeoutMs / 1000} s` : `exited ${r.code ?? r.signal}`;
    throw new BatonError(
      `cannot ${op} the run lock on ${node.host}: the lock command (sh -c … baton-lock ${op} ${node.dir} …) ${why}: ${r.stderr.trim() || r.stdout.trim() || 'no output'}`,
      ExitCode.UNREACHABLE,
    );
  }
  return parseNodeLockOutput(r.stdout);
}

function heldError(ctx: Ctx, host: string, s: EntryStatus): LockHeldError {
  const h = parseHolder(s.holder);
  return new LockHeldError({
    name: ctx.names.get(s.entry) ?? s.entry,
    runId: h.runId ?? 'unknown',
    controller: h.controller ?? 'an unknown controller',
    pid: h.pid ?? 0,
    since: h.since ?? 'unknown',
    node: host,
    ageS: s.ageS,
    leaseS: s.leaseS,
  });
}

/** Another run's entry that this controller may take over at once: its own run, pid gone. */
function deadHereOf(ctx: Ctx, s: EntryStatus): string | undefined {
  const h = parseHolder(s.holder);
  const mine = h.controller === ctx.me.name && h.machine === ctx.me.machine;
  if (!mine || typeof h.pid !== 'number' || h.pid === process.pid || pidAlive(h.pid) || !h.runId) return undefined;
  return h.runId;
}

/** Take every entry on one node, taking over those whose holder is dead here. Returns TOOKOVER statuses. */
async function takeOn(ctx: Ctx, t: Transport, node: LockedNode, entries: string[]): Promise<EntryStatus[]> {
  const attempt = async (from: Map<string, string>) => {
    const statuses = await runOp(ctx, t, node, 'acquire', entries.map((entry) => ({ entry, from: from.get(entry) ?? '' })));
    const held = statuses.filter((s) => s.status === 'HELD');
    const missing = entries.filter((e) => !statuses.some((s) => s.entry === e));
    if (!held.length && missing.length) {
      throw new BatonError(`the run lock on ${node.host} answered for ${statuses.length} of ${entries.length} entries (missing ${missing.join(', ')}): is sh on that node a POSIX shell?`, ExitCode.UNREACHABLE);
    }
    return { held, tookOver: statuses.filter((s) => s.status === 'TOOKOVER') };
  };
  const first = await attempt(new Map());
  if (!first.held.length) return first.tookOver;
  // Entries of this controller's own dead runs may be taken over at once; any other holder stops us.
  const from = new Map<string, string>();
  for (const s of first.held) {
    const dead = deadHereOf(ctx, s);
    if (!dead) throw heldError(ctx, node.host, s);
    from.set(s.entry, dead);
  }
  const second = await attempt(from);
  if (second.held.length) throw heldError(ctx, node.host, second.held[0]!);
  return second.tookOver;
}

class NodeHeldLocks implements HeldLocks {
  readonly notes: string[] = [];
  private readonly lostCtl = new AbortController();
  readonly lost = this.lostCtl.signal;
  private lastConfirmed: number;
  private round: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private released = false;
  private readonly unrenewed = new Set<string>();

  constructor(
    private readonly ctx: Ctx,
    readonly names: string[],
    private readonly nodes: LockedNode[],
    private readonly note: (message: string) => void,
    /** When the first entry was written (its lease runs from then). */
    firstWrite = performance.now(),
  ) {
    this.lastConfirmed = firstWrite;
  }

  private get entries(): EntryArg[] {
    return [...this.ctx.names.keys()].map((entry) => ({ entry, from: '' }));
  }

  start(): void {
    if (this.nodes.length === 0) return;
    this.timer = setInterval(() => void this.renew(), (this.ctx.leaseS * 1000) / 3);
    // Renewal must never keep a finished controller alive.
    this.timer.unref();
  }

  /** One renewal round on every node; rounds never overlap. */
  renew(): Promise<void> {
    this.round ??= this.renewRound().finally(() => (this.round = undefined));
    return this.round;
  }

  private async renewOn(node: LockedNode): Promise<EntryStatus[] | undefined> {
    try {
      const t = await this.ctx.pool.get(node.host);
      // As long as a round may take (rounds never overlap), but never so short that a busy
      // node's slow answer reads as unreachable.
      const out = await runOp(this.ctx, t, node, 'renew', this.entries, Math.max(5000, (this.ctx.leaseS * 1000) / 3));
      this.unrenewed.delete(node.host);
      return out;
    } catch (e) {
      // Unreachable is not lost: the entry there ages out, the other nodes' entries still hold.
      if (!this.unrenewed.has(node.host)) {
        this.unrenewed.add(node.host);
        this.note(
          `note: ${(e as Error).message}; the run goes on: the lock entry on ${node.host} runs out after ${this.ctx.leaseS} s without renewal, the other nodes' entries still hold the lock`,
        );
      }
      return undefined;
    }
  }

  private async renewRound(): Promise<void> {
    if (this.released || this.lost.aborted) return;
    const started = performance.now();
    // Our lease ran out before this round: another run may have taken the entries over, changed
    // the nodes and given them back. An entry found gone then is not ours to take again.
    const expired = started - this.lastConfirmed > this.ctx.leaseS * 1000;
    const results = await Promise.all(this.nodes.map((n) => this.renewOn(n)));
    if (expired) {
      const i = results.findIndex((r) => r?.some((s) => s.status === 'RETAKEN'));
      if (i >= 0) return this.loseGone(this.nodes[i]!.host, results[i]!.find((s) => s.status === 'RETAKEN')!.entry, started - this.lastConfirmed);
    }
    for (let i = 0; i < this.nodes.length; i++) {
      if (!results[i]?.some((s) => s.status === 'HELD')) continue;
      // A contender that found our entry stale here backs out as soon as it meets a node where
      // we still hold it: look again a moment later before calling the lock lost.
      await new Promise((r) => setTimeout(r, Math.min(1000, (this.ctx.leaseS * 1000) / 6)));
      const again = await this.renewOn(this.nodes[i]!);
      const taken = again?.find((s) => s.status === 'HELD');
      if (taken) return this.lose(this.nodes[i]!.host, taken);
    }
    // Confirmed only if some node answered: with none, the next command tries again first.
    if (results.some((r) => r !== undefined)) this.lastConfirmed = started;
  }

  private lose(host: string, s: EntryStatus): void {
    const h = parseHolder(s.holder);
    const name = this.ctx.names.get(s.entry) ?? s.entry;
    const err = new LockLostError(
      `the lock "${name}" was taken over on ${host} by run ${h.runId ?? 'unknown'} (pid ${h.pid ?? '?'} on ${h.controller ?? 'an unknown controller'}): ` +
        `this run's lease there had run out (it was not renewed for ${this.ctx.leaseS} s: a suspended controller, or the node unreachable). ` +
        `baton refuses every further command of run ${this.ctx.runId}, its rollback included, because the other run now owns these nodes. ` +
        `What this run changed is in its journal: \`baton runs\`, then \`baton undo ${this.ctx.runId}\` once the other run is over.`,
      host,
      h,
    );
    clearInterval(this.timer);
    this.lostCtl.abort(err);
  }

  private loseGone(host: string, entry: string, sinceMs: number): void {
    const name = this.ctx.names.get(entry) ?? entry;
    const err = new LockLostError(
      `the lock "${name}" was gone from ${host} when this run renewed it ${Math.round(sinceMs / 1000)} s after it last could, past its ${this.ctx.leaseS} s lease ` +
        '(a suspended controller, or the node unreachable): another run may have held it meanwhile and changed these nodes. ' +
        `baton refuses every further command of run ${this.ctx.runId}, its rollback included. ` +
        `What this run changed is in its journal: \`baton runs\`, then \`baton undo ${this.ctx.runId}\` once you have looked at the nodes.`,
      host,
      {},
    );
    clearInterval(this.timer);
    this.lostCtl.abort(err);
  }

  /** Resolves while the lock is held; throws LockLostError once it is not. Renews first when the last confirmation is old. */
  async confirm(): Promise<void> {
    if (this.lost.aborted) throw this.lost.reason;
    if (this.released || this.nodes.length === 0) return;
    if (performance.now() - this.lastConfirmed > (this.ctx.leaseS * 1000 * 2) / 3) {
      await this.renew();
      if (this.lost.aborted) throw this.lost.reason;
    }
  }

  guard(pool: TransportSource): TransportSource {
    if (this.nodes.length === 0) return pool;
    return guardedPool(pool, () => this.confirm());
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    await this.round?.catch(() => undefined);
    await releaseNodes(this.ctx, [...this.nodes].reverse());
  }
}

async function releaseNodes(ctx: Ctx, nodes: LockedNode[]): Promise<void> {
  const entries = [...ctx.names.keys()].map((entry) => ({ entry, from: '' }));
  await Promise.all(
    nodes.map(async (n) => {
      try {
        await runOp(ctx, await ctx.pool.get(n.host), n, 'release', entries, 10_000);
      } catch {
        // Unreachable now: the entry there ages out after its lease.
      }
    }),
  );
}

export class NodeLockService implements LockService {
  async acquire(req: LockRequest): Promise<HeldLocks> {
    const names = [...new Set(req.names)].sort();
    const me = controllerIdentity();
    const leaseS = leaseSeconds(req.leaseS);
    const holder: NodeHolder = holderOf(req.runId, leaseS, names);
    const ctx: Ctx = { pool: req.pool, runId: req.runId, holderJson: JSON.stringify(holder), leaseS, names: new Map(names.map((n) => [entryName(n), n])), me };
    const entries = [...ctx.names.keys()];
    const notes: string[] = [];
    const taken: LockedNode[] = [];
    const tookOver = new Map<string, { holder: Partial<NodeHolder>; name: string; ageS?: number; leaseS?: number; dead: boolean; hosts: string[] }>();

    // The first entry's lease runs from its write: the renewal's "lease ran out" judgement counts
    // from here, not from when the last node was done.
    const firstWrite = performance.now();
    if (names.length) {
      for (const host of [...new Set(req.hosts)].sort()) {
        let t: Transport;
        try {
          t = await req.pool.get(host);
        } catch (e) {
          notes.push(`note: ${host} could not be reached, so the run lock has no entry there (${(e as Error).message})`);
          continue;
        }
        // The controller itself: this controller's lock file covers it.
        if (t.kind === 'local') continue;
        const node: LockedNode = { host, dir: lockDirFor(host, req.inventory) };
        try {
          for (const s of await takeOn(ctx, t, node, entries)) {
            const h = parseHolder(s.holder);
            const key = `${s.entry}\0${h.runId}`;
            const seen = tookOver.get(key);
            if (seen) seen.hosts.push(host);
            else tookOver.set(key, { holder: h, name: ctx.names.get(s.entry) ?? s.entry, ageS: s.ageS, leaseS: s.leaseS, dead: (s.ageS ?? 0) <= (s.leaseS ?? 0), hosts: [host] });
          }
        } catch (e) {
          // All or none: give back what this run took so far, this node included (a failed
          // command may have taken some of its entries).
          await releaseNodes(ctx, [node, ...taken.reverse()]);
          throw e;
        }
        taken.push(node);
      }
    }

    for (const t of tookOver.values()) {
      const why = t.dead
        ? `pid ${t.holder.pid} on ${t.holder.controller} is gone`
        : `not renewed for ${t.ageS} s, past its ${t.leaseS} s lease`;
      notes.push(
        `note: took over a stale lock "${t.name}" on ${t.hosts.join(', ')} from run ${t.holder.runId} (${why}); its journal may need \`baton undo ${t.holder.runId}\` on the controller that ran it (${t.holder.controller})`,
      );
    }
    const held = new NodeHeldLocks(ctx, names, taken, req.note ?? ((m) => process.stderr.write(`${m}\n`)), firstWrite);
    held.notes.push(...notes);
    held.start();
    return held;
  }
}
