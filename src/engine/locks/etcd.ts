/**
 * The run lock in etcd (docs/coordinator.md): one key per lock name, `baton/locks/NAME`, created
 * in a transaction only if absent and attached to a lease of this run, so a controller that dies
 * loses its locks when the lease expires. The key's create revision is the run's fencing token:
 * before every change, a transaction compares it (and the lease) and, in the same transaction,
 * writes the journal lines not yet mirrored. A run whose lease expired (a paused or cut-off
 * controller) or that cannot reach a quorum stops before that change and says why.
 */
import { EtcdError, type EtcdClient, type EtcdCompare, type EtcdOp } from '../../transport/etcd.js';
import { BatonError, ExitCode } from '../../util/errors.js';
import { LockHeldError } from '../lock.js';
import { guardedPool } from './guard.js';
import { holderOf, parseHolder, type LockHolder } from './holder.js';
import { leaseSeconds, type HeldLocks, type LockRequest, type LockService } from './service.js';

export const LOCK_PREFIX = 'baton/locks/';
export const JOURNAL_PREFIX = 'baton/journal/';

export const lockKey = (name: string) => `${LOCK_PREFIX}${name}`;
/** One key per journal line, zero-padded so that keys sort in line order. */
export const journalLineKey = (runId: string, index: number) => `${JOURNAL_PREFIX}${runId}/${String(index).padStart(8, '0')}`;

/** What a lock key holds: who holds it, for the operator who meets it. */
export type EtcdHolder = LockHolder;

/** The run's lock is no longer its own, or etcd could not confirm it is: the run stops before its change. */
export class FencedError extends BatonError {
  constructor(message: string) {
    super(message, ExitCode.FAILED_NOT_ROLLED_BACK);
    this.name = 'FencedError';
  }
}


export class EtcdLockService implements LockService {
  constructor(
    private readonly client: EtcdClient,
    /** How etcd is named to the operator: "etcd (http://h1:2379, …)". */
    private readonly label = `etcd (${client.endpoints.join(', ')})`,
  ) {}

  async acquire(req: LockRequest): Promise<HeldLocks> {
    const names = [...new Set(req.names)].sort();
    const leaseS = leaseSeconds(req.leaseS);
    const holder: EtcdHolder = holderOf(req.runId, leaseS, names);
    const note = req.note ?? ((m: string) => process.stderr.write(`${m}\n`));
    if (!names.length) return new EtcdHeldLocks(this.client, this.label, req.runId, '0', new Map(), leaseS, note);

    let lease: string;
    try {
      lease = await this.client.leaseGrant(leaseS);
    } catch (e) {
      throw new BatonError(`cannot take the run lock in ${this.label}: ${(e as Error).message}. Nothing was changed.`, ExitCode.LOCKED);
    }
    const value = JSON.stringify(holder);
    const keys = names.map(lockKey);
    const ranges: EtcdOp[] = keys.map((key) => ({ range: { key } }));
    let result;
    try {
      result = await this.client.txn(
        keys.map((key): EtcdCompare => ({ key, target: 'CREATE', result: 'EQUAL', value: 0 })),
        [...keys.map((key): EtcdOp => ({ put: { key, value, lease } })), ...ranges],
        ranges,
      );
    } catch (e) {
      await this.client.leaseRevoke(lease).catch(() => undefined);
      throw new BatonError(`cannot take the run lock in ${this.label}: ${(e as Error).message}. Nothing was changed.`, ExitCode.LOCKED);
    }
    const found = result.succeeded ? result.responses.slice(keys.length) : result.responses;
    // A transaction retried on another endpoint after a timeout may have been applied by the
    // first one: keys that carry this run's lease are this run's.
    const ours = found.every((kvs) => kvs[0]?.lease === lease);
    if (!ours) {
      await this.client.leaseRevoke(lease).catch(() => undefined);
      const i = found.findIndex((kvs) => kvs[0] && kvs[0].lease !== lease);
      const h = parseHolder(found[i]?.[0]?.value);
      throw new LockHeldError({
        name: names[i] ?? names[0]!,
        runId: h.runId ?? 'unknown',
        controller: h.controller ?? 'an unknown controller',
        pid: h.pid ?? 0,
        since: h.since ?? 'unknown',
        leaseS: h.leaseS,
        coordinator: this.label,
      });
    }
    const tokens = new Map(names.map((n, i) => [n, found[i]![0]!.createRevision]));
    const held = new EtcdHeldLocks(this.client, this.label, req.runId, lease, tokens, leaseS, note);
    held.start();
    return held;
  }
}

export class EtcdHeldLocks implements HeldLocks {
  readonly notes: string[] = [];
  readonly names: string[];
  private readonly lostCtl = new AbortController();
  readonly lost = this.lostCtl.signal;
  private timer: NodeJS.Timeout | undefined;
  private released = false;
  private unrenewedSince: number | undefined;
  /** When etcd last confirmed the lease (monotonic): a controller paused past it must ask again. */
  private lastRenewed = performance.now();
  private renewing: Promise<void> | undefined;
  /** Journal lines written locally, not yet in etcd: index → line. */
  private readonly pending = new Map<number, string>();
  private flushing: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private journalRunId: string | undefined;

  constructor(
    private readonly client: EtcdClient,
    private readonly label: string,
    private readonly runId: string,
    private readonly lease: string,
    /** Lock name → the create revision of its key: the fencing token. */
    private readonly tokens: Map<string, number>,
    private readonly leaseS: number,
    private readonly note: (m: string) => void,
  ) {
    this.names = [...tokens.keys()];
  }

  start(): void {
    if (!this.tokens.size) return;
    this.timer = setInterval(() => void this.renew(), (this.leaseS * 1000) / 3);
    this.timer.unref();
  }

  /** One keep-alive at a time, whoever asks (the timer, or many commands' guards at once). */
  private renew(): Promise<void> {
    this.renewing ??= this.keepAlive().finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  private async keepAlive(): Promise<void> {
    if (this.released || this.lost.aborted) return;
    try {
      const ttl = await this.client.leaseKeepAlive(this.lease, Math.max(1000, (this.leaseS * 1000) / 3));
      if (ttl <= 0) {
        this.lose(`its lease in ${this.label} expired (it was not renewed for ${this.leaseS} s: a paused controller, or one cut off from etcd)`);
        return;
      }
      this.unrenewedSince = undefined;
      this.lastRenewed = performance.now();
    } catch (e) {
      // Unreachable is not lost yet: the fencing compare before the next change decides.
      if (this.unrenewedSince === undefined) {
        this.unrenewedSince = Date.now();
        this.note(`note: could not renew the run lock's lease in ${this.label}: ${(e as Error).message}; the run goes on while the lease lasts, and stops before its next change if etcd cannot confirm the lock`);
      }
    }
  }

  private lose(why: string, holder?: Partial<EtcdHolder>): FencedError {
    const now = holder?.runId ? ` It is now held by run ${holder.runId} (pid ${holder.pid ?? '?'} on ${holder.controller ?? 'an unknown controller'}).` : '';
    const err = new FencedError(
      `fencing: run ${this.runId} no longer holds its lock ${this.names.map((n) => `"${n}"`).join(', ')}: ${why}.${now} ` +
        `baton refused this change and refuses every further one of this run, its rollback included, since another run may own these nodes now. ` +
        `What this run changed is in its journal: \`baton runs\`, then \`baton undo ${this.runId}\` once the other run is over.`,
    );
    if (!this.lost.aborted) {
      clearInterval(this.timer);
      this.lostCtl.abort(err);
    }
    return err;
  }

  /** A journal line as it was written locally: mirrored to etcd with the next change, or soon after. */
  mirror(runId: string, index: number, line: string): void {
    this.journalRunId = runId;
    this.pending.set(index, line);
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        void this.flush().catch(() => undefined);
      }, 50);
      this.flushTimer.unref();
    }
  }

  private pendingPuts(): { ops: EtcdOp[]; indexes: number[] } {
    const indexes = [...this.pending.keys()].sort((a, b) => a - b);
    const runId = this.journalRunId ?? this.runId;
    return { ops: indexes.map((i) => ({ put: { key: journalLineKey(runId, i), value: this.pending.get(i)! } })), indexes };
  }

  /** Lines that are not followed by a change (done, end records): written without a compare. */
  private flush(): Promise<void> {
    if (!this.flushing) {
      const run = async () => {
        while (this.pending.size) {
          const { ops, indexes } = this.pendingPuts();
          await this.client.txn([], ops);
          for (const i of indexes) this.pending.delete(i);
        }
      };
      // Set before the first await can clear it: an empty flush must not leave a settled promise behind.
      const p = run().finally(() => {
        if (this.flushing === p) this.flushing = undefined;
      });
      this.flushing = p;
    }
    return this.flushing;
  }

  /**
   * The fencing check, before every change: the lock keys still have this run's create revision
   * and lease. The journal lines so far (the change's intent among them) go in with it.
   */
  async beforeChange(): Promise<void> {
    if (this.lost.aborted) throw this.lost.reason;
    if (!this.tokens.size) return;
    const keys = this.names.map(lockKey);
    const compare: EtcdCompare[] = this.names.flatMap((n): EtcdCompare[] => [
      { key: lockKey(n), target: 'CREATE', result: 'EQUAL', value: this.tokens.get(n)! },
      { key: lockKey(n), target: 'LEASE', result: 'EQUAL', value: this.lease },
    ]);
    await this.flushing?.catch(() => undefined);
    const { ops, indexes } = this.pendingPuts();
    let r;
    try {
      r = await this.client.txn(compare, ops, keys.map((key) => ({ range: { key } })));
    } catch (e) {
      const msg = e instanceof EtcdError ? e.message : String(e);
      throw this.lose(`${this.label} could not confirm it (${msg}); without that confirmation no change is made`);
    }
    if (!r.succeeded) {
      const i = Math.max(0, this.names.findIndex((n, j) => r.responses[j]?.[0]?.createRevision !== this.tokens.get(n) || r.responses[j]?.[0]?.lease !== this.lease));
      const kv = r.responses[i]?.[0];
      const name = this.names[i]!;
      throw this.lose(
        kv && kv.createRevision !== this.tokens.get(name)
          ? `its lease in ${this.label} expired and the lock key ${keys[i]} was created again (revision ${kv.createRevision}; this run's fencing token is revision ${this.tokens.get(name)})`
          : `its lease in ${this.label} expired and the lock key ${keys[i]} is gone (this controller was paused or cut off for longer than the ${this.leaseS} s lease)`,
        parseHolder(kv?.value),
      );
    }
    for (const i of indexes) this.pending.delete(i);
  }

  guard: HeldLocks['guard'] = (pool) => {
    if (!this.tokens.size) return pool;
    return guardedPool(pool, () => this.confirm());
  };

  /**
   * Before each command: lost is lost; and when the lease was last confirmed longer ago than two
   * thirds of it (the controller was paused, or the timer starved), it is renewed first, as the
   * node lock does. A controller SIGSTOPped mid-step sent the rest of that step's commands on
   * SIGCONT, before its renewal timer could find the lease gone.
   */
  private async confirm(): Promise<void> {
    if (this.lost.aborted) throw this.lost.reason;
    if (this.released || performance.now() - this.lastRenewed <= (this.leaseS * 1000 * 2) / 3) return;
    await this.renew();
    if (this.lost.aborted) throw this.lost.reason;
    if (performance.now() - this.lastRenewed > this.leaseS * 1000) {
      throw this.lose(`its lease in ${this.label} could not be confirmed for longer than the ${this.leaseS} s lease (etcd unreachable, or this controller paused)`);
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    try {
      await this.flush();
    } catch (e) {
      this.note(`note: the last journal lines of run ${this.runId} could not be mirrored to ${this.label} (${(e as Error).message}); they are in this controller's state dir`);
    }
    if (!this.tokens.size) return;
    try {
      // Revoking the lease deletes the keys attached to it, and only those: after a lost lease,
      // a key created again by another run has that run's lease and stays.
      await this.client.leaseRevoke(this.lease);
    } catch {
      // etcd unreachable: the lease expires by itself, and the keys with it.
    }
  }
}
