/**
 * The lab's wiring: a switch namespace with one bridge, a veth per node/client into it, and the
 * controller's veth from the host namespace. Only addresses of the lab's /24 are ever set, and
 * only on interfaces of namespaces the lab made (plus the controller veth).
 */
import { run, runRaw, tryRun } from './exec.js';
import type { LabPlan, NodePlan } from './plan.js';

export async function listNetns(): Promise<string[]> {
  const r = await runRaw(['ip', '-o', 'netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

/** Namespaces named with this lab's prefix (lab names contain no '-', so this is exact). */
export async function labNetns(prefix: string): Promise<string[]> {
  return (await listNetns()).filter((n) => n.startsWith(prefix) && !n.slice(prefix.length).includes('-'));
}

export async function linkExists(name: string, netns?: string): Promise<boolean> {
  const argv = netns ? ['ip', '-n', netns, 'link', 'show', 'dev', name] : ['ip', 'link', 'show', 'dev', name];
  return (await runRaw(argv)).code === 0;
}

export async function netnsPids(netns: string): Promise<number[]> {
  const r = await runRaw(['ip', 'netns', 'pids', netns]);
  return r.stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
}

const onFailure = 'stopped building the lab; run `baton lab down --name NAME` (or `baton lab up` again) to clear what was made';

/** Switch namespace, bridge and the controller veth with the lab's .1 address. */
export async function makeSwitch(plan: LabPlan): Promise<void> {
  const sw = plan.switchNetns;
  const o = { where: `switch ${sw}`, onFailure };
  await run(['ip', 'netns', 'add', sw], o);
  await run(['ip', '-n', sw, 'link', 'set', 'lo', 'up'], o);
  // STP off and no forward delay: ports forward at once, so a booted node is reachable at once.
  await run(['ip', '-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0'], o);
  await run(['ip', '-n', sw, 'link', 'set', 'br0', 'up'], o);
  const c = { where: `controller veth ${plan.controllerIf}`, onFailure };
  await run(['ip', 'link', 'add', plan.controllerIf, 'type', 'veth', 'peer', 'name', 'ctl', 'netns', sw], c);
  await run(['ip', '-n', sw, 'link', 'set', 'ctl', 'master', 'br0', 'up'], c);
  // The host side speaks IPv4 to the lab only; no IPv6 chatter from the host into the lab.
  await tryRun(['sysctl', '-q', '-w', `net.ipv6.conf.${plan.controllerIf}.disable_ipv6=1`]);
  await run(['ip', 'addr', 'add', `${plan.controllerAddress}/${plan.prefixLength}`, 'dev', plan.controllerIf], c);
  await run(['ip', 'link', 'set', plan.controllerIf, 'up'], c);
}

/**
 * A namespace plugged into the switch: eth0 (with a fixed MAC) inside it, the peer on the bridge.
 * The address is not set here for nodes: power on sets it, power off flushes it.
 */
export async function plugNetns(
  plan: LabPlan,
  m: { name: string; netns: string; switchPort: string; mac: string },
  where: string,
): Promise<void> {
  const o = { where, onFailure };
  await run(['ip', 'netns', 'add', m.netns], o);
  await run(['ip', '-n', m.netns, 'link', 'set', 'lo', 'up'], o);
  await run(
    ['ip', 'link', 'add', 'eth0', 'netns', m.netns, 'address', m.mac, 'type', 'veth', 'peer', 'name', m.switchPort, 'netns', plan.switchNetns],
    o,
  );
  await run(['ip', '-n', plan.switchNetns, 'link', 'set', m.switchPort, 'master', 'br0', 'up'], o);
}

/**
 * A node's spare failover NICs: a veth each (its own MAC, down) into the switch, and the ARP
 * sysctls a failover MAC needs on the node (failover_mac refuses without them): only the
 * interface that has an address answers ARP for it, and asks for neighbours from its own address.
 * Loose reverse-path filtering: replies to the VIP may arrive on the failover NIC while the route
 * back to a client goes through eth0. No IPv6 on them (no link-local chatter from a spare NIC).
 */
export async function plugFailoverNics(plan: LabPlan, node: NodePlan): Promise<void> {
  if (!node.failoverNics.length) return;
  const o = { where: `node ${node.name} failover NICs`, onFailure };
  const inNode = (argv: string[]) => run(['ip', 'netns', 'exec', node.netns, ...argv], o);
  await inNode(['sysctl', '-q', '-w', 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2', 'net.ipv4.conf.all.rp_filter=2']);
  for (const nic of node.failoverNics) {
    await run(['ip', 'link', 'add', nic.name, 'netns', node.netns, 'address', nic.mac, 'type', 'veth', 'peer', 'name', nic.switchPort, 'netns', plan.switchNetns], o);
    await inNode(['sysctl', '-q', '-w', `net.ipv6.conf.${nic.name}.disable_ipv6=1`]);
    await run(['ip', '-n', plan.switchNetns, 'link', 'set', nic.switchPort, 'master', 'br0', 'up'], o);
  }
}

export async function setAddressUp(netns: string, address: string, prefixLength: number, where: string): Promise<void> {
  const o = { where };
  await run(['ip', '-n', netns, 'link', 'set', 'lo', 'up'], o);
  await run(['ip', '-n', netns, 'addr', 'flush', 'dev', 'eth0'], o);
  await run(['ip', '-n', netns, 'addr', 'add', `${address}/${prefixLength}`, 'dev', 'eth0'], o);
  await run(['ip', '-n', netns, 'link', 'set', 'eth0', 'up'], o);
}

export interface AddrInfo {
  address: string;
  prefixlen: number;
}

/** IPv4 addresses on eth0 of a namespace, and whether the link is up. */
export async function netnsAddresses(netns: string): Promise<{ up: boolean; addresses: AddrInfo[] }> {
  const r = await runRaw(['ip', '-n', netns, '-j', 'addr', 'show', 'dev', 'eth0']);
  if (r.code !== 0) return { up: false, addresses: [] };
  try {
    const j = JSON.parse(r.stdout) as Array<{ flags?: string[]; operstate?: string; addr_info?: Array<{ family: string; local: string; prefixlen: number }> }>;
    const link = j[0];
    return {
      up: (link?.flags ?? []).includes('UP'),
      addresses: (link?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => ({ address: a.local, prefixlen: a.prefixlen })),
    };
  } catch {
    return { up: false, addresses: [] };
  }
}
