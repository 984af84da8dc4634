/**
 * Service groups in the inventory (all.vars.baton_services): what a user writes, what baton
 * reads from it, and what it says, at which file:line:col, when it is wrong.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadInventory } from '../../src/inventory/load.js';
import { loadServiceGroups, serviceGroup } from '../../src/inventory/services.js';
import { moveOf } from '../../src/engine/placement.js';
import { ValidationError } from '../../src/util/errors.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-services-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function inventoryFile(text: string): string {
  const file = path.join(tmp, `inv${++n}.yml`);
  writeFileSync(file, text);
  return file;
}

const HOSTS = `  children:
    nodes:
      hosts:
        n1: { ansible_host: 198.18.0.11 }
        n2: { ansible_host: 198.18.0.12 }
        n3: { ansible_host: 198.18.0.13 }
    clients:
      hosts:
        c1: { ansible_connection: local }
`;

/** Loads the groups, or returns the problems as `file:line:col: message` lines (file relative). */
function load(file: string): ReturnType<typeof loadServiceGroups> | string[] {
  try {
    return loadServiceGroups(loadInventory(file));
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    return e.problems.map((p) => `${path.basename(p.loc.file)}:${p.loc.line}:${p.loc.col}: ${p.message}`);
  }
}

function problems(text: string): string[] {
  const file = inventoryFile(text);
  const r = load(file);
  if (!Array.isArray(r) || typeof r[0] !== 'string') throw new Error(`expected problems, got groups: ${JSON.stringify(r)}`);
  return r as string[];
}

const TWO_GROUPS = `all:
  vars:
    baton_services:
      nfs-a:
        vip: 198.18.0.200/24
        interface: eth0
        volume: { provider: loop, image: /var/lib/lab/disk1.img }
        mount: { path: /srv/a/, fstype: ext4 }
        nfs_exports: [{ path: /srv/a, pseudo: /a, fsid: 101 }]
        nodes: [n1, n2, n3]
      nfs-b:
        vip: 198.18.0.201/24
        volume: { provider: zfs, pool: tank }
        mount: { path: /tank/b, fstype: zfs, options: noatime }
        nfs_exports:
          - { path: /tank/b, pseudo: /b, fsid: 102, export_id: 7, squash: no_root_squash }
          - { path: /tank/b/scratch, pseudo: /b-scratch, fsid: 103 }
        nodes: [n2, n3, n1]
        lock: b-lock
        mac: 02:AA:00:00:00:02
        failover_interface: fo2
${HOSTS}`;

describe('baton_services', () => {
  it('reads each group with its nodes in preference order, the first as home', () => {
    const groups = load(inventoryFile(TWO_GROUPS));
    expect(groups).toEqual([
      {
        name: 'nfs-a',
        vip: { address: '198.18.0.200', prefix: 24 },
        interface: 'eth0',
        volume: { provider: 'loop', image: '/var/lib/lab/disk1.img' },
        mount: { path: '/srv/a', fstype: 'ext4' },
        nfsExports: [{ path: '/srv/a', pseudo: '/a', fsid: 101, exportId: 101 }],
        iscsiTargets: [],
        nodes: ['n1', 'n2', 'n3'],
        home: 'n1',
        lock: 'service-nfs-a',
        implied: false,
        loc: { file: expect.stringMatching(/inv\d+\.yml$/), line: 4, col: 7 },
      },
      {
        name: 'nfs-b',
        vip: { address: '198.18.0.201', prefix: 24 },
        volume: { provider: 'zfs', pool: 'tank' },
        mount: { path: '/tank/b', fstype: 'zfs', options: 'noatime' },
        nfsExports: [
          { path: '/tank/b', pseudo: '/b', fsid: 102, exportId: 7, squash: 'no_root_squash' },
          { path: '/tank/b/scratch', pseudo: '/b-scratch', fsid: 103, exportId: 103 },
        ],
        iscsiTargets: [],
        nodes: ['n2', 'n3', 'n1'],
        home: 'n2',
        lock: 'b-lock',
        mac: '02:aa:00:00:00:02',
        failoverInterface: 'fo2',
        implied: false,
        loc: { file: expect.stringMatching(/inv\d+\.yml$/), line: 11, col: 7 },
      },
    ]);
  });

  it('finds a group by name, and says which groups there are when the name is wrong', () => {
    const groups = load(inventoryFile(TWO_GROUPS)) as ReturnType<typeof loadServiceGroups>;
    expect(serviceGroup(groups, 'nfs-b').home).toBe('n2');
    expect(() => serviceGroup(groups, 'nfs-c')).toThrow('no service group "nfs-c" in the inventory; its groups: nfs-a, nfs-b');
  });

  it('is read from group_vars/all.yml too, with positions in that file', () => {
    const dir = path.join(tmp, 'gv');
    const gv = path.join(dir, 'group_vars');
    mkdirSync(gv, { recursive: true });
    writeFileSync(path.join(dir, 'hosts.yml'), `all:\n${HOSTS}`);
    writeFileSync(
      path.join(gv, 'all.yml'),
      `baton_services:
  g1:
    vip: 198.18.0.200/24
    nodes: [n1, n9]
`,
    );
    expect(load(path.join(dir, 'hosts.yml'))).toEqual([expect.stringMatching(/^all\.yml:4:17: service group g1: node "n9" is not a host of the inventory \(hosts: n1, n2, n3, c1\)$/)]);
  });

  it('bad shapes: each problem at its line and column, all at once', () => {
    const out = problems(`all:
  vars:
    baton_services:
      nfs-a:
        vip: 198.18.0.200
        volume: { provider: loop }
        mount: { path: srv/a, fstype: ext4 }
        nfs_exports: [{ path: /srv/a, pseudo: /a, fsid: "x" }]
        nodes: [n1, n1]
        colour: blue
      nfs-b:
        vip: 198.18.0.201/24
        volume: { provider: nfs, image: /x.img }
        nodes: []
${HOSTS}`);
    expect(out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^inv\d+\.yml:5:14: .*vip.*198\.18\.0\.200\/24/),
        expect.stringMatching(/^inv\d+\.yml:6:17: missing required key "image" in "volume"$/),
        expect.stringMatching(/^inv\d+\.yml:7:24: .*absolute path/),
        expect.stringMatching(/^inv\d+\.yml:8:57: .*fsid.*integer/),
        expect.stringMatching(/^inv\d+\.yml:9:16: .*duplicate/),
        expect.stringMatching(/^inv\d+\.yml:10:9: .*colour/),
        expect.stringMatching(/^inv\d+\.yml:13:29: .*provider/),
        expect.stringMatching(/^inv\d+\.yml:14:16: .*fewer than 1|at least 1|must NOT have fewer/),
      ]),
    );
    expect(out).toHaveLength(8);
  });

  it('a node that is not in the inventory is named, at its place in the list', () => {
    expect(
      problems(`all:
  vars:
    baton_services:
      a: { vip: 198.18.0.200/24, nodes: [n1, nX, n3] }
${HOSTS}`),
    ).toEqual([expect.stringMatching(/^inv\d+\.yml:4:46: service group a: node "nX" is not a host of the inventory/)]);
  });

  it('an IPv4 VIP with a leading zero is refused (ip reads 198.18.0.010 as octal: the same address as .8)', () => {
    // Before: 198.18.0.8 and 198.18.0.010 passed the uniqueness check as two addresses.
    const out = problems(`all:
  vars:
    baton_services:
      a: { vip: 198.18.0.8/24, nodes: [n1] }
      b: { vip: 198.18.0.010/24, nodes: [n2] }
      c: { vip: 198.18.0.256/24, nodes: [n3] }
${HOSTS}`);
    expect(out).toEqual([
      expect.stringMatching(/^inv\d+\.yml:5:17: "vip" must be an address with its prefix length.*got the string "198.18.0.010\/24"/),
      expect.stringMatching(/^inv\d+\.yml:6:17: "vip" must be .*"198.18.0.256\/24"/),
    ]);
  });

  it('two groups may not share a VIP, a mount path, an image, an fsid, an export id or a pseudo path', () => {
    const out = problems(`all:
  vars:
    baton_services:
      a:
        vip: 198.18.0.200/24
        volume: { provider: loop, image: /d/disk1.img }
        mount: { path: /srv/a, fstype: ext4 }
        nfs_exports: [{ path: /srv/a, pseudo: /a, fsid: 101 }]
        nodes: [n1, n2]
      b:
        vip: 198.18.0.200/16
        volume: { provider: loop, image: /d/../d/disk1.img }
        mount: { path: /srv/a/, fstype: ext4 }
        nfs_exports: [{ path: /srv/a, pseudo: /a, fsid: 101, export_id: 101 }]
        nodes: [n2, n1]
      c:
        vip: "2001:db8::10/64"
        nfs_exports: [{ path: /srv/c, pseudo: /c, fsid: 103 }, { path: /srv/c2, pseudo: /c2, fsid: 103, export_id: 9 }]
        nodes: [n3]
      d:
        vip: "2001:db8:0::10/64"
        nodes: [n3]
${HOSTS}`);
    expect(out).toEqual([
      expect.stringMatching(/^inv\d+\.yml:11:14: service group b: VIP 198\.18\.0\.200 is already group a's; each group needs its own$/),
      expect.stringMatching(/^inv\d+\.yml:21:14: service group d: VIP 2001:db8:0::10 is already group c's/),
      expect.stringMatching(/^inv\d+\.yml:13:24: service group b: mount path \/srv\/a is already group a's/),
      expect.stringMatching(/^inv\d+\.yml:12:42: service group b: volume image \/d\/disk1\.img is already group a's/),
      expect.stringMatching(/^inv\d+\.yml:14:57: service group b: fsid 101 is already group a's/),
      expect.stringMatching(/^inv\d+\.yml:14:73: service group b: NFS-Ganesha export id 101 is already group a's/),
      expect.stringMatching(/^inv\d+\.yml:14:47: service group b: NFSv4 pseudo path \/a is already group a's/),
      expect.stringMatching(/^inv\d+\.yml:18:100: service group c: fsid 103 is already used by its export 1 \(\/srv\/c\); each export needs its own$/),
    ]);
  });

  it('every command refuses it: loading the inventory already fails, with the same file:line:col', () => {
    const file = inventoryFile(`all:
  vars:
    baton_services:
      a: { vip: 198.18.0.200/24, nodes: [n1, nX] }
${HOSTS}`);
    expect(() => loadInventory(file)).toThrow(ValidationError);
    expect(() => loadInventory(file)).toThrow(/inv\d+\.yml:4:46: service group a: node "nX" is not a host of the inventory/);
  });

  it('a group name that could not name a lock is refused at its key', () => {
    expect(
      problems(`all:
  vars:
    baton_services:
      "a b": { vip: 198.18.0.200/24, nodes: [n1] }
${HOSTS}`),
    ).toEqual([expect.stringMatching(/^inv\d+\.yml:4:7: service group name "a b": use letters, digits/)]);
  });

  it('not a mapping: said at the var', () => {
    expect(
      problems(`all:
  vars:
    baton_services: [a, b]
${HOSTS}`),
    ).toEqual([expect.stringMatching(/^inv\d+\.yml:3:21: baton_services must be a mapping of group name to group/)]);
  });

  it('set differently on one host: refused, naming the host', () => {
    expect(
      problems(`all:
  vars:
    baton_services: { a: { vip: 198.18.0.200/24, nodes: [n1] } }
  hosts:
    n1:
    n2:
      baton_services: {}
`),
    ).toEqual([expect.stringMatching(/^inv\d+\.yml:7:23: baton_services must be the same for every host \(set it once, in all\.vars\): host n2 sees another value than host n1/)]);
  });
});

describe('a failover MAC on a group', () => {
  it('mac and failover_interface: read (MAC in lower case); the VIP goes on that interface', () => {
    const groups = load(
      inventoryFile(`all:
  vars:
    baton_services:
      a: { vip: 198.18.0.200/24, mac: "06:00:5E:10:00:01", failover_interface: fo1, nodes: [n1, n2] }
      b: { vip: 198.18.0.201/24, mac: "06:00:5e:10:00:02", failover_interface: fo1, nodes: [n3] }
${HOSTS}`),
    ) as ReturnType<typeof loadServiceGroups>;
    expect(groups.map((g) => [g.name, g.mac, g.failoverInterface])).toEqual([
      ['a', '06:00:5e:10:00:01', 'fo1'],
      // No node in common with a: the same interface name is free for it.
      ['b', '06:00:5e:10:00:02', 'fo1'],
    ]);
  });

  it('refused at file:line:col: not unicast, not locally administered, shared, without its interface, with interface too, a bad shape', () => {
    const out = problems(`all:
  vars:
    baton_services:
      a: { vip: 198.18.0.200/24, mac: "03:00:00:00:00:01", failover_interface: fo1, nodes: [n1] }
      b: { vip: 198.18.0.201/24, mac: "00:1b:21:00:00:01", failover_interface: fo2, nodes: [n1] }
      c: { vip: 198.18.0.202/24, mac: "02:00:00:00:00:09", failover_interface: fo3, nodes: [n2] }
      d: { vip: 198.18.0.203/24, mac: "02:00:00:00:00:09", failover_interface: fo4, nodes: [n3] }
      e: { vip: 198.18.0.204/24, mac: "02:00:00:00:00:05", nodes: [n3] }
      f: { vip: 198.18.0.205/24, failover_interface: fo6, nodes: [n3] }
      g: { vip: 198.18.0.206/24, interface: eth0, mac: "02:00:00:00:00:07", failover_interface: fo7, nodes: [n3] }
      h: { vip: 198.18.0.207/24, mac: "02:00:00:00:00:08", failover_interface: fo3, nodes: [n3, n2] }
${HOSTS}`);
    expect(out).toEqual([
      expect.stringMatching(/^inv\d+\.yml:7:39: service group d: MAC 02:00:00:00:00:09 is already group c's; each group needs its own$/),
      expect.stringMatching(/^inv\d+\.yml:4:39: service group a: mac 03:00:00:00:00:01 is a multicast address/),
      expect.stringMatching(/^inv\d+\.yml:5:39: service group b: mac 00:1b:21:00:00:01 is not locally administered/),
      expect.stringMatching(/^inv\d+\.yml:8:39: service group e: a mac needs failover_interface too/),
      expect.stringMatching(/^inv\d+\.yml:9:54: service group f: failover_interface needs the mac it carries/),
      expect.stringMatching(/^inv\d+\.yml:10:45: service group g: with a mac the VIP is raised on failover_interface \(fo7\); drop interface/),
      expect.stringMatching(/^inv\d+\.yml:11:80: service group h: failover_interface fo3 is also group c's, and both may run on n2: one interface carries one MAC/),
    ]);
    expect(
      problems(`all:
  vars:
    baton_services:
      a: { vip: 198.18.0.200/24, mac: "02-00-00-00-00-01", failover_interface: fo1, nodes: [n1] }
${HOSTS}`),
    ).toEqual([expect.stringMatching(/^inv\d+\.yml:4:39: .*a MAC address like 02:00:00:00:01:01/)]);
  });
});

describe('the implied group of a single-service inventory', () => {
  it('the lab shape (inventory/lab.example.yml): group nfs from vip, disks and the roles\' defaults, on the nodes group', () => {
    const groups = load(path.resolve('inventory/lab.example.yml'));
    expect(groups).toEqual([
      {
        name: 'nfs',
        vip: { address: '198.18.0.200', prefix: 24 },
        volume: { provider: 'loop', image: '/var/lib/baton-lab/lab/disks/disk1.img' },
        mount: { path: '/srv/disk1', fstype: 'ext4' },
        nfsExports: [{ path: '/srv/disk1', pseudo: '/disk1', fsid: 101, exportId: 101 }],
        iscsiTargets: [],
        nodes: ['n1', 'n2'],
        home: 'n1',
        lock: 'nfs-service',
        implied: true,
        loc: expect.objectContaining({ line: 10 }),
      },
    ]);
  });

  it('the production example: ZFS pool, mount_point, nfs_fsid, the baton_peers hosts', () => {
    const [g] = load(path.resolve('inventory/production.example.yml')) as ReturnType<typeof loadServiceGroups>;
    expect(g).toMatchObject({
      name: 'nfs',
      vip: { address: '198.18.200.10', prefix: 24 },
      volume: { provider: 'zfs', pool: 'tank' },
      mount: { path: '/tank/export', fstype: 'ext4' },
      nfsExports: [{ path: '/tank/export', pseudo: '/disk1', fsid: 101 }],
      nodes: ['nas1', 'nas2'],
    });
  });

  it("nodes naming different vip_interfaces: each move raises the VIP on the new node's own", () => {
    const inv = loadInventory(
      inventoryFile(`all:
  vars: { vip: 198.18.0.200/24, volume_image: /srv/d.img }
  children:
    nodes:
      hosts:
        nas1: { ansible_host: 198.18.0.11, vip_interface: eth0 }
        nas2: { ansible_host: 198.18.0.12, vip_interface: ens192 }
`),
    );
    const [g] = loadServiceGroups(inv);
    // Before: the first node's eth0 was the group's, and a move to nas2 raised the VIP on eth0.
    expect(moveOf(g!, 'nas1', 'nas2', 'test', inv)).toMatchObject({ interface: 'ens192', interface_from: 'eth0' });
    expect(moveOf(g!, 'nas2', 'nas1', 'test', inv)).toMatchObject({ interface: 'eth0', interface_from: 'ens192' });
  });

  it('a baton_services group without interface takes each node\'s iface, whatever vip_interface says (the vip role\'s failover NIC)', () => {
    const inv = loadInventory(
      inventoryFile(`all:
  vars:
    baton_services:
      a: { vip: 198.18.0.200/24, nodes: [nas1, nas2] }
  children:
    nodes:
      hosts:
        nas1: { ansible_host: 198.18.0.11, iface: bond0, vip_interface: fo1 }
        nas2: { ansible_host: 198.18.0.12, iface: bond0, vip_interface: fo1 }
`),
    );
    const [g] = loadServiceGroups(inv);
    expect(moveOf(g!, 'nas1', 'nas2', 'test', inv)).toMatchObject({ interface: 'bond0', interface_from: 'bond0' });
  });

  it('no vip and no baton_services: no group', () => {
    expect(load(inventoryFile(`all:\n${HOSTS}`))).toEqual([]);
  });

  it('baton_services wins over the single-service vars', () => {
    const groups = load(
      inventoryFile(`all:
  vars:
    vip: 198.18.0.250
    baton_services: { only: { vip: 198.18.0.200/24, nodes: [n2] } }
${HOSTS}`),
    ) as ReturnType<typeof loadServiceGroups>;
    expect(groups.map((g) => g.name)).toEqual(['only']);
  });
});
