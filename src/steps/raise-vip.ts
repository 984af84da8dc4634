import type { StepContext, StepKind } from './contract.js';
import { StepRefusedError, batchedOk } from './contract.js';
import { runBatch } from '../transport/batch.js';
import { stopAnnouncing } from './garp.js';
import {
  canonicalAddress,
  boundedDuplicateCheckArgv,
  duplicateBoundMs,
  duplicateCheckArgv,
  findAddress,
  hostsWithMac,
  isIPv6,
  ndiscNotifyPath,
  parseBoundedDuplicateCheck,
  recalledArpingFlavour,
  rememberArpingFlavour,
  type DuplicateCheck,
  parseIpAddr,
  readAddresses,
  addrShowArgv,
  type IfAddress,
  readFileArgv,
  writeFileArgv,
} from '../facts/net.js';

/**
 * `raise_vip`: put a service address on this node's interface (`ip addr add`), after checking
 * that nobody else on the segment answers for it: a VIP on two nodes is split brain (FACTS.md).
 *
 *   - raise_vip: { address: "{{ vip }}", prefix: 24, interface: eth0 }
 *     register: vip_raised
 *
 * IPv6: the kernel runs DAD itself; the step waits until the address is no longer `tentative`
 * and fails (removing it again) on `dadfailed`.
 */
export interface VipArgs {
  address: string;
  prefix: number;
  interface: string;
  /** IPv4 label, e.g. eth0:nfs (must start with the interface name). */
  label?: string;
  /** Seconds to wait for IPv6 DAD (default 10). */
  dad_timeout?: number;
  /** ARP probes of the IPv4 duplicate check (default 1, bounded at 200 ms; each further probe adds arping's 1 s interval). */
  duplicate_probes?: number;
}

/** What is true of the VIP on this node's interface. JSON: it is journaled. */
export interface VipObserved {
  present: boolean;
  prefix?: number;
  label?: string;
  tentative?: boolean;
  dadfailed?: boolean;
}

export async function probeVip(ctx: StepContext, a: { address: string; interface: string }): Promise<VipObserved> {
  return vipSeen(await readAddresses(ctx, a.interface), a);
}

/** What probeVip makes of the interface's addresses (`ip -o addr show dev IFACE`). */
export function vipSeen(addresses: IfAddress[], a: { address: string; interface: string }): VipObserved {
  const found = findAddress(addresses, a.address);
  if (!found) return { present: false };
  const seen: VipObserved = { present: true, prefix: found.prefix };
  if (found.label !== undefined && found.label !== a.interface) seen.label = found.label;
  if (found.family === 'inet6') {
    seen.tentative = found.flags.includes('tentative');
    seen.dadfailed = found.flags.includes('dadfailed');
  }
  return seen;
}

export function addArgv(address: string, prefix: number, iface: string, label?: string): string[] {
  return ['ip', ...(isIPv6(address) ? ['-6'] : []), 'addr', 'add', `${address}/${prefix}`, 'dev', iface, ...(label && !isIPv6(address) ? ['label', label] : [])];
}

export function delArgv(address: string, prefix: number, iface: string): string[] {
  return ['ip', ...(isIPv6(address) ? ['-6'] : []), 'addr', 'del', `${address}/${prefix}`, 'dev', iface];
}

/** Remove the address if it is there (any prefix): idempotent, safe when apply never ran. */
export async function removeVip(ctx: StepContext, address: string, iface: string): Promise<void> {
  const seen = await probeVip(ctx, { address, interface: iface });
  if (seen.present) await ctx.run(delArgv(address, seen.prefix!, iface));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Add an IPv6 address and wait out DAD. The kernel announces the address itself (one
 * unsolicited NA with the override flag, seen here with tcpdump) when DAD completes if
 * `ndisc_notify` is set on the interface: set it around the add when it is not, then put it back.
 */
async function addIPv6(ctx: StepContext, a: VipArgs): Promise<void> {
  const notifyPath = ndiscNotifyPath(a.interface);
  const notify = (await ctx.run(readFileArgv(notifyPath), { okCodes: [0, 1] }));
  const wasOff = notify.code === 0 && notify.stdout.trim() === '0';
  if (wasOff) await ctx.run(writeFileArgv(notifyPath, '1'));
  try {
    await ctx.run(addArgv(a.address, a.prefix, a.interface));
    const timeoutS = a.dad_timeout ?? 10;
    const deadline = Date.now() + timeoutS * 1000;
    for (;;) {
      const seen = await probeVip(ctx, a);
      if (seen.dadfailed) {
        await removeVip(ctx, a.address, a.interface);
        throw new StepRefusedError(
          `raise_vip: duplicate address detection failed for ${a.address} on ${a.interface} of ${ctx.transport.host}: ` +
            `another node on the link already holds it. Lower it there first (lower_vip), or fence that node. The address was removed again.`,
        );
      }
      if (!seen.present) throw new Error(`raise_vip: ${a.address} vanished from ${a.interface} of ${ctx.transport.host} during DAD`);
      if (!seen.tentative) return;
      if (Date.now() >= deadline) {
        throw new Error(
          `raise_vip: ${a.address} was still tentative (DAD not finished) on ${ctx.transport.host} after ${timeoutS} s; ` +
            `check net.ipv6.conf.${a.interface}.dad_transmits/retrans_time_ms, or raise dad_timeout`,
        );
      }
      await sleep(100);
    }
  } finally {
    if (wasOff) await ctx.run(writeFileArgv(notifyPath, '0')).catch(() => undefined);
  }
}

/** What the duplicate check saw, and when it finished (controller clock). */
export interface DuplicateSeen {
  check: DuplicateCheck;
  doneAt: number;
}

/** One bounded probe of the wire: flavour (the first time on a connection) and arping in a single exec (see facts/net.ts). */
export async function probeWire(ctx: StepContext, a: VipArgs): Promise<DuplicateSeen> {
  const argv = boundedDuplicateCheckArgv(a.interface, a.address, a.duplicate_probes, recalledArpingFlavour(ctx));
  const r = await ctx.run(argv, { timeoutMs: duplicateBoundMs(a.duplicate_probes) + 10_000 });
  const check = parseBoundedDuplicateCheck(r.stdout, r.stderr);
  rememberArpingFlavour(ctx, check.flavour);
  return { check, doneAt: Date.now() };
}

/**
 * How old a probe started early (prepare) may be when the address goes up. The probe runs right
 * after the old holder lowered the VIP, in parallel with the storage steps; an answer older than
 * this is not trusted and the wire is probed again (another 200 ms), so the window in which a
 * host outside the inventory could take the address unseen stays this short.
 */
export const PREPARED_PROBE_MAX_AGE_MS = 2000;

/**
 * Refuse when another node answers ARP for the VIP. The error names the MAC and, when the
 * inventory gives hosts a `mac` var, the host.
 */
function judgeDuplicateCheck(ctx: StepContext, a: VipArgs, check: DuplicateCheck): void {
  const { flavour, verdict } = check;
  if (flavour === 'none' || flavour === 'unknown') {
    if (ctx.force) {
      ctx.log(`raise_vip: no usable arping on ${ctx.transport.host}: duplicate check skipped (--force)`);
      return;
    }
    throw new StepRefusedError(
      `raise_vip: cannot check that nobody else holds ${a.address}: ${flavour === 'none' ? 'arping is not installed' : 'arping is of an unknown kind'} on ${ctx.transport.host}. ` +
        `Install iputils-arping, or pass --force if you know the address is free.`,
    );
  }
  if (verdict === 'free') return;
  if (verdict === 'error') {
    throw new Error(
      `raise_vip: the duplicate check for ${a.address} failed on ${ctx.transport.host}: \`${duplicateCheckArgv(flavour, a.interface, a.address, a.duplicate_probes).join(' ')}\` ` +
        `exited ${check.code ?? 'without a status'}: ${check.output}. Check that interface ${a.interface} exists and is up.`,
    );
  }
  const who = check.macs.map((m) => {
    const hosts = hostsWithMac(ctx.inventory, m);
    return hosts.length ? `${m} (${hosts.join(', ')})` : `${m} (not in the inventory)`;
  });
  const holder = who.length ? who.join(', ') : 'an unknown MAC';
  if (ctx.force) {
    ctx.log(`raise_vip: ${a.address} is answered by ${holder}; raising anyway (--force)`);
    return;
  }
  throw new StepRefusedError(
    `raise_vip: ${a.address} is already answered on ${a.interface}'s segment by ${holder}; raising it on ${ctx.transport.host} would be split brain. ` +
      `Lower it there (lower_vip) or fence that node first, or pass --force if you are sure.`,
  );
}

/**
 * The probe started early by the engine, when it is recent and says "free"; otherwise (none,
 * failed, stale, or it saw an answer that may have been the old holder's last) a fresh probe.
 */
async function wireSeen(ctx: StepContext, a: VipArgs, prepared?: Promise<unknown>): Promise<DuplicateCheck> {
  if (prepared) {
    const early = (await prepared.catch(() => undefined)) as DuplicateSeen | undefined;
    const age = early ? Date.now() - early.doneAt : Infinity;
    if (early && early.check.verdict === 'free' && age <= PREPARED_PROBE_MAX_AGE_MS) {
      ctx.log(`raise_vip: nobody answered for ${a.address} ${age} ms ago (probe started after the release)`);
      return early.check;
    }
  }
  return (await probeWire(ctx, a)).check;
}

/** The key raise and lower share: one service address, on whichever node. */
export const vipResource = (a: { address: string }): string => `vip ${canonicalAddress(a.address)}`;

/** Does this node have the address on any interface? (Peers may name their interfaces otherwise.) */
export async function vipHeldBy(peer: StepContext, a: { address: string }): Promise<string | null> {
  const found = findAddress(parseIpAddr((await peer.run(['ip', '-o', 'addr', 'show'], { shared: true })).stdout), a.address);
  return found ? `has ${a.address} on ${found.iface}` : null;
}

/** Before an address goes up here: nobody on the segment may answer for it (unless this node already does). */
export async function vipPreconditions(ctx: StepContext, a: VipArgs, prepared?: Promise<unknown>): Promise<void> {
  if (isIPv6(a.address)) return; // the kernel's DAD decides, in addIPv6
  // Both read-only: look at the wire (or take the early look) while reading this node's addresses.
  const [here, wire] = await Promise.all([probeVip(ctx, a), wireSeen(ctx, a, prepared)]);
  if (here.present) return;
  judgeDuplicateCheck(ctx, a, wire);
}

/** Started by the engine once the old holder released the VIP (or was fenced): the wire probe, off the critical path. */
export async function vipPrepare(ctx: StepContext, a: VipArgs): Promise<DuplicateSeen | undefined> {
  if (isIPv6(a.address)) return undefined;
  return probeWire(ctx, a);
}

/** Held or not is what a revert restores, with the prefix it had. */
export const vipRestored = (before: VipObserved, now: VipObserved): boolean =>
  before.present === now.present && (!before.present || (now.prefix === before.prefix && !now.tentative));

export async function addVip(ctx: StepContext, a: VipArgs): Promise<void> {
  if (isIPv6(a.address)) await addIPv6(ctx, a);
  else await ctx.run(addArgv(a.address, a.prefix, a.interface, a.label));
}

/** IPv4: add, then read the interface back in the same exec (the step's probe, one round trip less). */
async function addVipAndProbe(ctx: StepContext, a: VipArgs): Promise<VipObserved | undefined> {
  if (isIPv6(a.address)) {
    await addIPv6(ctx, a);
    return undefined;
  }
  const add = addArgv(a.address, a.prefix, a.interface, a.label);
  const [added, shown] = await runBatch((argv, o) => ctx.run(argv, o), [{ argv: add }, { argv: addrShowArgv(a.interface) }]);
  batchedOk(ctx.transport.host, added, add);
  return shown?.code === 0 ? vipSeen(parseIpAddr(shown.stdout), a) : undefined;
}

export const raiseVip: StepKind<VipArgs, VipObserved> = {
  kind: 'raise_vip',
  inverse: 'lower_vip',
  role: 'takeover',
  // IPv6 DAD waits up to dad_timeout (10 s); the ARP probe is bounded too.
  defaultTimeoutS: (a) => (a.dad_timeout ?? 10) + 20,
  resource: vipResource,
  heldBy: vipHeldBy,
  preconditions: vipPreconditions,
  prepare: vipPrepare,
  restored: vipRestored,

  probe: (ctx, a) => probeVip(ctx, a),

  satisfied(seen, a) {
    return seen.present && seen.prefix === a.prefix && !seen.tentative && !seen.dadfailed && (a.label === undefined || isIPv6(a.address) || seen.label === a.label);
  },

  async apply(ctx, a, before) {
    // The duplicate check ran in preconditions (the engine calls them on every path).
    if (before.present) {
      // Here already, but with another prefix/label, or a leftover dadfailed copy: replace it.
      await removeVip(ctx, a.address, a.interface);
    }
    return addVipAndProbe(ctx, a);
  },

  async revert(ctx, a, before) {
    const now = await probeVip(ctx, a);
    if (!before.present) {
      // A garp that followed this raise may still be announcing us: stop it before giving up the address.
      await stopAnnouncing(ctx, a.address, a.interface);
      if (now.present) await ctx.run(delArgv(a.address, now.prefix!, a.interface));
      return;
    }
    if (now.present && now.prefix === before.prefix && now.label === before.label && !now.tentative) return;
    if (now.present) await ctx.run(delArgv(a.address, now.prefix!, a.interface));
    await addVip(ctx, { ...a, prefix: before.prefix!, label: before.label });
  },

  describe(a) {
    const commands = isIPv6(a.address)
      ? [addArgv(a.address, a.prefix, a.interface)]
      : [['timeout', (duplicateBoundMs(a.duplicate_probes) / 1000).toFixed(3), ...duplicateCheckArgv('iputils', a.interface, a.address, a.duplicate_probes)], addArgv(a.address, a.prefix, a.interface, a.label)];
    return { summary: `raise ${a.address}/${a.prefix} on ${a.interface}`, commands };
  },
};
