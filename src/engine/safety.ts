import type { Host, Inventory } from '../inventory/model.js';
import { readBmcPower, type PowerReading } from '../facts/groups.js';
import { LocalTransport } from '../transport/index.js';
import { selectHosts } from '../inventory/pattern.js';
import { StepRefusedError, type StepContext, type StepKind } from '../steps/contract.js';
import type { StepRegistry } from '../steps/registry.js';
import { UnreachableError, type ExecOptions } from '../transport/transport.js';
import { makeStepContext, type TransportSource } from './context.js';
import { describeError } from './errors.js';

/**
 * The safety invariants that hold on every path (forward run, rollback, undo), whatever the
 * step kind: a takeover never proceeds while another node may hold the resource — holding it,
 * or unreachable and neither fenced nor released in this run — unless the operator said --force.
 * Kinds only say what their resource is and how to see it on a peer; the decision is here.
 */
/**
 * A peer's power as its BMC reports it now (facts/groups.ts readBmcPower): asked only of a peer
 * that cannot be reached, since a node its BMC says is off holds nothing, as after a fence.
 */
export type PeerPower = (peer: Host) => Promise<{ power: PowerReading; powerError?: string }>;

/** Peers' BMCs asked with ipmitool from the controller, as `baton status` asks them. */
export function bmcPowerFromController(): PeerPower {
  const runner = new LocalTransport('controller');
  return (peer) => readBmcPower(peer, runner, { seconds: 2, retries: 2 });
}

export class RunSafety {
  /** Hosts a fence of this run confirmed powered off. */
  readonly fenced = new Set<string>();
  private readonly released = new Set<string>();

  /** BMC readings that said off, kept for the run as a fence's is: items ask at once, steps one after another. */
  private readonly offReadings = new Map<string, ReturnType<PeerPower>>();

  constructor(
    readonly force: boolean,
    private readonly peerPower?: PeerPower,
  ) {}

  /** The peer's power from its BMC (undefined when BMCs are not asked); an "off" is asked once per run. */
  async powerOf(peer: Host): Promise<{ power: PowerReading; powerError?: string } | undefined> {
    if (!this.peerPower) return undefined;
    let reading = this.offReadings.get(peer.name);
    if (!reading) {
      reading = this.peerPower(peer).catch((e: unknown) => ({ power: 'unknown' as const, powerError: describeError(e) }));
      this.offReadings.set(peer.name, reading);
    }
    const r = await reading;
    if (r.power !== 'off') this.offReadings.delete(peer.name);
    return r;
  }

  /** A node powered back on in this run: no longer fenced, and its BMC is asked again. */
  clearFenced(name: string): void {
    this.fenced.delete(name);
    this.offReadings.delete(name);
  }

  noteReleased(resource: string, host: string): void {
    this.released.add(`${resource}\u0000${host}`);
  }

  wasReleased(resource: string, host: string): boolean {
    return this.released.has(`${resource}\u0000${host}`);
  }
}

/**
 * The nodes that could hold a resource: the step's own `peers:` if it names them; else the
 * inventory's `baton_peers` host pattern (e.g. `nodes`); else every host baton reaches over the
 * network. Hosts with `ansible_connection: local` are the controller itself (the lab's clients
 * are such hosts): asking them would only have the controller answer for a node it is not.
 */
export function peersOf(inventory: Inventory, self: Host, args: unknown): string[] {
  const given = (args as { peers?: unknown } | null)?.peers;
  if (Array.isArray(given)) return given.map(String).filter((h) => h !== self.name);
  const pattern = self.vars.baton_peers;
  const candidates = typeof pattern === 'string' && pattern ? selectHosts(inventory, pattern).hosts : [...inventory.hosts.values()];
  return candidates.filter((h) => h.name !== self.name && h.vars.ansible_connection !== 'local').map((h) => h.name);
}

export interface TakeoverCheck {
  kind: StepKind;
  args: unknown;
  /** The inventory host taking the resource. */
  host: Host;
  inventory: Inventory;
  pool: TransportSource;
  safety: RunSafety;
  /** Said at the default verbosity: a skipped peer or a --force is never silent. */
  warn(message: string): void;
  timeoutMs: number;
  /** The step's become: peers are read with the same privileges. */
  become?: ExecOptions['become'];
  /** Kills the peers' commands when the answer is no longer wanted. */
  signal?: AbortSignal;
}

/**
 * Refuse (StepRefusedError) when a peer holds the resource, or cannot be asked and was neither
 * fenced nor released in this run. Peers are asked in parallel over their open connections.
 */
export async function ensureNoPeerHolds(c: TakeoverCheck): Promise<void> {
  const { kind, args, safety } = c;
  if (!kind.heldBy) return;
  const resource = kind.resource?.(args) ?? kind.kind;
  const peers = peersOf(c.inventory, c.host, args);
  const found = await Promise.all(
    peers.map(async (peer): Promise<string | null> => {
      const excused = safety.fenced.has(peer)
        ? 'fenced in this run'
        : safety.wasReleased(resource, peer)
          ? `released ${resource} in this run`
          : undefined;
      try {
        const host = c.inventory.hosts.get(peer);
        if (!host) return `${peer} is not in the inventory`;
        const transport = await c.pool.get(peer);
        const ctx: StepContext = makeStepContext({
          host,
          transport,
          inventory: c.inventory,
          pool: c.pool,
          vars: {},
          force: false,
          timeoutMs: c.timeoutMs,
          become: c.become,
          ...(c.signal ? { signal: c.signal } : {}),
          log: () => undefined,
        });
        const held = await kind.heldBy!(ctx, args);
        return held ? `${peer} ${held}` : null;
      } catch (e) {
        const unreachable = e instanceof UnreachableError || /unreachable|not reachable|ECONNREFUSED|EHOSTUNREACH|timed out/i.test(describeError(e));
        if (unreachable && excused) {
          c.warn(`${kind.kind} on ${c.host.name}: ${peer} cannot be asked whether it holds ${resource}, but it was ${excused}: going on`);
          return null;
        }
        const why = describeError(e);
        if (!unreachable) return `${peer} could not be checked (${why})`;
        // A node powered off holds nothing: what a fence verifies, read from its BMC now. Without
        // this, a node that went down (or was fenced by an earlier run) blocks every later move of
        // any group, and the rollback of one, that lists it among the peers.
        const host = c.inventory.hosts.get(peer);
        const bmc = host ? await safety.powerOf(host) : undefined;
        if (bmc?.power === 'off') {
          c.warn(`${kind.kind} on ${c.host.name}: ${peer} cannot be asked whether it holds ${resource}, but its BMC says it is powered off: going on`);
          return null;
        }
        const power = bmc ? `; its BMC says ${bmc.power === 'on' ? 'power on' : `nothing sure (${bmc.powerError ?? 'unknown'})`}` : '';
        return `${peer} cannot be reached (${why}${power}), so it may still hold ${resource} (unknown is not free)`;
      }
    }),
  );
  const problems = found.filter((x): x is string => x !== null);
  if (problems.length === 0) return;
  const what = `${kind.kind} ${resource} on ${c.host.name}`;
  if (safety.force) {
    c.warn(`--force: ${what} although ${problems.join('; ')}`);
    return;
  }
  throw new StepRefusedError(
    `will not ${what}: ${problems.join('; ')}. Release it there first, or fence that node (a fence step before this one), ` +
      `or, if you are sure it is down, re-run with --force.`,
  );
}

/**
 * Everything that must hold before a kind takes something over: its own preconditions, then the
 * peers. Used before an apply of a takeover kind and before the revert of a release (whose
 * inverse is the takeover), so rollback and undo can never do what a run would refuse.
 */
export async function checkTakeover(c: TakeoverCheck & { ctx: StepContext; prepared?: Promise<unknown> }): Promise<void> {
  // Both are read-only: ask the peers while the kind checks its own node, and report the kind's
  // refusal first when both refuse (it is about this node, the one being changed).
  const [own, peers] = await Promise.allSettled([
    c.kind.preconditions?.(c.ctx, c.args, c.prepared),
    c.kind.role === 'takeover' ? ensureNoPeerHolds(c) : undefined,
  ]);
  if (own.status === 'rejected') throw own.reason;
  if (peers.status === 'rejected') throw peers.reason;
}

/** The kind whose apply a revert of `kind` amounts to, for safety: the inverse of a release. */
export function takeoverOfRevert(kind: StepKind, registry: StepRegistry): StepKind | undefined {
  if (kind.role !== 'release' || !kind.inverse) return undefined;
  return registry.get(kind.inverse);
}

/** Resource key of a change, for "released in this run" and for undo's drift report. */
export function resourceOf(kind: StepKind, args: unknown): string | undefined {
  try {
    return kind.resource?.(args);
  } catch {
    return undefined;
  }
}
