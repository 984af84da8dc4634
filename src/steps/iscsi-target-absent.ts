/**
 * `iscsi_target_absent`: stop serving an iSCSI target on this node: its initiators' connections
 * closed first (they reconnect to wherever the VIP goes next), then `tgtadm --op delete --force`,
 * tried again while a LUN still has a command in flight (tgtd refuses "this logical unit is still
 * active" until the reply to it is sent: a slow backing store, or replies stuck once the VIP went). The probe
 * records the whole target (LUNs, backing volume by image, identity, ACLs, tid), so a revert
 * makes exactly that target again — on whatever loop device holds the image on this node by then.
 *
 *   - iscsi_target_absent: { iqn: "{{ iqn }}" }
 *
 * A release: the engine remembers it under the same resource key as `iscsi_target`, so a
 * takeover of the IQN on another node in the same run knows this node let it go.
 */
import type { StepKind } from './contract.js';
import { deleteConnArgv, deleteTargetArgv } from '../facts/iscsi.js';
import { controlPortOf, deleteTarget, iscsiResource, probeHere, restoreTarget, targetMatches, type IscsiTargetAbsentArgs, type IscsiTargetArgs, type IscsiTargetObserved } from './iscsi/tgt.js';

export type { IscsiTargetAbsentArgs };


export const iscsiTargetAbsent: StepKind<IscsiTargetAbsentArgs, IscsiTargetObserved> = {
  kind: 'iscsi_target_absent',
  inverse: 'iscsi_target',
  role: 'release',
  defaultTimeoutS: 30,
  resource: iscsiResource,

  probe: (ctx, a) => probeHere(ctx, a),
  // No tgtd answering is no target served: nothing to release.
  satisfied: (o) => !o.target,

  restored(before, now) {
    if (!before.target || !now.target) return !before.target === !now.target;
    // Its CHAP accounts too: put back without them, tgtd lets in any initiator the ACLs allow.
    return targetMatches(now.target, before.target);
  },

  // The revert is a takeover of the IQN: the engine asks the peers about the target as it was.
  revertAs(a, before): IscsiTargetArgs | IscsiTargetAbsentArgs {
    if (!before.target) return a;
    return {
      iqn: a.iqn,
      ...(a.control_port !== undefined ? { control_port: a.control_port } : {}),
      ...(a.peers ? { peers: a.peers } : {}),
      tid: before.target.tid,
      acls: before.target.acls,
      luns: before.target.luns.map((l) => ({
        lun: l.lun,
        ...(l.backingImage ? { backing_image: l.backingImage } : { backing_store: l.backingStore ?? '' }),
        scsi_id: l.scsiId,
        scsi_sn: l.scsiSn,
      })),
    };
  },

  async apply(ctx, a, before) {
    if (!before.target) return;
    await deleteTarget(ctx, controlPortOf(a), before.target.tid, a.iqn);
  },

  revert: (ctx, a, before) => restoreTarget(ctx, a, before.target),

  describe(a) {
    // The tid is the one the node's tgtd shows for the IQN when the step runs.
    const argv = deleteTargetArgv(controlPortOf(a), 0);
    argv[argv.length - 1] = '<tid of the IQN>';
    const conn = deleteConnArgv(controlPortOf(a), 0, 0, 0).map((w) => (w === '0' ? '<…>' : w));
    conn.splice(conn.indexOf('--tid') + 1, 1, '<tid of the IQN>');
    conn.splice(conn.indexOf('--sid') + 1, 1, '<each session>');
    conn.splice(conn.indexOf('--cid') + 1, 1, '<each of its connections>');
    return { summary: `stop serving iSCSI target ${a.iqn} (its initiators' connections closed first)`, commands: [conn, argv] };
  },
};
