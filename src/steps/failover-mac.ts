import type { StepContext, StepKind } from './contract.js';
import { StepRefusedError } from './contract.js';
import { arpSysctlsArgv, ARP_ANNOUNCE, ARP_IGNORE, parseArpSysctls, readLink, readLinks } from '../facts/links.js';

/**
 * `failover_mac`: give this node's failover interface the service group's own MAC and bring it
 * up, so the VIP raised on it next answers with a MAC that moves with it: clients' ARP caches are
 * right before any gratuitous ARP arrives (NexentaStor's "failover MAC address"). The interface
 * is a spare NIC on the clients' segment that carries nothing else.
 *
 *   - failover_mac: { interface: fo1, mac: "02:00:5e:10:00:01" }
 *
 * Refused while a peer has an interface up with that MAC (two ports with one MAC on one segment
 * confuse every switch), and on a node whose other interfaces would answer ARP for the VIP too
 * (arp_ignore/arp_announce, see preconditions). Revert puts back the MAC and the up/down state
 * the interface had. Its release is `release_mac`.
 */
export interface FailoverMacArgs {
  interface: string;
  mac: string;
}

/** The failover interface as the step sees it. JSON: it is journaled. */
export interface MacObserved {
  exists: boolean;
  /** Lower-case MAC ('' when the interface does not exist). */
  address: string;
  up: boolean;
  /**
   * release_mac: the MAC the interface goes back to when it gives the group's up ('' when none is
   * known: then releasing only takes it down).
   */
  idle?: string;
}

export async function probeMac(ctx: StepContext, iface: string): Promise<MacObserved> {
  const link = await readLink(ctx, iface);
  return link ? { exists: true, address: link.address, up: link.up } : { exists: false, address: '', up: false };
}

/**
 * Set the MAC and the up/down state in one exec. Most NICs refuse a new address while up, so the
 * link goes down first when it is up; the address and `up` then go in one netlink request (the
 * kernel sets the address before the flags). The values are arguments, never shell text.
 */
const SET_MAC = 'ip link set dev "$1" down && ip link set dev "$1" address "$2" $3';

/** The revert of either MAC step: the interface back to the MAC and up/down state probe saw. */
export async function restoreMac(ctx: StepContext, iface: string, before: MacObserved): Promise<void> {
  if (!before.exists) return;
  const now = await probeMac(ctx, iface);
  if (now.address === before.address && now.up === before.up) return;
  await ctx.run(setMacArgv(iface, before.address, before.up));
}

export function setMacArgv(iface: string, mac: string, up: boolean): string[] {
  return ['sh', '-c', SET_MAC, 'baton-set-mac', iface, mac, up ? 'up' : 'down'];
}

export const macResource = (a: { mac: string }): string => `mac ${a.mac.toLowerCase()}`;

/** Does this peer have an interface up with the group's MAC? (Peers may name the interface otherwise.) */
export async function macHeldBy(peer: StepContext, a: { mac: string }): Promise<string | null> {
  const want = a.mac.toLowerCase();
  const holding = (await readLinks(peer)).filter((l) => l.up && l.address === want);
  return holding.length ? `has MAC ${want} up on ${holding.map((l) => l.name).join(', ')}` : null;
}

/**
 * Before the MAC goes up here (also before a release_mac is reverted): the interface exists, and
 * the node will not answer ARP for the VIP from its other interfaces. Linux answers ARP for any
 * local address on any interface unless arp_ignore >= 1, and asks for neighbours with the VIP as
 * sender from whichever interface it routes through unless arp_announce = 2: either would teach
 * clients eth0's MAC for the VIP, and the failover MAC would buy nothing.
 */
export async function macPreconditions(ctx: StepContext, a: FailoverMacArgs): Promise<void> {
  const host = ctx.transport.host;
  const [link, sysctls] = await Promise.all([readLink(ctx, a.interface), ctx.run(arpSysctlsArgv(), { okCodes: [0, 1] })]);
  if (!link) {
    throw new StepRefusedError(
      `failover_mac: ${host} has no interface ${a.interface} to carry MAC ${a.mac}: every node of the group needs its failover interface (a spare NIC on the clients' segment). ` +
        `Check the group's failover_interface, or the node's cabling.`,
    );
  }
  if (link.address === a.mac.toLowerCase() && link.up) return; // already ours: nothing to check
  const { arpIgnore, arpAnnounce } = parseArpSysctls(sysctls.stdout);
  if (!(arpIgnore >= 1 && arpAnnounce >= 2)) {
    const why =
      `${host} has net.ipv4.conf.all.arp_ignore=${Number.isNaN(arpIgnore) ? '?' : arpIgnore} and arp_announce=${Number.isNaN(arpAnnounce) ? '?' : arpAnnounce} (read from ${ARP_IGNORE} and ${ARP_ANNOUNCE}): ` +
      `its other interfaces would answer ARP for the VIP with their own MAC, so clients' caches would not follow the failover MAC`;
    if (ctx.force) {
      ctx.log(`failover_mac: ${why}; going on (--force)`);
      return;
    }
    throw new StepRefusedError(
      `failover_mac: ${why}. Set them on every node (sysctl -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2, and in /etc/sysctl.d to keep them), or pass --force.`,
    );
  }
}

export const failoverMac: StepKind<FailoverMacArgs, MacObserved> = {
  kind: 'failover_mac',
  inverse: 'release_mac',
  role: 'takeover',
  defaultTimeoutS: 20,
  resource: macResource,
  heldBy: macHeldBy,
  preconditions: macPreconditions,

  probe: (ctx, a) => probeMac(ctx, a.interface),

  satisfied(seen, a) {
    return seen.exists && seen.up && seen.address === a.mac.toLowerCase();
  },

  restored(before, now) {
    return now.exists === before.exists && now.address === before.address && now.up === before.up;
  },

  async apply(ctx, a) {
    await ctx.run(setMacArgv(a.interface, a.mac.toLowerCase(), true));
  },

  revert: (ctx, a, before) => restoreMac(ctx, a.interface, before),

  describe(a) {
    return { summary: `give ${a.interface} the failover MAC ${a.mac.toLowerCase()} and bring it up`, commands: [setMacArgv(a.interface, a.mac.toLowerCase(), true)] };
  },
};
