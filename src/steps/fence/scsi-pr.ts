/**
 * scsi-pr provider: fence a node off a shared LUN with SCSI-3 persistent reservations instead
 * of switching its power (fence_scsi's way, LifeKeeper's way). Every node registers its own key
 * through its own I_T nexus; one registrants-only reservation is held on the LUN; to fence,
 * a surviving node PREEMPTs the failed node's key, after which the target answers that node's
 * writes with RESERVATION CONFLICT. Unfence = the node registers its key again.
 *
 * Mapped onto the power model of fence/unfence: "on" = the target's key is registered through
 * the target's live session (it may write), "off" = it is not (it may not).
 *
 * PREEMPT, not PREEMPT AND ABORT (what fence_scsi sends): tgtd does not implement the latter,
 * so commands the fenced node already queued are not aborted; later ones are refused.
 *
 * The PR commands go through baton's own initiator, by a small agent run on the nodes
 * (scsi-pr-agent.ts): the survivor preempts from its nexus, the node registers from its own.
 */
import { createHash } from 'node:crypto';
import { PrType } from '../../net/iscsi/scsi.js';
import { ANY_EXIT_STATUS, UnreachableError, type Transport } from '../../transport/transport.js';
import type { StepContext } from '../contract.js';
import type { PowerState } from '../../facts/power.js';
import type { PowerDriver } from '../fence.js';
import { SCSI_PR_AGENT, keyHex, type PrAnswer, type PrLun, type PrRequest } from './scsi-pr-protocol.js';
import { sgPersistArgv, sgPersistAsk } from './sg-persist.js';

export interface ScsiPrArgs {
  target: string;
  /** The shared LUN's portal, "address[:port]" (default: inventory var scsi_pr_portal). */
  portal?: string;
  /** Its target IQN (default: scsi_pr_iqn). */
  iqn?: string;
  /** Its LUN (default: scsi_pr_lun, else 1). */
  lun?: number;
  reservation?: ReservationName;
  /** argv that runs scsi-pr-agent.js on the nodes (default: this node binary and this baton's file). */
  agent_command?: string[];
  /**
   * The LUN's block device on nodes with a kernel initiator (default: inventory var
   * scsi_pr_device of the node that speaks): PR goes through `sg_persist` on it instead.
   */
  device?: string;
}

export type ReservationName = 'write-exclusive-registrants-only' | 'exclusive-access-registrants-only';

export const RESERVATIONS: Record<ReservationName, number> = {
  'write-exclusive-registrants-only': PrType.WE_REGISTRANTS_ONLY,
  'exclusive-access-registrants-only': PrType.EA_REGISTRANTS_ONLY,
};

/** How long "is the target reachable, what does its own session say?" may take. */
const ASK_TARGET_MS = 3000;

/**
 * A node's reservation key: inventory var scsi_pr_key (hex, as sg_persist takes it), else one
 * derived from its inventory name, so every controller computes the same key for the node.
 */
export function prKeyOf(name: string, vars: Record<string, unknown> = {}): bigint {
  const v = vars.scsi_pr_key;
  if (v !== undefined && v !== null && v !== '') {
    const s = String(v).trim();
    if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(s) || BigInt(s.startsWith('0x') ? s : `0x${s}`) === 0n) {
      throw new Error(`scsi_pr_key of ${name} is ${JSON.stringify(v)}: it must be 1 to 16 hex digits and not zero (a zero key means "unregister" to SPC)`);
    }
    return BigInt(s.startsWith('0x') ? s : `0x${s}`);
  }
  const h = createHash('sha256').update(`baton scsi-pr ${name}`).digest();
  const k = h.readBigUInt64BE(0);
  return k === 0n ? 1n : k;
}

/** A node's initiator name: inventory var iscsi_initiator_name, else one made of its name. */
export function initiatorOf(name: string, vars: Record<string, unknown> = {}): string {
  const v = vars.iscsi_initiator_name;
  return typeof v === 'string' && v ? v : `iqn.2026-11.dev.baton:${name}`;
}

export function reservationType(a: ScsiPrArgs): number {
  return RESERVATIONS[a.reservation ?? 'write-exclusive-registrants-only'];
}

/** The LUN as the step's args and the inventory say, for `host` speaking. */
export function lunFor(ctx: StepContext | undefined, a: ScsiPrArgs, host: string): PrLun {
  const vars = ctx?.inventory.hosts.get(host)?.vars ?? {};
  const portal = a.portal ?? (vars.scsi_pr_portal as string | undefined);
  const iqn = a.iqn ?? (vars.scsi_pr_iqn as string | undefined);
  const lun = a.lun ?? (vars.scsi_pr_lun !== undefined ? Number(vars.scsi_pr_lun) : 1);
  if (ctx && (!portal || !iqn)) {
    const missing = [portal ? '' : 'portal (inventory var scsi_pr_portal)', iqn ? '' : 'iqn (scsi_pr_iqn)'].filter(Boolean);
    throw new Error(`provider scsi-pr: no ${missing.join(', ')} for the shared LUN in the step's arguments or in ${host}'s inventory vars`);
  }
  return { portal: portal ?? '<scsi_pr_portal>', iqn: iqn ?? '<scsi_pr_iqn>', lun, initiator: initiatorOf(host, vars) };
}

/** The node's kernel device for the LUN, if it has one: then sg_persist speaks for it. */
export function deviceFor(ctx: StepContext | undefined, a: ScsiPrArgs, host: string): string | undefined {
  const v = a.device ?? ctx?.inventory.hosts.get(host)?.vars.scsi_pr_device;
  return typeof v === 'string' && v ? v : undefined;
}

/**
 * The agent's command: the step's agent_command, else the node's inventory var
 * scsi_pr_agent_command, else this controller's node and baton install (right when the nodes see
 * the controller's filesystem at the same paths).
 */
export function agentArgv(a: ScsiPrArgs, q: PrRequest, vars?: Record<string, unknown>): string[] {
  const fromVars = vars?.scsi_pr_agent_command;
  const inventoryCommand = Array.isArray(fromVars) && fromVars.length && fromVars.every((x) => typeof x === 'string') ? (fromVars as string[]) : undefined;
  return [...(a.agent_command ?? inventoryCommand ?? [process.execPath, SCSI_PR_AGENT]), JSON.stringify(q)];
}

/** Read the agent's one JSON line; an agent that printed none is an error naming the host. */
export function parseAnswer(host: string, argv: string[], r: { code: number | null; stdout: string; stderr: string }): PrAnswer {
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as PrAnswer;
  } catch {
    throw new Error(`scsi-pr agent on ${host} (\`${argv.slice(0, 2).join(' ')} …\`) exited ${r.code} without an answer: ${(r.stderr || r.stdout).trim() || '(no output)'}`);
  }
}

/**
 * The target's state from what was read. Asked "is it fenced?" while no reservation is held,
 * no ("on"): everybody may write, a missing key fences nothing. Otherwise its key absent from
 * READ KEYS is "off"; present is "on" — unless the node itself, asked through its own session,
 * says that session is not the one registered (a node rebooted since: its old registration
 * belongs to a session that is gone, and its new one may not write).
 */
export function judge(key: string, seen: Pick<PrAnswer, 'keys' | 'reservation'>, asking: 'fenced' | 'unfenced', own?: PrAnswer, known?: string[]): PowerState {
  if (!seen.reservation && asking === 'fenced') return 'on';
  if (!(seen.keys ?? []).includes(key)) {
    // A key no node of the inventory registers (fence_scsi's, multipath's reservation_key) may
    // be the target's under another name: its own key gone proves nothing then.
    const foreign = known && asking === 'fenced' ? (seen.keys ?? []).filter((k) => !known.includes(k)) : [];
    if (foreign.length) {
      throw new Error(
        `key ${key} is not registered, but ${foreign.join(', ')} ${foreign.length > 1 ? 'are' : 'is'}, which no node of the inventory registers (fence_scsi? multipath's reservation_key?): the node may still write under it, so it is not read as fenced. Remove that registration, or fence through the BMC`,
      );
    }
    return 'off';
  }
  if (own && own.ok) return own.nexus === 'resident' && own.registered === key ? 'on' : 'off';
  return 'on';
}

export function scsiPrDriver(a: ScsiPrArgs): PowerDriver {
  const type = reservationType(a);
  const labelOf = (l: PrLun) => `SCSI PR on ${l.iqn} LUN ${l.lun} at ${l.portal}`;
  const keyOfHost = (ctx: StepContext, host: string) => keyHex(prKeyOf(host, ctx.inventory.hosts.get(host)?.vars));

  async function ask(ctx: StepContext, t: Transport | null, host: string, q: PrRequest, timeoutMs: number): Promise<PrAnswer> {
    const device = deviceFor(ctx, a, host);
    if (device) {
      const deadline = Date.now() + timeoutMs;
      const left = () => Math.max(1000, deadline - Date.now());
      return sgPersistAsk((argv) => (t ? t.exec(argv, { timeoutMs: left() }) : ctx.run(argv, { okCodes: ANY_EXIT_STATUS, timeoutMs: left() })), q, device);
    }
    const argv = agentArgv(a, { ...q, timeoutMs: Math.max(1000, timeoutMs - 500) }, ctx.inventory.hosts.get(host)?.vars);
    const r = t ? await t.exec(argv, { timeoutMs }) : await ctx.run(argv, { okCodes: [0, 1], timeoutMs });
    return parseAnswer(host, argv, r);
  }

  /** The target's own view, or undefined when it cannot be asked now (down, unreachable, slow). */
  async function askTarget(ctx: StepContext, timeoutMs: number): Promise<PrAnswer | undefined> {
    // A kernel initiator's session outlives baton's runs: the listing is the answer.
    if (deviceFor(ctx, a, a.target)) return undefined;
    const limit = Math.min(timeoutMs, ASK_TARGET_MS);
    try {
      const t = await Promise.race([ctx.transportFor(a.target), new Promise<undefined>((r) => setTimeout(() => r(undefined), limit))]);
      if (!t) return undefined;
      const own = await ask(ctx, t, a.target, { ...lunFor(ctx, a, a.target), op: 'keys' }, limit);
      return own.ok ? own : undefined;
    } catch (e) {
      if (e instanceof UnreachableError) return undefined;
      return undefined;
    }
  }

  return {
    label: `SCSI PR (${a.portal ?? 'scsi_pr_portal'} ${a.iqn ?? 'scsi_pr_iqn'})`,
    async status(ctx, timeoutMs, asking = 'fenced') {
      const here = ctx.transport.host;
      const lun = lunFor(ctx, a, here);
      const r = await ask(ctx, null, here, { ...lun, op: 'keys' }, timeoutMs);
      if (!r.ok) throw new Error(`${labelOf(lun)}: READ KEYS from ${here} failed: ${r.error}`);
      const key = keyOfHost(ctx, a.target);
      const known = [...ctx.inventory.hosts.keys()].map((h) => keyOfHost(ctx, h));
      if (judge(key, r, asking, undefined, known) === 'off') return 'off';
      return judge(key, r, asking, await askTarget(ctx, timeoutMs), known);
    },
    async set(ctx, state: PowerState, timeoutMs) {
      const key = keyOfHost(ctx, a.target);
      if (state === 'off') {
        const here = ctx.transport.host;
        if (here === a.target) {
          // Only the revert of a node's own unfence gets here (fence refuses to run on its
          // target): the node drops its own registration through its own session.
          const lun = lunFor(ctx, a, here);
          const r = await ask(ctx, null, here, { ...lun, op: 'unregister' }, timeoutMs);
          if (!r.ok) throw new Error(`${labelOf(lun)}: ${here} could not remove its own registration: ${r.error}`);
          return;
        }
        const lun = lunFor(ctx, a, here);
        const own = keyOfHost(ctx, here);
        const r = await ask(ctx, null, here, { ...lun, op: 'preempt', key: own, victim: key, type }, timeoutMs);
        if (!r.ok) {
          const why =
            r.status === 'RESERVATION CONFLICT'
              ? `${here}'s own key ${own} is not registered through its session, so the target refuses its PREEMPT. A node that is itself fenced (or never unfenced) must not fence others: unfence ${here} first, or run the fence from another survivor`
              : r.error;
          throw new Error(`${labelOf(lun)}: ${here} could not preempt ${a.target}'s key ${key}: ${why}`);
        }
        return;
      }
      const lun = lunFor(ctx, a, a.target);
      const t = ctx.transport.host === a.target ? null : await ctx.transportFor(a.target);
      const r = await ask(ctx, t, a.target, { ...lun, op: 'register', key, type }, timeoutMs);
      if (!r.ok) throw new Error(`${labelOf(lun)}: ${a.target} could not register its key ${key} (as ${lun.initiator}): ${r.error}`);
    },
    commands(action) {
      const lun = lunFor(undefined, a, a.target);
      const q: PrRequest =
        action === 'off'
          ? { ...lun, initiator: '<initiator of the node running the step>', op: 'preempt', key: '<key of the node running the step>', victim: `<key of ${a.target}>`, type }
          : action === 'on'
            ? { ...lun, op: 'register', key: `<key of ${a.target}>`, type }
            : { ...lun, op: 'keys' };
      return a.device ? sgPersistArgv(q, a.device) : [agentArgv(a, q)];
    },
  };
}
