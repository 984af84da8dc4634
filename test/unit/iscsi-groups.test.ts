/**
 * Service groups that hold iSCSI targets: what the inventory says and where it is wrong
 * (file:line:col), the move item the group playbooks get, what `baton status` makes of what the
 * nodes serve, the LUN list iscsi-health.yml loops over, and the lab's `--iscsi-groups`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import yaml from 'js-yaml';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadInventory } from '../../src/inventory/load.js';
import { loadServiceGroups, type ServiceGroup } from '../../src/inventory/services.js';
import { moveOf, resolvePlacement } from '../../src/engine/placement.js';
import { judgeCluster, parseNodeView, type NodeObservation } from '../../src/facts/groups.js';
import { iscsiLunItems } from '../../src/playbook/vars.js';
import { planLab } from '../../src/lab/plan.js';
import { formatStatus } from '../../src/cli/status.js';
import { inventoryObject } from '../../src/lab/inventory.js';
import { ValidationError } from '../../src/util/errors.js';
import { checkRenderedArgs } from '../../src/engine/args-check.js';
import { defaultRegistry } from '../../src/steps/registry.js';
import { iscsiPortal } from '../../src/steps/iscsi-portal.js';
import { fakeTgtNode } from '../helpers/fake-tgt.js';
import { evalCondition, parseCondition } from '../../src/playbook/conditions.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-iscsi-groups-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function load(groupsYaml: string): ServiceGroup[] | string[] {
  const file = path.join(tmp, `inv${++n}.yml`);
  writeFileSync(file, `all:
  vars:
    baton_services:
${groupsYaml.replace(/^/gm, '      ').trimEnd()}
  children:
    nodes:
      hosts:
        n1: { ansible_host: 198.18.0.11 }
        n2: { ansible_host: 198.18.0.12 }
`);
  try {
    return loadServiceGroups(loadInventory(file));
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    return e.problems.map((p) => `${path.basename(p.loc.file)}:${p.loc.line}:${p.loc.col}: ${p.message}`);
  }
}

const SAN_A = `san-a:
  vip: 198.18.0.210/24
  volume: { provider: loop, image: /var/lib/lab/disk2.img }
  iscsi_targets:
    - iqn: iqn.2026-11.dev.baton:san-a
      acls: [198.18.0.0/24]
      luns: [{ lun: 1, scsi_id: "5ba7000000000001", scsi_sn: SAN-A-1 }]
  nodes: [n2, n1]
`;

describe('iscsi_targets in baton_services', () => {
  it('a group with only a target: read with the portal port, the ACLs and each LUN\'s identity', () => {
    const [g] = load(SAN_A) as ServiceGroup[];
    expect(g!.iscsiTargets).toEqual([{ iqn: 'iqn.2026-11.dev.baton:san-a', acls: ['198.18.0.0/24'], port: 3260, luns: [{ lun: 1, scsiId: '5ba7000000000001', scsiSn: 'SAN-A-1' }] }]);
    expect(g!.nfsExports).toEqual([]);
    expect(g!.mount).toBeUndefined();
  });

  it('schema errors at file:line:col: a bad IQN, LUN 0, a scsi_id that is not hex, a serial with a comma, an unknown key', () => {
    const p = load(`bad:
  vip: 198.18.0.210/24
  volume: { provider: loop, image: /d.img }
  iscsi_targets:
    - iqn: "IQN.Upper Case"
      luns:
        - { lun: 0, scsi_id: "xyz", scsi_sn: "a,b" }
      portal: 1.2.3.4
  nodes: [n1]
`) as string[];
    expect(p.map((x) => x.replace(/^inv\d+/, 'inv')).sort()).toEqual([
      'inv.yml:10:24: "lun" must be a LUN number from 1 (tgt\'s LUN 0 is its controller), got a number (0)',
      'inv.yml:10:36: "scsi_id" must be 1 to 31 hexadecimal digits (tgt builds the NAA designator of VPD 0x83 from them), got the string "xyz"',
      'inv.yml:10:52: "scsi_sn" must be 1 to 36 printable characters without spaces or commas, got the string "a,b"',
      'inv.yml:11:13: unknown key "portal" in iSCSI target (allowed: iqn, luns, acls, port)',
      'inv.yml:8:18: "iqn" must be an iSCSI name like iqn.2026-11.com.example:storage.lun-a (RFC 7143: lower case, no spaces), got the string "IQN.Upper Case"',
    ]);
  });

  it('an IQN, a scsi_id or a scsi_sn of another group is refused, at the second group\'s key, naming the first', () => {
    const p = load(`${SAN_A}san-b:
  vip: 198.18.0.211/24
  volume: { provider: loop, image: /var/lib/lab/disk3.img }
  iscsi_targets:
    - iqn: iqn.2026-11.dev.baton:san-a
      luns: [{ lun: 1, scsi_id: "5BA7000000000001", scsi_sn: SAN-A-1 }]
  nodes: [n1, n2]
`) as string[];
    expect(p).toEqual([
      expect.stringMatching(/^inv\d+\.yml:16:18: service group san-b: IQN iqn\.2026-11\.dev\.baton:san-a is already group san-a's; each group needs its own$/),
      expect.stringMatching(/^inv\d+\.yml:17:\d+: service group san-b: scsi_id 5ba7000000000001 is already group san-a's/),
      expect.stringMatching(/^inv\d+\.yml:17:\d+: service group san-b: scsi_sn SAN-A-1 is already group san-a's/),
    ]);
  });

  it('a LUN with nothing to serve, and a LUN on a volume the group also mounts, are refused', () => {
    const none = load(`x:
  vip: 198.18.0.210/24
  iscsi_targets: [{ iqn: "iqn.2026-11.dev.baton:x", luns: [{ lun: 1, scsi_id: "1", scsi_sn: X1 }] }]
  nodes: [n1]
`) as string[];
    expect(none).toEqual([expect.stringMatching(/^inv\d+\.yml:6:66: service group x: LUN 1 of iqn\.2026-11\.dev\.baton:x has no backing_store, and the group has no volume/)]);
    const mounted = load(`y:
  vip: 198.18.0.210/24
  volume: { provider: loop, image: /d.img }
  mount: { path: /srv/y, fstype: ext4 }
  iscsi_targets: [{ iqn: "iqn.2026-11.dev.baton:y", luns: [{ lun: 1, scsi_id: "1", scsi_sn: Y1 }, { lun: 2, scsi_id: "2", scsi_sn: Y2 }] }]
  nodes: [n1]
`) as string[];
    expect(mounted).toEqual([expect.stringMatching(/^inv\d+\.yml:7:16: service group y: LUN 1 of iqn\.2026-11\.dev\.baton:y serves the group's volume itself, which the group also mounts on \/srv\/y/)]);
    // Its own backing_store is fine next to a mount.
    expect(load(`z:
  vip: 198.18.0.210/24
  volume: { provider: loop, image: /d.img }
  mount: { path: /srv/z, fstype: ext4 }
  iscsi_targets: [{ iqn: "iqn.2026-11.dev.baton:z", luns: [{ lun: 1, scsi_id: "1", scsi_sn: Z1, backing_store: /srv/z/lun1.img }] }]
  nodes: [n1]
`)).toHaveLength(1);
  });
});

describe('the move item and the LUN list', () => {
  it('moveOf: the portal on the VIP, each LUN backed by the group\'s loop image (or its own backing_store, or the LVM device)', () => {
    const [g] = load(SAN_A) as ServiceGroup[];
    const m = moveOf(g!, 'n2', 'n1', 'switchover');
    expect(m.iscsi_targets).toEqual([{ iqn: 'iqn.2026-11.dev.baton:san-a', portal: '198.18.0.210:3260', acls: ['198.18.0.0/24'], luns: [{ lun: 1, scsi_id: '5ba7000000000001', scsi_sn: 'SAN-A-1', backing_image: '/var/lib/lab/disk2.img' }] }]);
    expect(m.exports).toEqual([]);
    expect(m.mount_point).toBe('');
    const lvm = { ...g!, vip: { address: '2001:db8::10', prefix: 64 }, volume: { provider: 'lvm' as const, vg: 'vg0', device: '/dev/vg0/lun' } };
    expect(moveOf(lvm, 'n2', 'n1', 'switchover').iscsi_targets[0]).toMatchObject({ portal: '[2001:db8::10]:3260', luns: [{ backing_store: '/dev/vg0/lun' }] });
  });


  it('the longest identity a group may have passes the iscsi_target step\'s own check', async () => {
    // Before: the group schema took 31 hex digits, the step 24 characters: the takeover failed
    // "arguments after templating" after the old node had already given the group up.
    const [g] = load(SAN_A.replace('"5ba7000000000001"', `"${'a'.repeat(31)}"`).replace('SAN-A-1', 'S'.repeat(36))) as ServiceGroup[];
    const t = moveOf(g!, 'n2', 'n1', 'switchover').iscsi_targets[0]!;
    const registry = defaultRegistry();
    await registry.ensureLoaded();
    expect(checkRenderedArgs(registry, 'iscsi_target', { iqn: t.iqn, portal: t.portal, acls: t.acls, luns: t.luns })).toBeUndefined();
  });

  it('baton_iscsi_luns: one item per LUN with the NAA tgt derives from scsi_id', () => {
    const groups = load(SAN_A) as ServiceGroup[];
    expect(iscsiLunItems(groups)).toEqual([{ group: 'san-a', vip: '198.18.0.210', port: 3260, iqn: 'iqn.2026-11.dev.baton:san-a', lun: 1, scsi_id: '5ba7000000000001', scsi_sn: 'SAN-A-1', naa: '60000000000000005ba7000000000001' }]);
  });
});

describe('status of an iSCSI group, from what each node\'s tgtd serves', () => {
  const [g] = load(SAN_A) as ServiceGroup[];
  const tgt = (iqn: string, tid = 1000) => `Target ${tid}: ${iqn}\n    System information:\n        Driver: iscsi\n        State: ready\n`;
  // The loop device and baton's claim on it, the VIP, and tgtd's targets, as one node read shows them.
  const view = (o: { vip?: boolean; volume?: boolean; targets?: string[] }) =>
    parseNodeView([
      `2: eth0    inet 198.18.0.11/24 scope global eth0\\       valid_lft forever preferred_lft forever`,
      ...(o.vip ? ['2: eth0    inet 198.18.0.210/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever'] : []),
      '--baton--loops',
      o.volume ? '{"loopdevices": [{"name": "/dev/loop3", "back-file": "/var/lib/lab/disk2.img"}]}' : '{"loopdevices": []}',
      '--baton--claims',
      o.volume ? '/run/baton/loop/loop3:/var/lib/lab/disk2.img' : '',
      '--baton--mountinfo',
      '--baton--ganesha',
      '--baton--kernel',
      '--baton--tgt',
      ...(o.targets ?? []).map((t) => tgt(t)),
      '--baton--zfs',
      '--baton--lvm',
    ].join('\n'));
  const node = (name: string, v: ReturnType<typeof view>): NodeObservation => ({ name, reachable: true, power: 'on', view: v });
  const iqn = 'iqn.2026-11.dev.baton:san-a';

  it('running where the VIP, the volume and the target are; what it serves', () => {
    const s = judgeCluster([g!], [node('n1', view({})), node('n2', view({ vip: true, volume: true, targets: [iqn] }))]);
    expect(s.groups[0]).toMatchObject({ state: 'running', summary: 'running on n2', serves: [`iSCSI ${iqn} LUN 1`] });
    expect(s.exitCode).toBe(0);
    expect(formatStatus(s, 120).split('\n').slice(0, 2)).toEqual([
      'GROUP  SERVES                                   STATE',
      `san-a  iSCSI ${iqn} LUN 1  running on n2`,
    ]);
  });

  it('partial naming the target when the node lacks it; another IQN served there does not count', () => {
    const s = judgeCluster([g!], [node('n1', view({})), node('n2', view({ vip: true, volume: true, targets: ['iqn.2026-11.dev.baton:other'] }))]);
    expect(s.groups[0]).toMatchObject({ state: 'partial', summary: `partial on n2 (iSCSI target ${iqn} missing)` });
    expect(s.exitCode).toBe(1);
  });

  it('SPLIT, exit 2, when two nodes serve the IQN', () => {
    const s = judgeCluster([g!], [node('n1', view({ targets: [iqn] })), node('n2', view({ vip: true, volume: true, targets: [iqn] }))]);
    expect(s.groups[0]!.summary).toBe('SPLIT on n2 and n1 (VIP on n2; volume on n2; iSCSI target on n2 and n1)');
    expect(s.exitCode).toBe(2);
  });
});

describe('the NFSv3 lock-holder steps of roles/group-move', () => {
  it('run for a group with NFS exports, not for an iSCSI-only one (its state dir would be on no volume)', () => {
    const steps = yaml.load(readFileSync('roles/group-move/steps.yml', 'utf8')) as Array<Record<string, unknown> & { when: string | string[] }>;
    const holders = steps.filter((s) => ['track_lock_holders', 'untrack_lock_holders', 'notify_lock_holders'].some((k) => k in s));
    expect(holders).toHaveLength(3);
    const [san] = load(SAN_A) as ServiceGroup[];
    const [nfs] = load(`nfs-a:
  vip: 198.18.0.200/24
  volume: { provider: loop, image: /var/lib/lab/disk1.img }
  mount: { path: /srv/disk1, fstype: ext4 }
  nfs_exports: [{ path: /srv/disk1, pseudo: /disk1, fsid: 101 }]
  nodes: [n1, n2]
`) as ServiceGroup[];
    for (const step of holders) {
      const runsFor = (g: ServiceGroup, host: string) =>
        [step.when].flat().every((w) => evalCondition(parseCondition(w), { inventory_hostname: host, vip_raised: { status: 'changed' }, move: moveOf(g, 'n2', 'n1', 'switchover') }));
      const host = 'untrack_lock_holders' in step ? 'n2' : 'n1';
      expect(runsFor(nfs!, host)).toBe(true);
      expect(runsFor(san!, host)).toBe(false);
    }
  });
});

describe('the iSCSI steps of roles/group-move', () => {
  const steps = () => yaml.load(readFileSync('roles/group-move/steps.yml', 'utf8')) as Array<Record<string, unknown>>;
  const at = (kind: string) => steps().findIndex((s) => kind in s);

  it('the target before the VIP, its portal after it: tgtd binds a portal\'s address', () => {
    // Before: iscsi_target added the portal VIP:PORT while the VIP was still on the old node
    // (a port other than 3260, or a tgtd without a wildcard portal): bind() failed, every time.
    expect(at('iscsi_target')).toBeLessThan(at('raise_vip'));
    expect((steps()[at('iscsi_target')]!.iscsi_target as Record<string, unknown>).portal).toBeUndefined();
    expect(at('iscsi_portal')).toBeGreaterThan(at('raise_vip'));
    expect(at('iscsi_portal')).toBeLessThan(at('garp'));
  });

  it('iscsi_portal opens the portal only where tgtd does not cover it, and its revert closes only what it opened', async () => {
    let portals = ['0.0.0.0:3260'];
    const { ctx, ran } = fakeTgtNode({
      portals: () => portals,
      onChange: (c) => {
        const m = /--op new --param portal=(\S+)/.exec(c);
        if (m) portals = [...portals, m[1]!];
      },
    });
    const covered = await iscsiPortal.probe(ctx as never, { portal: '198.18.0.210:3260' });
    expect(iscsiPortal.satisfied(covered, { portal: '198.18.0.210:3260' })).toBe(true);
    const a = { portal: '198.18.0.210:3261' };
    const before = await iscsiPortal.probe(ctx as never, a);
    expect(iscsiPortal.satisfied(before, a)).toBe(false);
    await iscsiPortal.apply(ctx as never, a, before);
    expect(iscsiPortal.satisfied(await iscsiPortal.probe(ctx as never, a), a)).toBe(true);
    await iscsiPortal.revert(ctx as never, a, before);
    expect(ran).toEqual([expect.stringMatching(/--mode portal --op new --param portal=198\.18\.0\.210:3261$/), expect.stringMatching(/--mode portal --op delete --param portal=198\.18\.0\.210:3261$/)]);
    // Covered before the step: its revert takes nothing away.
    ran.length = 0;
    await iscsiPortal.revert(ctx as never, { portal: '198.18.0.210:3260' }, covered);
    expect(ran).toEqual([]);
  });
});

describe('placement start: (service-start.yml)', () => {
  const [g] = load(SAN_A) as ServiceGroup[];
  const iqn = 'iqn.2026-11.dev.baton:san-a';
  const empty = (name: string): NodeObservation => ({ name, reachable: true, power: 'on', view: parseNodeView('--baton--tgt\n') });
  const serving = (name: string, targets: string[]): NodeObservation => ({
    name,
    reachable: true,
    power: 'on',
    view: parseNodeView(`2: eth0    inet 198.18.0.210/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever\n--baton--tgt\n${targets.map((t) => `Target 1000: ${t}\n`).join('')}`),
  });
  const start = (nodes: NodeObservation[], on?: string) => resolvePlacement({ kind: 'start', group: 'san-a', ...(on ? { on } : {}) }, [g!], judgeCluster([g!], nodes));

  it('a stopped group starts on its home (the first node that can be read), or on `on`; the move comes from nowhere', () => {
    const [m] = start([empty('n1'), empty('n2')]).moves;
    expect([m!.from, m!.to, m!.reason]).toEqual(['', 'n2', 'start']);
    expect(start([empty('n1'), { name: 'n2', reachable: false, power: 'off' }]).moves[0]!.to).toBe('n1');
    expect(start([empty('n1'), empty('n2')], 'n1').moves[0]!.to).toBe('n1');
  });

  it('running: nothing to start; partial: completed where it is; elsewhere than it is, or split: refused', () => {
    const running = { name: 'n2', reachable: true, power: 'on' as const, view: parseNodeView(`2: eth0    inet 198.18.0.210/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever\n--baton--loops\n{"loopdevices": [{"name": "/dev/loop3", "back-file": "/var/lib/lab/disk2.img"}]}\n--baton--claims\n/run/baton/loop/loop3:/var/lib/lab/disk2.img\n--baton--tgt\nTarget 1000: ${iqn}\n`) };
    expect(start([empty('n1'), running])).toEqual({ moves: [], notes: ['group san-a already runs on n2: nothing to start'] });
    const partial = start([empty('n1'), serving('n2', [])]);
    expect(partial.moves.map((m) => m.to)).toEqual(['n2']);
    expect(partial.notes).toEqual([expect.stringMatching(/^group san-a is partial on n2 .*: completing it there$/)]);
    expect(() => start([empty('n1'), serving('n2', [])], 'n1')).toThrow(/cannot start group san-a on n1: it is partial on n2 \(volume missing, iSCSI target iqn\.2026-11\.dev\.baton:san-a missing\); complete it there \(without -e on\)/);
    expect(() => start([serving('n1', [iqn]), serving('n2', [iqn])])).toThrow(/cannot start group san-a: it is SPLIT on n2 and n1/);
  });
});

describe('lab up --iscsi-groups', () => {
  it('iSCSI groups after the NFS groups: their own disks, VIPs from .210, a fixed identity, homes going on round the nodes', () => {
    const plan = planLab({ name: 'ig', subnet: '198.18.200.0/24', nodes: 2, clients: 1, disks: 0, diskMiB: 64, groups: 1, iscsiGroups: 2 });
    expect(plan.disks.map((d) => path.basename(d))).toEqual(['disk1.img', 'disk2.img', 'disk3.img']);
    expect(plan.iscsiGroups.map((x) => [x.name, x.vip, path.basename(x.image), x.iqn, x.scsiId, x.scsiSn, x.nodes.join(',')])).toEqual([
      ['iscsi-a', '198.18.200.210/24', 'disk2.img', 'iqn.2026-11.dev.baton.lab:ig.iscsi-a', '5ba712c8000001', 'BATON-IG-A', 'n2,n1'],
      ['iscsi-b', '198.18.200.211/24', 'disk3.img', 'iqn.2026-11.dev.baton.lab:ig.iscsi-b', '5ba712c8000002', 'BATON-IG-B', 'n1,n2'],
    ]);
    const inv = inventoryObject(plan) as { all: { vars: { baton_services: Record<string, unknown> } } };
    expect(Object.keys(inv.all.vars.baton_services)).toEqual(['nfs-a', 'iscsi-a', 'iscsi-b']);
    expect(inv.all.vars.baton_services['iscsi-a']).toEqual({
      vip: '198.18.200.210/24',
      interface: 'eth0',
      volume: { provider: 'loop', image: plan.disks[1] },
      iscsi_targets: [{ iqn: 'iqn.2026-11.dev.baton.lab:ig.iscsi-a', acls: ['198.18.200.0/24'], luns: [{ lun: 1, scsi_id: '5ba712c8000001', scsi_sn: 'BATON-IG-A' }] }],
      nodes: ['n2', 'n1'],
    });
  });

  it('more groups than disks a lab has is refused', () => {
    expect(() => planLab({ name: 'ig', subnet: '198.18.200.0/24', nodes: 2, clients: 1, disks: 0, diskMiB: 64, groups: 5, iscsiGroups: 4 })).toThrow(/--groups and --iscsi-groups need a disk each: 9 is more than the 8 disks/);
  });
});
