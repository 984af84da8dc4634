/**
 * `baton status` without a lab: one node's read (captured on a lab node running nfs-a and
 * nfs-d) parsed, and the verdicts judged from node reads built to match what the nodes would
 * print: running on the home, split over two nodes, partial with the export missing, stopped,
 * unknown behind an unreachable node, and the exit codes on-call reads.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StepContext } from '../../src/steps/contract.js';
import { bmcFor } from '../../src/steps/fence.js';
import { bmcOf, judgeCluster, nodeViewArgv, observeGroups, parseNodeView, POWERED_OFF_GRACE_MS, type NodeObservation } from '../../src/facts/groups.js';
import type { Inventory } from '../../src/inventory/model.js';
import type { ServiceGroup } from '../../src/inventory/services.js';
import type { ExecResult, Transport } from '../../src/transport/transport.js';
import { UnreachableError } from '../../src/transport/transport.js';

const LAB = '/var/lib/baton-lab/grpst/disks';
const captured = readFileSync(path.resolve('test/unit/fixtures/node-view-n1.txt'), 'utf8');

function group(letter: string, i: number, nodes: string[], more: Partial<ServiceGroup> = {}): ServiceGroup {
  return {
    name: `nfs-${letter}`,
    vip: { address: `198.18.190.${199 + i}`, prefix: 24 },
    volume: { provider: 'loop', image: `${LAB}/disk${i}.img` },
    mount: { path: `/srv/disk${i}`, fstype: 'ext4' },
    nfsExports: [{ path: `/srv/disk${i}`, pseudo: `/disk${i}`, fsid: 100 + i, exportId: 100 + i }],
    iscsiTargets: [],
    nodes,
    home: nodes[0]!,
    lock: `service-nfs-${letter}`,
    implied: false,
    ...more,
  };
}

const GROUPS = [group('a', 1, ['n1', 'n2', 'n3']), group('b', 2, ['n2', 'n3', 'n1']), group('c', 3, ['n3', 'n1', 'n2']), group('d', 4, ['n1', 'n2', 'n3'])];

/** What the node-view script prints on a node holding the given disks (every part unless left out). */
function viewText(o: { vips?: number[]; claims?: number[]; mounts?: number[]; exports?: number[] }): string {
  const addr = (o.vips ?? []).map((i) => `2: eth0    inet 198.18.190.${199 + i}/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever`);
  const loops = [1, 2, 3, 4].map((i) => `{"name": "/dev/loop${i - 1}", "back-file": "${LAB}/disk${i}.img"}`);
  const claims = (o.claims ?? []).map((i) => `/run/baton/loop/loop${i - 1}:${LAB}/disk${i}.img`);
  const mounts = (o.mounts ?? []).map((i, k) => `${200 + k} 184 7:${i - 1} / /srv/disk${i} rw,relatime - ext4 /dev/loop${i - 1} rw`);
  const exports = (o.exports ?? []).map((i) => `      struct {\n         uint16 ${100 + i}\n         string "/srv/disk${i}"\n      }`);
  return [
    '2: eth0    inet 198.18.190.12/24 scope global eth0\\       valid_lft forever preferred_lft forever',
    ...addr,
    '',
    '--baton--loops',
    `{"loopdevices": [${loops.join(',')}]}`,
    '',
    '--baton--claims',
    ...claims,
    '',
    '--baton--mountinfo',
    '184 56 254:0 /var/lib/baton-lab/grpst/nodes/n2/disk/srv /srv rw,relatime - ext4 /dev/vda rw',
    ...mounts,
    '',
    '--baton--ganesha',
    'method return time=1 sender=:1.0 -> destination=:1.13 serial=31 reply_serial=2',
    '   array [',
    '      struct {\n         uint16 0\n         string "/"\n      }',
    ...exports,
    '   ]',
    '--baton--kernel',
    '--baton--zfs',
    '--baton--lvm',
    '',
  ].join('\n');
}

const whole = (...ids: number[]) => ({ vips: ids, claims: ids, mounts: ids, exports: ids });
const node = (name: string, text?: string, more: Partial<NodeObservation> = {}): NodeObservation => ({
  name,
  reachable: text !== undefined,
  power: 'on',
  ...(text !== undefined ? { view: parseNodeView(text) } : {}),
  ...more,
});

describe('reading a node', () => {
  it('one exec: a constant script; the claim dir, whether to read links, and nfsd\'s thread count as its arguments', () => {
    const argv = nodeViewArgv();
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv.slice(3)).toEqual(['baton-node-view', '/run/baton/loop', '-', '/proc/fs/nfsd/threads']);
  });

  it('parses what a lab node printed: its VIPs, the loop devices it claims, its mounts, Ganesha\'s exports', () => {
    const v = parseNodeView(captured);
    expect(v.addresses.filter((a) => a.family === 'inet').map((a) => a.address)).toEqual(['127.0.0.1', '198.18.190.11', '198.18.190.200', '198.18.190.203']);
    expect(v.storage.loops.map((l) => l.name).sort()).toEqual(['/dev/loop0', '/dev/loop2', '/dev/loop3', '/dev/loop4']);
    expect(v.storage.claims).toEqual([
      { device: '/dev/loop4', image: `${LAB}/disk4.img` },
      { device: '/dev/loop0', image: `${LAB}/disk1.img` },
    ]);
    expect(v.storage.mounts.filter((m) => m.mountPoint.startsWith('/srv/')).map((m) => `${m.mountPoint} ${m.source}`)).toEqual(['/srv/disk1 /dev/loop0', '/srv/disk4 /dev/loop4']);
    expect(v.ganeshaExports).toEqual(['/srv/disk1', '/srv/disk4']);
    expect(v.kernelExports).toEqual([]);
    expect(v.zpools).toEqual([]);
  });

  it('the captured node runs nfs-a and nfs-d whole, and nothing of nfs-b or nfs-c', () => {
    const s = judgeCluster(GROUPS, [node('n1', captured), node('n2', viewText({})), node('n3', viewText({}))]);
    expect(s.groups.map((g) => `${g.name}: ${g.summary}`)).toEqual(['nfs-a: running on n1', 'nfs-b: stopped', 'nfs-c: stopped', 'nfs-d: running on n1']);
  });
});

describe('judging the groups', () => {
  it('every group whole on one node: running, exit 0; a group away from home says so', () => {
    const s = judgeCluster(GROUPS, [node('n1', viewText(whole(1))), node('n2', viewText(whole(2, 4))), node('n3', viewText(whole(3)))]);
    expect(s.groups.map((g) => [g.name, g.state, g.nodes, g.summary])).toEqual([
      ['nfs-a', 'running', ['n1'], 'running on n1'],
      ['nfs-b', 'running', ['n2'], 'running on n2'],
      ['nfs-c', 'running', ['n3'], 'running on n3'],
      ['nfs-d', 'running', ['n2'], 'running on n2 (home n1)'],
    ]);
    expect(s.exitCode).toBe(0);
  });

  it('the VIP raised by hand on a second node: SPLIT naming both nodes, exit 2', () => {
    const s = judgeCluster(GROUPS, [node('n1', viewText(whole(1, 4))), node('n2', viewText({ ...whole(2), vips: [2, 1] })), node('n3', viewText(whole(3)))]);
    const a = s.groups[0]!;
    expect(a.state).toBe('split');
    expect(a.nodes).toEqual(['n1', 'n2']);
    expect(a.summary).toBe('SPLIT on n1 and n2 (VIP on n1 and n2; volume on n1; mount on n1; export on n1)');
    expect(a.parts).toEqual({ vip: ['n1', 'n2'], volume: ['n1'], mount: ['n1'], export: ['n1'] });
    expect(s.exitCode).toBe(2);
  });

  it('the export stopped: partial on its node, naming what is missing, exit 1', () => {
    const s = judgeCluster(GROUPS, [node('n1', viewText({ ...whole(1, 4), exports: [1] })), node('n2', viewText(whole(2))), node('n3', viewText(whole(3)))]);
    const d = s.groups[3]!;
    expect([d.state, d.nodes, d.missing, d.summary]).toEqual(['partial', ['n1'], ['export missing'], 'partial on n1 (export missing)']);
    expect(s.exitCode).toBe(1);
  });

  it('one of two exports missing: partial, naming the path', () => {
    const g = group('e', 1, ['n1'], {
      nfsExports: [
        { path: '/srv/disk1', pseudo: '/disk1', fsid: 101, exportId: 101 },
        { path: '/srv/disk1/sub', pseudo: '/sub', fsid: 111, exportId: 111 },
      ],
    });
    const s = judgeCluster([g], [node('n1', viewText(whole(1)))]);
    expect(s.groups[0]!.summary).toBe('partial on n1 (export /srv/disk1/sub missing)');
  });

  it('a lone mount left behind is the group on that node, partial; mounts on two nodes are a split', () => {
    const left = judgeCluster([GROUPS[1]!], [node('n2', viewText({ mounts: [2] })), node('n3', viewText({}))]);
    expect(left.groups[0]!.summary).toBe('partial on n2 (VIP missing, volume missing, export missing)');
    const two = judgeCluster([GROUPS[1]!], [node('n2', viewText({ mounts: [2], claims: [2] })), node('n3', viewText({ mounts: [2] }))]);
    expect(two.groups[0]!.summary).toBe('SPLIT on n2 and n3 (volume on n2; mount on n2 and n3)');
  });

  it('a node off (BMC says off): its groups are stopped, not unknown; the cluster is degraded (exit 1)', () => {
    const s = judgeCluster(GROUPS, [node('n1', viewText(whole(1, 4))), node('n2', undefined, { power: 'off', error: 'timed out while connecting' }), node('n3', viewText(whole(3)))]);
    expect(s.groups[1]!.summary).toBe('stopped');
    expect(s.groups[1]!.unknownNodes).toEqual([]);
    expect(s.exitCode).toBe(1);
  });

  it('a node unreachable with its power unknown: a group not seen elsewhere is unknown, and the others say who could not be read', () => {
    const s = judgeCluster(GROUPS, [node('n1', viewText(whole(1, 4))), node('n2', undefined, { power: 'unknown' }), node('n3', viewText(whole(3)))]);
    expect(s.groups.map((g) => g.summary)).toEqual([
      'running on n1; n2 could not be read',
      'unknown: not seen on the nodes read; n2 could not be read',
      'running on n3; n2 could not be read',
      'running on n1; n2 could not be read',
    ]);
    expect(s.exitCode).toBe(1);
  });

  it('ZFS and LVM volumes: held where the pool is imported, where an LV of the group is active', () => {
    const zfs = group('z', 1, ['n1', 'n2'], { volume: { provider: 'zfs', pool: 'tank' }, mount: undefined, nfsExports: [] });
    const lvm = group('l', 2, ['n2', 'n1'], { volume: { provider: 'lvm', vg: 'vg0', device: '/dev/vg0/lv0' }, mount: undefined, nfsExports: [] });
    const text = (zpools: string, lvs: string, vips: number[]) =>
      viewText({ vips }).replace('--baton--zfs\n', `--baton--zfs\n${zpools}\n`).replace('--baton--lvm\n', `--baton--lvm\n${lvs}\n`);
    const s = judgeCluster([zfs, lvm], [node('n1', text('tank', '  vg0|         \n', [1])), node('n2', text('', '  vg0|active\n  vg0|      \n', [2]))]);
    expect(s.groups.map((g) => g.summary)).toEqual(['running on n1', 'running on n2']);
  });
});

describe('a group with a failover MAC', () => {
  const MAC = '02:00:5e:10:00:01';
  const withMac = group('m', 1, ['n1', 'n2'], { mac: MAC, failoverInterface: 'fo1', interface: 'fo1' });
  /** The node-view text with the links section as `ip -j link show` prints it. */
  const text = (vips: number[], links: Array<{ ifname: string; address: string; up: boolean }>, parts = true) =>
    `${viewText(parts ? whole(...vips) : { vips })}--baton--links\n${JSON.stringify(links.map((l) => ({ ifname: l.ifname, address: l.address, flags: l.up ? ['BROADCAST', 'UP'] : ['BROADCAST'] })))}\n`;
  const fo1 = (address: string, up: boolean) => ({ ifname: 'fo1', address, up });
  const idle = (n: number) => fo1(`02:00:00:00:00:0${n}`, true);

  it('running where the VIP and the group\'s MAC (on a link that is up) are', () => {
    const s = judgeCluster([withMac], [node('n1', text([1], [fo1(MAC, true)])), node('n2', text([], [idle(2)]))]);
    expect([s.groups[0]!.summary, s.groups[0]!.parts.mac, s.exitCode]).toEqual(['running on n1', ['n1'], 0]);
  });

  it('the VIP without the MAC: partial, naming the failover MAC (clients that cached the MAC reach nobody)', () => {
    const s = judgeCluster([withMac], [node('n1', text([1], [idle(1)])), node('n2', text([], [idle(2)]))]);
    expect([s.groups[0]!.state, s.groups[0]!.summary, s.exitCode]).toEqual(['partial', 'partial on n1 (failover MAC missing)', 1]);
  });

  it('the MAC still up on the node the group left: SPLIT naming both (two ports answer for one MAC), exit 2', () => {
    const s = judgeCluster([withMac], [node('n1', text([1], [fo1(MAC, true)])), node('n2', text([], [fo1(MAC, true)]))]);
    expect([s.groups[0]!.summary, s.exitCode]).toEqual(['SPLIT on n1 and n2 (VIP on n1; failover MAC on n1 and n2; volume on n1; mount on n1; export on n1)', 2]);
  });

  it('the MAC on a link that is down takes no frames: not held there', () => {
    const s = judgeCluster([withMac], [node('n1', text([1], [fo1(MAC, true)])), node('n2', text([], [fo1(MAC, false)]))]);
    expect(s.groups[0]!.summary).toBe('running on n1');
  });

  it('the links are read only when a group has a MAC; the script\'s links section, run here, is `ip -j link show`', async () => {
    expect(nodeViewArgv({ links: true }).slice(3)).toEqual(['baton-node-view', '/run/baton/loop', 'links', '/proc/fs/nfsd/threads']);
    const { execFileSync } = await import('node:child_process');
    const run = (argv: string[]) => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
    const up = JSON.parse(run(['ip', '-j', 'link', 'show']) as string) as Array<{ address?: string; flags: string[] }>;
    const expected = up.filter((l) => l.flags.includes('UP') && l.address).map((l) => l.address!.toLowerCase());
    expect(expected.length).toBeGreaterThan(0);
    expect(parseNodeView(run(nodeViewArgv({ links: true }))).upMacs).toEqual(expected);
    expect(parseNodeView(run(nodeViewArgv())).upMacs).toEqual([]);
  });
});

describe('observing', () => {
  const inventory = (hosts: Record<string, Record<string, unknown>>): Inventory => ({
    file: 'inv.yml',
    hosts: new Map(Object.entries(hosts).map(([name, vars]) => [name, { name, vars, groups: ['all'] }])),
    groups: new Map(),
  });
  const fake = (host: string, out: (argv: string[], stdin?: string) => Partial<ExecResult>): Transport => ({
    host,
    kind: 'local',
    connect: async () => undefined,
    close: async () => undefined,
    exec: async (argv, opts) => ({ argv, code: 0, signal: null, stdout: '', stderr: '', timedOut: false, durationMs: 1, ...out(argv, opts?.stdin?.toString()) }),
  });

  it('reads each node once, asks each BMC (password on stdin, never in argv), and reports an unreachable node', async () => {
    const reads: string[] = [];
    const bmcCalls: Array<{ argv: string[]; stdin?: string }> = [];
    const inv = inventory({
      n1: { bmc_address: '198.18.190.1', bmc_port: 20001, bmc_user: 'admin', bmc_password: 's3cret' },
      n2: { bmc_address: '198.18.190.1', bmc_port: 20002, bmc_user: 'admin', bmc_password: 's3cret' },
      n3: {},
    });
    const s = await observeGroups({
      inventory: inv,
      groups: GROUPS,
      transportOf: async (n) => {
        if (n === 'n2') throw new UnreachableError('n2', 'cannot reach n2 at root@198.18.190.12:22: timed out while connecting');
        return fake(n, () => {
          reads.push(n);
          return { stdout: viewText(n === 'n1' ? whole(1, 4) : whole(3)) };
        });
      },
      bmcRunner: fake('controller', (argv, stdin) => {
        bmcCalls.push({ argv, stdin });
        return { stdout: argv.includes('20002') ? 'Chassis Power is off\n' : 'Chassis Power is on\n' };
      }),
    });
    expect(reads.sort()).toEqual(['n1', 'n3']);
    expect(bmcCalls).toHaveLength(2);
    expect(bmcCalls.every((c) => c.stdin === 's3cret\n' && !c.argv.includes('s3cret'))).toBe(true);
    expect(s.nodes.map((n) => [n.name, n.reachable, n.power])).toEqual([
      ['n1', true, 'on'],
      ['n2', false, 'off'],
      ['n3', true, 'unknown'],
    ]);
    expect(s.nodes[1]!.error).toMatch(/timed out while connecting/);
    expect(s.nodes[2]!.powerError).toMatch(/no BMC in the inventory/);
    expect(s.groups.map((g) => g.summary)).toEqual(['running on n1', 'stopped', 'running on n3', 'running on n1']);
  });

  it('a node its BMC says is off is not waited for past a short grace; one that answers in time is read', async () => {
    const inv = inventory({
      n1: { bmc_address: '198.18.190.1', bmc_port: 20001, bmc_user: 'admin', bmc_password: 's3cret' },
      n2: { bmc_address: '198.18.190.1', bmc_port: 20002, bmc_user: 'admin', bmc_password: 's3cret' },
      n3: { bmc_address: '198.18.190.1', bmc_port: 20003, bmc_user: 'admin', bmc_password: 's3cret' },
    });
    const down: string[] = [];
    // Without the grace this read never ends (n2's connection attempt never does).
    const s = await observeGroups({
      inventory: inv,
      groups: GROUPS,
      transportOf: async (n) => {
        // n2: an SSH connection to a powered-off node, waiting out a 10 s timeout.
        if (n === 'n2') return new Promise<Transport>(() => undefined);
        // n3: its BMC says off (a wrong mapping), but it answers: it is read as it is.
        if (n === 'n3') await new Promise((r) => setTimeout(r, 100));
        return fake(n, () => ({ stdout: viewText(n === 'n1' ? whole(1, 4) : whole(3)) }));
      },
      bmcRunner: fake('controller', (argv) => ({ stdout: argv.includes('20001') ? 'Chassis Power is on\n' : 'Chassis Power is off\n' })),
      onPoweredOff: (n) => down.push(n),
    });
    expect(s.nodes.map((n) => [n.name, n.reachable, n.power])).toEqual([
      ['n1', true, 'on'],
      ['n2', false, 'off'],
      ['n3', true, 'off'],
    ]);
    expect(s.nodes[1]!.error).toContain(`BMC says it is powered off, and it did not answer within ${POWERED_OFF_GRACE_MS / 1000} s`);
    expect(down).toEqual(['n2']);
    expect(s.groups.map((g) => g.summary)).toEqual(['running on n1', 'stopped', 'running on n3', 'running on n1']);
  });

  it('a BMC is read from the inventory vars the fence steps use', () => {
    expect(bmcOf({ name: 'n1', groups: [], vars: { bmc_address: '198.18.190.1', bmc_port: '20001', bmc_user: 'u', bmc_password: 'p', bmc_cipher_suite: 3 } })).toEqual({
      address: '198.18.190.1',
      port: 20001,
      user: 'u',
      password: 'p',
      lanplus: true,
      cipherSuite: 3,
    });
    expect(bmcOf({ name: 'n1', groups: [], vars: { bmc_address: '198.18.190.1' } })).toBeUndefined();
  });

  it("bmc_lanplus as Ansible sites write it: yes/on/1 are IPMI v2, no/off/0 IPMI 1.5, for status and the fence alike", () => {
    const vars = { bmc_address: '198.18.190.1', bmc_user: 'u', bmc_password: 'p' };
    const fenceCtx = (lanplus: unknown) => ({ inventory: { hosts: new Map([['n1', { name: 'n1', groups: [], vars: { ...vars, bmc_lanplus: lanplus } }]]) } }) as unknown as StepContext;
    for (const [word, v2] of [['yes', true], ['on', true], ['1', true], ['True', true], [true, true], ['no', false], ['off', false], [0, false], [false, false]] as const) {
      expect(bmcOf({ name: 'n1', groups: [], vars: { ...vars, bmc_lanplus: word } })?.lanplus, String(word)).toBe(v2);
      expect(bmcFor(fenceCtx(word), { target: 'n1' }).lanplus, String(word)).toBe(v2);
    }
    expect(() => bmcFor(fenceCtx('maybe'), { target: 'n1' })).toThrow(/bmc_lanplus must be a boolean/);
  });
});

describe('a VIP on a link that is down', () => {
  /** The link lines `ip -o -batch` prints before the addresses, eth0 with or without carrier. */
  const links = (carrier: boolean) =>
    [
      '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00',
      `2: eth0@if7: <${carrier ? 'BROADCAST,MULTICAST,UP,LOWER_UP' : 'NO-CARRIER,BROADCAST,MULTICAST,UP'}> mtu 1500 qdisc noqueue state ${carrier ? 'UP' : 'DOWN'} mode DEFAULT group default qlen 1000\\    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff`,
    ].join('\n') + '\n';

  it('the group still counts as held there (placement is unchanged), but status says no client reaches it and exits 1', () => {
    const n1 = node('n1', links(false) + viewText(whole(1)));
    expect(n1.view!.downLinks).toEqual(['eth0']);
    const s = judgeCluster([GROUPS[0]!], [n1, node('n2', viewText({})), node('n3', viewText({}))]);
    expect(s.groups[0]).toMatchObject({ state: 'running', nodes: ['n1'], vipLinkDown: 'eth0' });
    expect(s.groups[0]!.summary).toBe('running on n1; its VIP is on eth0, which is down (no carrier): no client reaches it');
    expect(s.exitCode).toBe(1);
  });

  it('with carrier: running, exit 0, nothing said', () => {
    const s = judgeCluster([GROUPS[0]!], [node('n1', links(true) + viewText(whole(1))), node('n2', viewText({})), node('n3', viewText({}))]);
    expect(s.groups[0]!.summary).toBe('running on n1');
    expect(s.groups[0]!.vipLinkDown).toBeUndefined();
    expect(s.exitCode).toBe(0);
  });
});

describe('the kernel NFS server read by the real script', () => {
  /** The node-view script run here, with a fake `exportfs` on PATH listing /srv/disk1 and the given nfsd thread count. */
  function kernelExportsWith(threads: string | undefined): string[] {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-nodeview-'));
    try {
      writeFileSync(path.join(dir, 'exportfs'), '#!/bin/sh\nprintf \'/srv/disk1    \\t<world>(sync,wdelay,hide,no_subtree_check,fsid=101,rw)\\n\'\n', { mode: 0o755 });
      const threadsFile = path.join(dir, 'threads');
      if (threads !== undefined) writeFileSync(threadsFile, `${threads}\n`);
      const argv = nodeViewArgv({ nfsdThreads: threadsFile });
      const out = execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
      return parseNodeView(out).kernelExports;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('nfsd stopped (0 threads): etab still lists the export, but it is not seen, so the group reads partial, not running', () => {
    expect(kernelExportsWith('8')).toEqual(['/srv/disk1']);
    expect(kernelExportsWith('0')).toEqual([]);
    // No thread count to read (nfsd's filesystem not mounted): what etab lists, as before.
    expect(kernelExportsWith(undefined)).toEqual(['/srv/disk1']);
  });
});
