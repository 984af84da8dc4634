/**
 * failover_mac and release_mac without root: `ip -j link` parsed as iproute2 6.1 prints it, the
 * steps' argument schemas, and their decisions on a small simulated node whose links change as
 * the commands the steps run would change them (so apply, probe again and revert are judged on
 * the state they leave, not on the commands they send).
 */
import { describe, expect, it } from 'vitest';
import { linkShowArgv, parseIpLinkJson } from '../../src/facts/links.js';
import { CommandFailedError, StepRefusedError, type StepContext } from '../../src/steps/contract.js';
import { failoverMac, macHeldBy, setMacArgv } from '../../src/steps/failover-mac.js';
import { releaseMac } from '../../src/steps/release-mac.js';
import { checkRenderedArgs } from '../../src/engine/args-check.js';
import { defaultRegistry } from '../../src/steps/registry.js';
import type { ExecResult } from '../../src/transport/transport.js';

// Captured on a lab node (Debian 12, iproute2 6.1): a veth whose MAC was changed (veths have no permaddr).
const VETH_JSON =
  '[{"ifindex":3,"link":"b0","ifname":"fo1","flags":["BROADCAST","MULTICAST","M-DOWN"],"mtu":1500,"qdisc":"noop","operstate":"DOWN","linkmode":"DEFAULT","group":"default","txqlen":1000,"link_type":"ether","address":"02:00:00:00:00:99","broadcast":"ff:ff:ff:ff:ff:ff","promiscuity":0,"allmulti":0,"min_mtu":68,"max_mtu":65535,"linkinfo":{"info_kind":"veth"},"inet6_addr_gen_mode":"eui64","num_tx_queues":2,"num_rx_queues":2,"gso_max_size":65536,"gso_max_segs":65535,"tso_max_size":524280,"tso_max_segs":65535,"gro_max_size":65536}]';

const GROUP_MAC = '02:ba:12:c6:03:01';
const OWN_MAC = '02:ba:12:c6:04:21';

interface Link {
  address: string;
  up: boolean;
  permaddr?: string;
}

/** A node's links and ARP sysctls, changed by the commands the steps run. */
function simNode(links: Record<string, Link>, sysctls = '1\n2\n', vars: Record<string, unknown> = {}) {
  const ran: string[][] = [];
  const logs: string[] = [];
  const json = (names: string[]) =>
    JSON.stringify(names.map((n) => ({ ifname: n, flags: links[n]!.up ? ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'] : ['BROADCAST', 'MULTICAST'], address: links[n]!.address, ...(links[n]!.permaddr ? { permaddr: links[n]!.permaddr } : {}) })));
  const answer = (argv: string[]): Partial<ExecResult> => {
    if (argv.join(' ') === linkShowArgv().join(' ')) return { stdout: json(Object.keys(links)) };
    if (argv.slice(0, 6).join(' ') === 'ip -j -d link show dev') {
      const name = argv[6]!;
      return links[name] ? { stdout: json([name]) } : { code: 1, stderr: `Device "${name}" does not exist.\n` };
    }
    if (argv[0] === 'sh' && argv[3] === 'baton-set-mac') {
      const [, , , , name, mac, state] = argv as string[];
      links[name!] = { ...links[name!]!, address: mac!, up: state === 'up' };
      return {};
    }
    if (argv.join(' ').startsWith('ip link set dev ') && argv[5] === 'down') {
      links[argv[4]!]!.up = false;
      return {};
    }
    if (argv[0] === 'cat' && argv[1]?.endsWith('arp_ignore')) return { stdout: sysctls };
    throw new Error(`the simulated node does not know \`${argv.join(' ')}\``);
  };
  const ctx: StepContext = {
    host: { name: 'n2', vars, groups: ['all'] },
    transport: { host: 'n2', kind: 'ssh', connect: async () => {}, exec: async () => { throw new Error('unused'); }, close: async () => {} },
    inventory: { file: 'test', hosts: new Map(), groups: new Map() },
    vars: {},
    force: false,
    log: (m) => logs.push(m),
    transportFor: async () => { throw new Error('unused'); },
    markDown: () => {},
    async run(argv, opts = {}) {
      ran.push(argv);
      const r: ExecResult = { argv, code: 0, signal: null, stdout: '', stderr: '', timedOut: false, durationMs: 1, ...answer(argv) };
      if (!(opts.okCodes ?? [0]).includes(r.code!)) throw new CommandFailedError('n2', r);
      return r;
    },
  };
  return { ctx, links, ran, logs };
}

const A = { interface: 'fo1', mac: GROUP_MAC };

describe('ip -j link', () => {
  it('reads name, MAC (lower case), the UP flag and permaddr', () => {
    expect(parseIpLinkJson(VETH_JSON)).toEqual([{ name: 'fo1', address: '02:00:00:00:00:99', up: false }]);
    expect(parseIpLinkJson('[{"ifname":"eth1","flags":["BROADCAST","UP"],"address":"0A:00:00:00:00:01","permaddr":"00:1B:21:AA:BB:CC"}]')).toEqual([
      { name: 'eth1', address: '0a:00:00:00:00:01', up: true, permaddr: '00:1b:21:aa:bb:cc' },
    ]);
    expect(parseIpLinkJson('')).toEqual([]);
  });
});

describe('arguments', () => {
  const registry = defaultRegistry();
  it('failover_mac and release_mac take an interface and a MAC; anything else is refused before a node is touched', () => {
    expect(checkRenderedArgs(registry, 'failover_mac', A)).toBeUndefined();
    expect(checkRenderedArgs(registry, 'release_mac', { ...A, idle_mac: OWN_MAC })).toBeUndefined();
    expect(checkRenderedArgs(registry, 'release_mac', { ...A, idle_mac: '' })).toBeUndefined();
    expect(checkRenderedArgs(registry, 'failover_mac', { interface: 'fo1', mac: '02-ba-12-c6-03-01' })).toMatch(/\/mac must match pattern/);
    expect(checkRenderedArgs(registry, 'failover_mac', { interface: 'fo 1', mac: GROUP_MAC })).toMatch(/\/interface must match pattern/);
    expect(checkRenderedArgs(registry, 'failover_mac', { interface: 'fo1' })).toMatch(/must have required property 'mac'/);
    expect(checkRenderedArgs(registry, 'release_mac', { ...A, own: OWN_MAC })).toMatch(/must NOT have additional properties/);
  });

  it('values are arguments of the command, never shell text', () => {
    const argv = setMacArgv('fo1; reboot', '02:ba:12:c6:03:01', true);
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv[2]).not.toContain('fo1');
    expect(argv.slice(3)).toEqual(['baton-set-mac', 'fo1; reboot', '02:ba:12:c6:03:01', 'up']);
  });
});

describe('failover_mac', () => {
  it('gives the interface the group\'s MAC and brings it up; revert puts back its own MAC, down', async () => {
    const { ctx, links } = simNode({ eth0: { address: '02:ba:12:c6:01:02', up: true }, fo1: { address: OWN_MAC, up: false } });
    const before = await failoverMac.probe(ctx, A);
    expect(before).toEqual({ exists: true, address: OWN_MAC, up: false });
    expect(failoverMac.satisfied(before, A)).toBe(false);
    await failoverMac.preconditions!(ctx, A);
    await failoverMac.apply(ctx, A, before);
    const after = await failoverMac.probe(ctx, A);
    expect(failoverMac.satisfied(after, A)).toBe(true);
    expect(links.fo1).toEqual({ address: GROUP_MAC, up: true });
    expect(links.eth0!.address).toBe('02:ba:12:c6:01:02');
    await failoverMac.revert(ctx, A, before);
    expect(links.fo1).toEqual({ address: OWN_MAC, up: false });
    expect(failoverMac.restored!(before, await failoverMac.probe(ctx, A), A)).toBe(true);
  });

  it('refuses a node without the interface, naming the node and the interface', async () => {
    const { ctx } = simNode({ eth0: { address: '02:ba:12:c6:01:02', up: true } });
    const p = failoverMac.preconditions!(ctx, A);
    await expect(p).rejects.toBeInstanceOf(StepRefusedError);
    await expect(failoverMac.preconditions!(ctx, A)).rejects.toThrow('failover_mac: n2 has no interface fo1 to carry MAC 02:ba:12:c6:03:01');
  });

  it('refuses a node whose other interfaces would answer ARP for the VIP (arp_ignore 0), saying what to set; --force goes on', async () => {
    const node = simNode({ fo1: { address: OWN_MAC, up: false } }, '0\n0\n');
    await expect(failoverMac.preconditions!(node.ctx, A)).rejects.toThrow(/n2 has net\.ipv4\.conf\.all\.arp_ignore=0 and arp_announce=0 .*sysctl -w net\.ipv4\.conf\.all\.arp_ignore=1 net\.ipv4\.conf\.all\.arp_announce=2/);
    node.ctx.force = true;
    await failoverMac.preconditions!(node.ctx, A);
    expect(node.logs.join('\n')).toMatch(/arp_ignore=0 .*going on \(--force\)/);
  });

  it('a peer holds the MAC when an interface of its is up with it (whatever its name); down, it does not', async () => {
    const peer = simNode({ eth0: { address: '02:ba:12:c6:01:01', up: true }, fo9: { address: GROUP_MAC, up: true } });
    expect(await macHeldBy(peer.ctx, { mac: GROUP_MAC.toUpperCase() })).toBe(`has MAC ${GROUP_MAC} up on fo9`);
    peer.links.fo9!.up = false;
    expect(await macHeldBy(peer.ctx, A)).toBeNull();
    expect(failoverMac.resource!(A)).toBe(`mac ${GROUP_MAC}`);
    expect(releaseMac.resource!(A)).toBe(failoverMac.resource!(A));
  });
});

describe('release_mac', () => {
  it('takes the interface down with its own MAC from the node\'s failover_nics; revert brings the group\'s MAC back up', async () => {
    const { ctx, links } = simNode({ fo1: { address: GROUP_MAC, up: true } }, '1\n2\n', { failover_nics: { fo1: OWN_MAC.toUpperCase() } });
    const before = await releaseMac.probe(ctx, A);
    expect(before).toEqual({ exists: true, address: GROUP_MAC, up: true, idle: OWN_MAC });
    expect(releaseMac.satisfied(before, A)).toBe(false);
    await releaseMac.apply(ctx, A, before);
    expect(links.fo1).toEqual({ address: OWN_MAC, up: false });
    expect(releaseMac.satisfied(await releaseMac.probe(ctx, A), A)).toBe(true);
    await releaseMac.revert(ctx, A, before);
    expect(links.fo1).toEqual({ address: GROUP_MAC, up: true });
    expect(releaseMac.restored!(before, await releaseMac.probe(ctx, A), A)).toBe(true);
  });

  it('idle_mac wins; then the NIC\'s permaddr; with none, it only goes down (and says so)', async () => {
    const given = simNode({ fo1: { address: GROUP_MAC, up: true, permaddr: '00:1b:21:aa:bb:cc' } }, '1\n2\n', { failover_nics: { fo1: OWN_MAC } });
    expect((await releaseMac.probe(given.ctx, { ...A, idle_mac: '0A:00:00:00:00:01' })).idle).toBe('0a:00:00:00:00:01');
    const perm = simNode({ fo1: { address: GROUP_MAC, up: true, permaddr: '00:1b:21:aa:bb:cc' } });
    expect((await releaseMac.probe(perm.ctx, A)).idle).toBe('00:1b:21:aa:bb:cc');
    const none = simNode({ fo1: { address: GROUP_MAC, up: true } });
    const before = await releaseMac.probe(none.ctx, A);
    expect(before.idle).toBe('');
    await releaseMac.apply(none.ctx, A, before);
    expect(none.links.fo1).toEqual({ address: GROUP_MAC, up: false });
    expect(releaseMac.satisfied(await releaseMac.probe(none.ctx, A), A)).toBe(true);
    expect(none.logs.join('\n')).toContain('no own MAC known for fo1 on n2');
  });

  it('nothing to do where the MAC is not (another MAC, or no such interface)', async () => {
    const other = simNode({ fo1: { address: OWN_MAC, up: true } });
    expect(releaseMac.satisfied(await releaseMac.probe(other.ctx, A), A)).toBe(true);
    const missing = simNode({});
    expect(releaseMac.satisfied(await releaseMac.probe(missing.ctx, A), A)).toBe(true);
  });
});
