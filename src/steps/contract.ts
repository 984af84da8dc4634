import type { Host, Inventory } from '../inventory/model.js';
import type { ExecOptions, ExecResult, Transport } from '../transport/transport.js';
import { displayArgv } from '../util/argv.js';

/**
 * The step contract. One module per kind in src/steps/, one JSON Schema per kind in
 * schemas/steps/KIND.json. A kind knows nothing about the engine, and the engine knows
 * no kind: it only calls these five functions.
 *
 * Spirit: OCF resource agents (monitor/start/stop, idempotent by spec) and Pulumi
 * dynamic providers (read/diff/create/delete).
 *
 *   before = probe()            read-only, what is true now; must be JSON (it is journaled)
 *   satisfied(before)           true -> ok, nothing runs
 *   apply(before)               make it so
 *   after = probe(); satisfied(after) must hold, or the step failed whatever apply's exit codes said
 *                               (apply may return `after` itself, read by the probe's own commands
 *                               run after the change in the same exec: one round trip less)
 *   revert(before)              put back what probe() saw before apply
 */
export interface StepKind<A = any, O = any> {
  /** Name used in YAML. */
  readonly kind: string;
  /** Kind whose apply undoes this one's, for docs and plan output (`raise_vip` <-> `lower_vip`). */
  readonly inverse?: string;
  /**
   * One-shot kinds (garp, restart_statd) have no state to probe: they always apply when
   * selected. Use `when: X is changed` in playbooks so a re-run stays at zero changes.
   */
  readonly oneShot?: boolean | ((args: A) => boolean);
  /** Read-only kinds (wait_for, assert) change nothing: never "changed", never journaled, never reverted. */
  readonly readOnly?: boolean;
  /**
   * Probes from baton's own process on the controller, never through its host's connection
   * (`nfs_null`, `iscsi_lun` ask the VIP as a client would): it runs when its host cannot be
   * reached, so a cluster that is down entirely reads as a dead service, not as "unknown".
   */
  readonly fromController?: boolean;
  /** What the kind does to the world, for safety checks: takeover steps need a fenced or released peer. */
  readonly role?: 'takeover' | 'release' | 'fence' | 'neutral';
  /**
   * False when revert() could not undo anything for these args (a `command` without `revert:`).
   * Such changes are journaled but not listed for rollback or undo. Default: reversible.
   */
  reversible?(args: A): boolean;
  /** Dotted paths of arguments that are secret: never printed, never journaled. */
  readonly secretArgs?: string[];
  /**
   * Bound, in seconds, on one probe+apply (or one revert) of this kind when the step sets no
   * `timeout:`. Every kind is bounded: a hung daemon must not hold a failover forever.
   */
  readonly defaultTimeoutS?: number | ((args: A) => number);

  /**
   * The exclusive resource a takeover or release step is about, as a key its inverse kind gives
   * too ("vip 198.18.0.200", "volume loop:/srv/san/disk1.img"). The engine remembers releases by
   * it, and names it when something is in the way.
   */
  resource?(args: A): string;
  /**
   * Takeover kinds: does this peer hold the resource now? A read-only fact, run with the peer's
   * own context; a reason ("has /dev/loop3 mounted on /srv/disk1") or null. The engine asks every
   * peer before an apply, and before the revert of the matching release, on every path (run,
   * rollback, undo); an unreachable peer blocks unless fenced or released in this run.
   */
  heldBy?(peer: StepContext, args: A): Promise<string | null>;
  /**
   * Refusals an apply makes before changing anything (StepRefusedError): "the path is not a
   * mount point", "someone answers ARP for the VIP". The engine runs them before the apply and
   * before the revert of the inverse kind, so a rollback cannot do what a run would refuse.
   */
  preconditions?(ctx: StepContext, args: A, prepared?: Promise<unknown>): Promise<void>;
  /**
   * Read-only work the preconditions need that may start before the step's turn: raise_vip's
   * probe of the wire for anyone answering for the address (200 ms) can run while the storage
   * steps before it do. The engine starts it, on the host the step will run on with the args it
   * will have, as soon as it becomes meaningful: when a release of the same resource key
   * completes in this run, or a fence is confirmed. It hands the promise to `preconditions` as
   * `prepared` only if the step's rendered args are the same; the kind decides whether the result
   * is still good enough (fresh, conclusive) or looks again. Never on rollback or undo paths.
   */
  prepare?(ctx: StepContext, args: A): Promise<unknown>;
  /**
   * Is the node back as `before` showed it, in the sense that matters for this kind? Device
   * numbers, pids and timestamps must not count. Default: satisfied() says the same of both.
   */
  restored?(before: O, now: O, args: A): boolean;
  /**
   * Release kinds whose arguments do not say what they released (`unmount: {path}`): the
   * arguments of the inverse takeover kind that a revert to `before` amounts to, so the engine's
   * takeover checks ask the peers about the very thing being put back. Default: the same args.
   */
  revertAs?(args: A, before: O): unknown;

  probe(ctx: StepContext, args: A): Promise<O>;
  satisfied(observed: O, args: A): boolean;
  /**
   * Make it so. May resolve to the state after the change, read by the same commands as probe()
   * in the same exec after the change (never inferred from exit codes): the engine then skips
   * its own probe. Resolve to nothing to have the engine probe.
   */
  apply(ctx: StepContext, args: A, before: O): Promise<O | void>;
  revert(ctx: StepContext, args: A, before: O): Promise<void>;
  describe(args: A): StepDescription;
}

/** Does this kind, with these args, run without a state to probe (garp, restart_statd, a reboot)? */
export function isOneShot<A>(kind: Pick<StepKind<A>, 'oneShot'>, args: A): boolean {
  return typeof kind.oneShot === 'function' ? kind.oneShot(args) : Boolean(kind.oneShot);
}

export interface StepDescription {
  /** One line for a human: "raise 198.18.0.100/24 on eth0". */
  summary: string;
  /** The exact commands apply would run, as argv arrays. */
  commands: string[][];
}

export interface RunOptions extends ExecOptions {
  /** Exit codes that are not failures (default [0]). */
  okCodes?: readonly number[];
}

/** What a step sees of the world while it runs on one host. */
export interface StepContext {
  /** The inventory host the step is for (not the delegate). */
  host: Host;
  /** Where commands run: the host itself, or its `delegate_to`. */
  transport: Transport;
  /**
   * Run a command where the step runs. Rejects with CommandFailedError when the exit code is
   * not in okCodes or it timed out; the error carries host, argv, stdout and stderr.
   */
  run(argv: string[], opts?: RunOptions): Promise<ExecResult>;
  /** Reach another inventory host (safety checks: who else holds this VIP?). */
  transportFor(hostName: string): Promise<Transport>;
  /**
   * Say that a host is known to be down (a fence confirmed it off): from now on, reaching it
   * fails at once with `reason` instead of waiting out a connect timeout. `null` clears it.
   */
  markDown(hostName: string, reason: string | null): void;
  inventory: Inventory;
  /** The step's vars after precedence (for kinds that evaluate conditions, like assert). */
  vars: Record<string, unknown>;
  /** `--force`: the operator takes responsibility for taking a resource a peer may still hold. */
  force: boolean;
  /** Step timeout left, if any. */
  timeoutMs?: number;
  /** Verbose detail for -v. */
  log(message: string): void;
}

/** A command exited with a code the step did not expect, or timed out. */
export class CommandFailedError extends Error {
  constructor(
    readonly host: string,
    readonly result: ExecResult,
  ) {
    const why = result.timedOut
      ? 'timed out and was killed'
      : result.code === null
        ? `was killed by ${result.signal ?? 'a signal'}`
        : `exited ${result.code}`;
    const stderr = result.stderr.trim();
    super(`on ${host}: \`${displayArgv(result.argv)}\` ${why}${stderr ? `: ${stderr}` : ''}`);
    this.name = 'CommandFailedError';
  }
}

/**
 * A command of a batch (transport/batch.ts) that must have succeeded: its result, or a
 * CommandFailedError naming the host, the command and its stderr — also when the batch stopped
 * before reaching it.
 */
export function batchedOk(host: string, r: ExecResult | undefined, argv: string[]): ExecResult {
  const result = r ?? { argv, code: null, signal: null, stdout: '', stderr: 'the command did not run (its batch ended before it)', timedOut: false, durationMs: 0 };
  if (result.code !== 0) throw new CommandFailedError(host, result);
  return result;
}

/**
 * A step refused to act because acting would be unsafe (split brain, resource held elsewhere).
 * Throw it only before changing anything: the engine then counts no change to revert.
 */
export class StepRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepRefusedError';
  }
}
