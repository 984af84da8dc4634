/**
 * Link facts: a node's interfaces, their MAC addresses and whether they are up, read from
 * `ip -j -d link` (JSON, so no column guessing), and the ARP sysctls that decide which interface
 * answers for an address. Pure argv builders and parsers plus readers through a StepContext;
 * nothing here changes a node.
 */
import type { StepContext } from '../steps/contract.js';

export interface LinkInfo {
  name: string;
  /** Lower-case MAC; '' for links without one (lo has 00:00:…, a tunnel none). */
  address: string;
  /** Administratively up (the UP flag), whatever the carrier says. */
  up: boolean;
  /** The NIC's factory address when the kernel knows one and it differs (physical NICs; veths have none). */
  permaddr?: string;
}

export function linkShowArgv(iface?: string): string[] {
  return ['ip', '-j', '-d', 'link', 'show', ...(iface ? ['dev', iface] : [])];
}

/** Parse `ip -j [-d] link show`; throws on output that is not its JSON (an old iproute2 without -j). */
export function parseIpLinkJson(stdout: string): LinkInfo[] {
  const text = stdout.trim();
  if (!text) return [];
  const rows = JSON.parse(text) as Array<{ ifname?: string; address?: string; flags?: string[]; permaddr?: string }>;
  return rows
    .filter((r) => typeof r.ifname === 'string')
    .map((r) => {
      const l: LinkInfo = { name: r.ifname!, address: (r.address ?? '').toLowerCase(), up: (r.flags ?? []).includes('UP') };
      if (r.permaddr) l.permaddr = r.permaddr.toLowerCase();
      return l;
    });
}

/** One interface of the node where the step runs; undefined when there is no such device. */
export async function readLink(ctx: StepContext, iface: string): Promise<LinkInfo | undefined> {
  // ip exits 1 ("Device "fo1" does not exist.") for a missing device: that is an answer, not a failure.
  const r = await ctx.run(linkShowArgv(iface), { okCodes: [0, 1] });
  if (r.code !== 0) {
    if (/does not exist/i.test(r.stderr)) return undefined;
    throw new Error(`on ${ctx.transport.host}: \`${linkShowArgv(iface).join(' ')}\` exited ${r.code}: ${r.stderr.trim()}`);
  }
  return parseIpLinkJson(r.stdout).find((l) => l.name === iface);
}

/** Every interface of the node. */
export async function readLinks(ctx: StepContext): Promise<LinkInfo[]> {
  return parseIpLinkJson((await ctx.run(linkShowArgv())).stdout);
}

/**
 * The sysctls that keep the node's other interfaces from answering ARP for the VIP with their own
 * MAC (Linux answers for any local address on any interface by default: "ARP flux"), and from
 * asking for neighbours from eth0 with the VIP as sender, which would also teach clients eth0's MAC.
 */
export const ARP_IGNORE = '/proc/sys/net/ipv4/conf/all/arp_ignore';
export const ARP_ANNOUNCE = '/proc/sys/net/ipv4/conf/all/arp_announce';

export function arpSysctlsArgv(): string[] {
  return ['cat', ARP_IGNORE, ARP_ANNOUNCE];
}

export function parseArpSysctls(stdout: string): { arpIgnore: number; arpAnnounce: number } {
  const [ignore = 'NaN', announce = 'NaN'] = stdout.trim().split(/\s+/);
  return { arpIgnore: Number(ignore), arpAnnounce: Number(announce) };
}
