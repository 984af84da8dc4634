/**
 * tgt facts and the iSCSI target steps' judgement, on tgtadm 1.0.85 output captured here
 * (test/unit/fixtures/tgtadm): what a target is, when it is "the same" (never by tid), and the
 * tgtadm argv that make, change and remove it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path, { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkRenderedArgs } from '../../src/engine/args-check.js';
import { parseTgtadmPortals, parseTgtadmTargets, portalCovered, bindAclArgv, deleteTargetArgv } from '../../src/facts/iscsi.js';
import { chooseTid, createCommands, reconcileCommands, targetMatches, targetSatisfied, tidFor, type IscsiTargetObserved, type TargetState } from '../../src/steps/iscsi/tgt.js';
import { iscsiTargetAbsent } from '../../src/steps/iscsi-target-absent.js';
import { iscsiTarget } from '../../src/steps/iscsi-target.js';
import { StepRefusedError } from '../../src/steps/contract.js';
import { lunProblem } from '../../src/steps/iscsi-lun.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { defaultRegistry } from '../../src/steps/registry.js';
import { fakeTgtNode } from '../helpers/fake-tgt.js';
import { localInventory, loadProblems } from '../helpers/model.js';
import { tempDirEach } from '../helpers/state-dir.js';

const fixture = (name: string) => readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tgtadm', name), 'utf8');

describe('tgtadm show, parsed', () => {
  it('reads targets, LUNs with backing store and identity, accounts and ACLs', () => {
    const [t1, t7] = parseTgtadmTargets(fixture('show-target.txt'));
    expect(t1).toMatchObject({ tid: 1, iqn: 'iqn.2026-11.test.baton:vol1', state: 'ready', nexus: [], accounts: ['chapuser'], outgoingAccounts: [] });
    expect(t1!.acls).toEqual(['198.18.193.0/24', '127.0.0.1', 'iqn.2026-11.test.baton:client1']);
    expect(t1!.luns.map((l) => [l.lun, l.type, l.scsiId, l.scsiSn, l.backingStore, l.sizeMb])).toEqual([
      [0, 'controller', 'IET     00010000', 'beaf10', null, 0],
      [1, 'disk', 'ba7000000001', 'BATONSN1', '/srv/san/d1.img', 8],
      [2, 'disk', 'ba7000000002', 'BATONSN2', '/srv/san/d2.img', 17],
    ]);
    expect(t1!.luns[1]).toMatchObject({ online: true, readonly: false, backingStoreType: 'rdwr', blockSize: 512 });
    expect(t7).toMatchObject({ tid: 7, iqn: 'iqn.2026-11.test.baton:empty', acls: [], accounts: [] });
    expect(t7!.luns.map((l) => l.lun)).toEqual([0]);
  });

  it('reads the initiators logged in (I_T nexus)', () => {
    const [t1] = parseTgtadmTargets(fixture('show-target-nexus.txt'));
    expect(t1!.nexus).toEqual([{ initiator: 'iqn.2026-11.test.baton:client1', addresses: ['127.0.0.1'], sid: 1, cids: [0] }]);
  });

  it('no target at all is an empty list; garbage is an error', () => {
    expect(parseTgtadmTargets('')).toEqual([]);
    expect(() => parseTgtadmTargets('tgtadm: something else\n')).toThrow(/not "Target N: IQN"/);
  });

  it('portals, and which of them cover the VIP', () => {
    const portals = parseTgtadmPortals(fixture('show-portal.txt'));
    expect(portals).toEqual(['127.0.0.1:13263', '127.0.0.2:13263']);
    expect(portalCovered(portals, '127.0.0.2:13263')).toBe(true);
    expect(portalCovered(portals, '127.0.0.3:13263')).toBe(false);
    expect(portalCovered(['0.0.0.0:3260', '[::]:3260'], '198.18.193.100:3260')).toBe(true);
    expect(portalCovered(['0.0.0.0:3260'], '198.18.193.100:3261')).toBe(false);
    expect(portalCovered(['[::]:3260'], '[2001:db8::1]:3260')).toBe(true);
    // tgtd's IPv6 sockets are IPV6_V6ONLY: a [::] portal takes no IPv4 login, and 0.0.0.0 no IPv6 one.
    expect(portalCovered(['[::]:3260'], '198.18.193.100:3260')).toBe(false);
    expect(portalCovered(['0.0.0.0:3260'], '[2001:db8::1]:3260')).toBe(false);
  });

  it('an IQN or backing store with a comma is refused before tgtd splits it into two parameters', async () => {
    const registry = defaultRegistry();
    await registry.ensureLoaded();
    const lun = { lun: 1, scsi_id: 'ba701', scsi_sn: 'SN1' };
    expect(checkRenderedArgs(registry, 'iscsi_target', { iqn: 'iqn.2026-11.x:a,b', luns: [{ ...lun, backing_store: '/srv/a.img' }] })).toMatch(/iqn/);
    expect(checkRenderedArgs(registry, 'iscsi_target', { iqn: 'iqn.2026-11.x:a', luns: [{ ...lun, backing_store: '/srv/a,b.img' }] })).toMatch(/backing_store/);
    expect(checkRenderedArgs(registry, 'iscsi_target_absent', { iqn: 'iqn.2026-11.x:a,b' })).toMatch(/iqn/);
    expect(checkRenderedArgs(registry, 'iscsi_target', { iqn: 'iqn.2026-11.x:a', luns: [{ ...lun, backing_store: '/srv/a.img' }] })).toBeUndefined();
  });
});

const lunState = (lun: number, image: string, dev: string, id = `ba70${lun}`, sn = `SN${lun}`) => ({ lun, backingStore: dev, backingImage: image, scsiId: id, scsiSn: sn });
const state = (tid: number, extra: Partial<TargetState> = {}): TargetState => ({ tid, iqn: 'iqn.2026-11.test.baton:g1', luns: [lunState(1, '/srv/san/disk1.img', '/dev/loop3')], acls: ['ALL'], accounts: [], sessions: [], ...extra });
const observed = (target: TargetState | null, extra: Partial<IscsiTargetObserved> = {}): IscsiTargetObserved => ({ running: true, target, devices: { '/srv/san/disk1.img': '/dev/loop3' }, portals: ['0.0.0.0:3260'], tids: target ? [target.tid] : [], ...extra });
const args = { iqn: 'iqn.2026-11.test.baton:g1', portal: '198.18.193.100', luns: [{ lun: '1', backing_image: '/srv/san/disk1.img', scsi_id: 'ba701', scsi_sn: 'SN1' }] };

describe('iscsi_target: satisfied means the same identity, never the same tid', () => {
  it('the target as asked, on any tid, with a wildcard portal: satisfied', () => {
    expect(targetSatisfied(observed(state(1234)), args)).toBe(true);
    expect(targetSatisfied(observed(state(7)), args)).toBe(true);
  });

  it('another serial, another scsi_id, another LUN number, another ACL, another volume: not satisfied', () => {
    expect(targetSatisfied(observed(state(7, { luns: [lunState(1, '/srv/san/disk1.img', '/dev/loop3', 'ba701', 'SN9')] })), args)).toBe(false);
    expect(targetSatisfied(observed(state(7, { luns: [lunState(1, '/srv/san/disk1.img', '/dev/loop3', 'ba709', 'SN1')] })), args)).toBe(false);
    expect(targetSatisfied(observed(state(7, { luns: [lunState(2, '/srv/san/disk1.img', '/dev/loop3', 'ba701', 'SN1')] })), args)).toBe(false);
    expect(targetSatisfied(observed(state(7, { acls: ['198.18.193.0/24'] })), args)).toBe(false);
    expect(targetSatisfied(observed(state(7, { luns: [lunState(1, '/srv/san/disk2.img', '/dev/loop4', 'ba701', 'SN1')] })), args)).toBe(false);
    // An extra LUN is not "exactly these LUNs".
    expect(targetSatisfied(observed(state(7, { luns: [lunState(1, '/srv/san/disk1.img', '/dev/loop3', 'ba701', 'SN1'), lunState(2, '/srv/san/disk2.img', '/dev/loop4')] })), args)).toBe(false);
  });

  it('no tgtd, no target, a portal not covered, or the image attached by another node: not satisfied', () => {
    expect(targetSatisfied(observed(null), args)).toBe(false);
    expect(targetSatisfied({ ...observed(state(7)), running: false }, args)).toBe(false);
    expect(targetSatisfied(observed(state(7), { portals: ['127.0.0.1:3260'] }), args)).toBe(false);
    expect(targetSatisfied(observed(state(7), { devices: { '/srv/san/disk1.img': null } }), args)).toBe(false);
  });

  it('an explicit tid is part of what is asked', () => {
    expect(targetSatisfied(observed(state(7)), { ...args, tid: 7 })).toBe(true);
    expect(targetSatisfied(observed(state(7)), { ...args, tid: '8' })).toBe(false);
  });

  it('the tid is the same on every node: derived from the IQN, the next free one if taken', () => {
    const t = tidFor(args.iqn);
    expect(t).toBe(tidFor('iqn.2026-11.test.baton:g1'));
    expect(t).toBeGreaterThanOrEqual(1000);
    expect(tidFor('iqn.2026-11.test.baton:g2')).not.toBe(t);
    const logs: string[] = [];
    expect(chooseTid(args, [1, 2], (m) => logs.push(m))).toBe(t);
    expect(chooseTid(args, [t, t + 1], (m) => logs.push(m))).toBe(t + 2);
    expect(logs[0]).toMatch(/is taken on this node; using .*VPD 0x83/);
    expect(() => chooseTid({ ...args, tid: 5 }, [5])).toThrow(StepRefusedError);
  });
});

describe('tgtadm commands', () => {
  it('creates a target: target, LUN, identity, ACLs, in that order, argv only', () => {
    const cmds = createCommands(undefined, 1234, { iqn: args.iqn, luns: [{ lun: 1, backingStore: '/dev/loop3', scsiId: 'ba701', scsiSn: 'SN1' }], acls: ['198.18.193.0/24', 'iqn.2026-11.test.baton:c1'] });
    expect(cmds).toEqual([
      ['tgtadm', '--lld', 'iscsi', '--mode', 'target', '--op', 'new', '--tid', '1234', '--targetname', args.iqn],
      ['tgtadm', '--lld', 'iscsi', '--mode', 'logicalunit', '--op', 'new', '--tid', '1234', '--lun', '1', '--backing-store', '/dev/loop3'],
      ['tgtadm', '--lld', 'iscsi', '--mode', 'logicalunit', '--op', 'update', '--tid', '1234', '--lun', '1', '--params', 'scsi_id=ba701,scsi_sn=SN1'],
      ['tgtadm', '--lld', 'iscsi', '--mode', 'target', '--op', 'bind', '--tid', '1234', '--initiator-address', '198.18.193.0/24'],
      ['tgtadm', '--lld', 'iscsi', '--mode', 'target', '--op', 'bind', '--tid', '1234', '--initiator-name', 'iqn.2026-11.test.baton:c1'],
    ]);
    expect(deleteTargetArgv(13260, 9)).toEqual(['tgtadm', '-C', '13260', '--lld', 'iscsi', '--mode', 'target', '--op', 'delete', '--force', '--tid', '9']);
    expect(bindAclArgv(undefined, 1, 'ALL')).toContain('--initiator-address');
  });

  it('reconciles only what differs, on the target own tid', () => {
    const have = state(7, { luns: [lunState(1, '/srv/san/disk1.img', '/dev/loop3', 'ba701', 'OLD'), lunState(5, '/x.img', '/dev/loop9')], acls: ['ALL', '127.0.0.1'] });
    const cmds = reconcileCommands(undefined, have, { iqn: have.iqn, luns: [{ lun: 1, backingStore: '/dev/loop3', scsiId: 'ba701', scsiSn: 'SN1' }], acls: ['ALL'] });
    expect(cmds.map((c) => c.slice(4).join(' '))).toEqual([
      'logicalunit --op delete --tid 7 --lun 5',
      'logicalunit --op update --tid 7 --lun 1 --params scsi_id=ba701,scsi_sn=SN1',
      'target --op unbind --tid 7 --initiator-address 127.0.0.1',
    ]);
  });
});

describe('iscsi_target_absent', () => {
  it('is satisfied when no target of the IQN is served (or no tgtd runs)', () => {
    expect(iscsiTargetAbsent.satisfied(observed(null), { iqn: args.iqn })).toBe(true);
    expect(iscsiTargetAbsent.satisfied({ ...observed(null), running: false }, { iqn: args.iqn })).toBe(true);
    expect(iscsiTargetAbsent.satisfied(observed(state(7)), { iqn: args.iqn })).toBe(false);
  });

  it('its revert amounts to iscsi_target of the target as it was, by image, so the peers are asked about it', () => {
    const as = iscsiTargetAbsent.revertAs!({ iqn: args.iqn }, observed(state(7))) as typeof args;
    expect(as).toEqual({ iqn: args.iqn, tid: 7, acls: ['ALL'], luns: [{ lun: 1, backing_image: '/srv/san/disk1.img', scsi_id: 'ba701', scsi_sn: 'SN1' }] });
    // On another node the image is on another loop device: still the same target.
    expect(targetSatisfied(observed(state(1234, { luns: [lunState(1, '/srv/san/disk1.img', '/dev/loop7', 'ba701', 'SN1')] }), { devices: { '/srv/san/disk1.img': '/dev/loop7' } }), { ...as, tid: undefined })).toBe(true);
  });

  it('restored: back means the same identity on whatever tid and loop device', () => {
    const before = observed(state(7));
    expect(iscsiTargetAbsent.restored!(before, observed(state(1234, { luns: [lunState(1, '/srv/san/disk1.img', '/dev/loop5', 'ba701', 'SN1')] })), { iqn: args.iqn })).toBe(true);
    expect(iscsiTargetAbsent.restored!(before, observed(state(7, { luns: [lunState(1, '/srv/san/disk1.img', '/dev/loop3', 'ba701', 'SN2')] })), { iqn: args.iqn })).toBe(false);
    expect(iscsiTargetAbsent.restored!(before, observed(null), { iqn: args.iqn })).toBe(false);
    expect(targetMatches(null, { luns: [], acls: [] })).toBe(false);
  });

  it('a target put back has its CHAP accounts bound again, and is not back without them', async () => {
    // Before: the revert bound the ACLs and no account, and restored() said "back": tgtd then let
    // any initiator the ACL allows (ALL by default) log in without CHAP.
    const before = observed(state(7, { accounts: ['chapuser'], outgoingAccounts: ['mutual'] }));
    expect(iscsiTargetAbsent.restored!(before, observed(state(7)), { iqn: args.iqn })).toBe(false);
    expect(iscsiTargetAbsent.restored!(before, observed(state(9, { accounts: ['chapuser'], outgoingAccounts: ['mutual'] })), { iqn: args.iqn })).toBe(true);
    const { ctx, ran } = fakeTgtNode({ storage: '/dev/loop3 /srv/san/disk1.img\n\n--baton--claims\n/run/baton/loop/loop3:/srv/san/disk1.img\n\n--baton--mountinfo\n' });
    await iscsiTargetAbsent.revert(ctx as never, { iqn: args.iqn }, before);
    expect(ran).toContainEqual(expect.stringMatching(/--mode account --op bind --tid 7 --user chapuser$/));
    expect(ran).toContainEqual(expect.stringMatching(/--mode account --op bind --tid 7 --user mutual --outgoing$/));
    // CHAP bound before any ACL lets an initiator in: cut short between them, no login without CHAP.
    expect(ran.findIndex((c) => c.includes('--mode account --op bind'))).toBeLessThan(ran.findIndex((c) => c.includes('--initiator-address')));
  });

  it('the release closes the initiators\' connections, then deletes the target, again while a LUN is busy', async () => {
    const nexusShow = fixture('show-target-nexus.txt');
    const tid = parseTgtadmTargets(nexusShow)[0]!.tid;
    const iqn = parseTgtadmTargets(nexusShow)[0]!.iqn;
    let deletes = 0;
    const node = (busyFor: number, stderr = 'tgtadm: this logical unit is still active') =>
      fakeTgtNode({ targets: () => nexusShow, timeoutMs: 30_000, onChange: (c) => (c.includes('--op delete --force') && deletes++ < busyFor ? { code: 22, stderr } : undefined) });
    // Before: one delete, and "this logical unit is still active" failed the release (the
    // failover rolled back; with a hung backing store, for ever), initiators never disconnected.
    const busy = node(2);
    await iscsiTargetAbsent.apply(busy.ctx as never, { iqn }, observed(state(tid, { iqn })));
    const ran = busy.ran;
    expect(ran[0]).toMatch(new RegExp(`--mode conn --op delete --tid ${tid} --sid 1 --cid 0$`));
    expect(ran.slice(1)).toEqual(Array(3).fill(expect.stringMatching(new RegExp(`--mode target --op delete --force --tid ${tid}$`))));
    // Anything else tgtd says is reported as it said it, at once.
    deletes = 0;
    await expect(iscsiTargetAbsent.apply(node(1, 'tgtadm: invalid request').ctx as never, { iqn }, observed(state(tid, { iqn })))).rejects.toThrow(/on n1: tgtadm could not delete target \d+ .*exit 22, tgtadm: invalid request$/);
  });

  it('describes itself in one line with the command', () => {
    expect(iscsiTarget.describe(args).summary).toBe('serve iSCSI target iqn.2026-11.test.baton:g1: LUN 1 (/srv/san/disk1.img, sn SN1) on 198.18.193.100');
    expect(iscsiTargetAbsent.describe({ iqn: args.iqn }).commands.map((c) => c.slice(3, 7).join(' '))).toEqual(['--mode conn --op delete', '--mode target --op delete']);
  });
});

describe('iscsi_lun judgement', () => {
  const a = { address: '198.18.193.100', iqn: 'iqn.2026-11.test.baton:g1', lun: 1, scsi_sn: 'SN1', scsi_id: 'ba701', naa: '0x6000000000000000000000000000ba701' };
  const seen = { error: null, luns: [0, 1], serial: 'SN1', t10: 'ba701', naa: '6000000000000000000000000000ba701', ms: 5 };

  it('healthy when LUN, serial, scsi_id and NAA are as the inventory says', () => {
    expect(lunProblem(seen, a)).toBeUndefined();
    expect(lunProblem(seen, { address: a.address, iqn: a.iqn, lun: '1' })).toBeUndefined();
  });

  it('names each mismatch, the missing LUN, or what stopped the login', () => {
    expect(lunProblem({ ...seen, serial: 'SN2', naa: '3000000100000001' }, a)).toBe(
      '198.18.193.100:3260 iqn.2026-11.test.baton:g1 LUN 1: serial (VPD 0x80) is "SN2", expected "SN1"; NAA (VPD 0x83) is 3000000100000001, expected 0x6000000000000000000000000000ba701 — initiators would see another disk',
    );
    expect(lunProblem({ ...seen, luns: [0, 2] }, a)).toBe('198.18.193.100:3260 iqn.2026-11.test.baton:g1 LUN 1: the target reports LUNs 0, 2, not 1');
    expect(lunProblem({ ...seen, error: 'login refused: authentication failed' }, a)).toBe('198.18.193.100:3260 iqn.2026-11.test.baton:g1 LUN 1: login refused: authentication failed');
  });
});

describe('iscsi_target revert: the portal it added, and only that one', () => {
  // A node where this group's target (B) is served and three portals are open: one that was
  // there before B's step, B's own VIP, and group A's VIP, added by A's move since.
  const targetB = [
    'Target 1111: iqn.2026-11.test.baton:b',
    '    System information:',
    '        Driver: iscsi',
    '        State: ready',
    '    I_T nexus information:',
    '    LUN information:',
    '        LUN: 0',
    '            Type: controller',
    '            Backing store path: None',
    '        LUN: 1',
    '            Type: disk',
    '            SCSI ID: bb01',
    '            SCSI SN: SNB1',
    '            Backing store path: /dev/sdb',
    '    Account information:',
    '    ACL information:',
    '        ALL',
    '',
  ].join('\n');
  const portals = ['198.18.193.1:3260', '198.18.193.102:3260', '198.18.193.101:3260'];

  async function revertB(portalsBefore: string[]): Promise<string[]> {
    const { ctx, ran: changed } = fakeTgtNode({ host: 'n2', targets: () => targetB, portals: () => portals });
    const b = { iqn: 'iqn.2026-11.test.baton:b', portal: '198.18.193.102:3260', luns: [{ lun: '1', backing_store: '/dev/sdb', scsi_id: 'bb01', scsi_sn: 'SNB1' }] };
    await iscsiTarget.revert(ctx as never, b as never, { running: true, target: null, devices: {}, portals: portalsBefore, tids: [] });
    return changed;
  }

  it("removes B's target and B's portal, never group A's, which came after B's step read the node", async () => {
    const changed = await revertB(['198.18.193.1:3260']);
    expect(changed.filter((c) => c.includes('--mode portal'))).toEqual([expect.stringMatching(/--op delete --param portal=198\.18\.193\.102:3260$/)]);
    expect(changed.some((c) => c.includes('--mode target --op delete'))).toBe(true);
  });

  it('leaves a portal that already covered the VIP before the step (a wildcard one) alone', async () => {
    const changed = await revertB(['0.0.0.0:3260']);
    expect(changed.filter((c) => c.includes('--mode portal'))).toEqual([]);
  });
});

describe('iscsi_target arguments tgtd would refuse mid-run are refused at load', () => {
  const dir = tempDirEach('baton-iscsi-args-');
  it('LUN "0" (the controller) and an ACL listed twice, each at its place', () => {
    const pb = path.join(dir(), 'pb.yml');
    writeFileSync(
      pb,
      '- hosts: all\n  steps:\n    - iscsi_target:\n        iqn: iqn.2026-11.test.baton:g1\n        portal: 198.18.193.100\n        acls: [ALL, ALL]\n        luns:\n          - { lun: "0", backing_store: /dev/sdb, scsi_id: a1, scsi_sn: b1 }\n',
    );
    expect(loadProblems(() => loadPlaybook(pb, { inventory: localInventory(), registry: defaultRegistry() }))).toEqual([
      '6:15 "acls" must NOT have duplicate items (items ## 1 and 0 are identical)',
      `8:20 "lun" must be a LUN number from 1 (LUN 0 is tgtd's controller), got the string "0"`,
    ]);
  });
});
