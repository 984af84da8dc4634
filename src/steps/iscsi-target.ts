/**
 * `iscsi_target`: make this node's tgtd serve an iSCSI target with exactly these LUNs, each with
 * its backing volume and its identity (scsi_id → VPD 0x83, scsi_sn → VPD 0x80), and these
 * initiator ACLs; and make sure tgtd listens where initiators connect (`portal`, the VIP).
 * Initiators and multipath see the same disk after a move only if all of that is identical on
 * every node (docs/iscsi.md).
 *
 *   - iscsi_target:
 *       iqn: "{{ iqn }}"
 *       portal: "{{ vip }}:3260"
 *       acls: [198.18.193.0/24]
 *       luns:
 *         - { lun: 1, backing_image: /srv/san/disk1.img, scsi_id: "{{ scsi_id }}", scsi_sn: "{{ scsi_sn }}" }
 *
 * A takeover: the engine asks every peer first, and a peer whose tgtd serves the IQN stops it
 * (two targets of one IQN on one volume is split brain for the initiators' data).
 * Revert puts the target back as it was: removed if there was none.
 */
import type { StepKind } from './contract.js';
import { StepRefusedError } from './contract.js';
import { runnerOf } from '../facts/storage.js';
import { newPortalArgv, portalCovered } from '../facts/iscsi.js';
import {
  chooseTid, controlPortOf, createCommands, iscsiResource, portalOf, probeHere, probeTarget, reconcileCommands, restoreTarget, runAll, specOf,
  targetMatches, targetSatisfied, tidFor, toInt, type IscsiTargetArgs, type IscsiTargetObserved,
} from './iscsi/tgt.js';

export type { IscsiTargetArgs, IscsiTargetObserved };

export function iscsiTargetSummary(a: IscsiTargetArgs): string {
  const luns = a.luns.map((l) => `LUN ${l.lun} (${l.backing_image ?? l.backing_store}, sn ${l.scsi_sn})`).join(', ');
  return `${a.iqn}: ${luns}${a.portal ? ` on ${a.portal}` : ''}`;
}

export const iscsiTarget: StepKind<IscsiTargetArgs, IscsiTargetObserved> = {
  kind: 'iscsi_target',
  inverse: 'iscsi_target_absent',
  role: 'takeover',
  // A handful of tgtadm calls, each answered by tgtd in milliseconds; a hung tgtd must still end.
  defaultTimeoutS: 30,
  resource: iscsiResource,

  async heldBy(peer, a) {
    const o = await probeTarget(runnerOf(peer), { iqn: a.iqn, control_port: a.control_port });
    if (!o.target) return null;
    const sessions = o.target.sessions.length ? `, ${o.target.sessions.length} initiator session(s) logged in` : '';
    return `serves ${a.iqn} (tid ${o.target.tid}${sessions})`;
  },

  probe: (ctx, a) => probeHere(ctx, a),
  satisfied: targetSatisfied,

  // As before, in the sense initiators care about: there or not, and if there, the same identity.
  restored(before, now) {
    if (!before.target || !now.target) return !before.target === !now.target;
    return targetMatches(now.target, before.target);
  },

  async apply(ctx, a, before) {
    if (!before.running) {
      throw new Error(`on ${ctx.transport.host}: tgtd does not answer (tgtadm exit 107: no daemon on ${controlPortOf(a) === undefined ? 'its default control socket' : `control port ${controlPortOf(a)}`}); start tgtd on this node first`);
    }
    const spec = specOf(ctx, a, before);
    const cp = controlPortOf(a);
    const tid = toInt(a.tid, 'tid');
    if (before.target && tid !== undefined && before.target.tid !== tid) {
      throw new StepRefusedError(`on ${ctx.transport.host}: ${a.iqn} is served as tid ${before.target.tid}, the step asks for tid ${tid}; remove it first (iscsi_target_absent) to renumber it`);
    }
    if (before.target) await runAll(ctx, reconcileCommands(cp, before.target, spec));
    else await runAll(ctx, createCommands(cp, chooseTid(a, before.tids, ctx.log), spec));
    const portal = portalOf(a);
    if (portal && !portalCovered(before.portals, portal)) await ctx.run(newPortalArgv(cp, portal));
  },

  revert(ctx, a, before) {
    const portal = portalOf(a);
    return restoreTarget(ctx, a, before.target, portal && !portalCovered(before.portals, portal) ? portal : undefined);
  },

  describe(a) {
    let commands: string[][] = [];
    try {
      const cp = controlPortOf(a);
      const luns = a.luns.map((l) => ({ lun: toInt(l.lun, 'lun')!, backingStore: l.backing_store ?? `<loop device of ${l.backing_image}>`, scsiId: l.scsi_id, scsiSn: l.scsi_sn }));
      commands = createCommands(cp, toInt(a.tid, 'tid') ?? tidFor(a.iqn), { iqn: a.iqn, luns, acls: a.acls?.length ? a.acls : ['ALL'] });
      const portal = portalOf(a);
      if (portal) commands.push(newPortalArgv(cp, portal));
    } catch {
      /* invalid args are reported by apply with the full message */
    }
    return { summary: `serve iSCSI target ${iscsiTargetSummary(a)}`, commands };
  },
};
