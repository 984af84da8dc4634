import type { StepKind } from './contract.js';

/**
 * Every step kind baton ships: its YAML name, its safety role, and how to load it. Validation
 * needs only the first two, so `baton validate` never loads a kind's code (Node 20 pays for
 * every ES module it loads; the kinds and their facts are ~35 of them). Adding a kind: one line
 * here, one in steps/index.ts; a test checks the two agree.
 */
export type StepRole = NonNullable<StepKind['role']>;

export interface CatalogEntry {
  kind: string;
  role: StepRole;
  load: () => Promise<StepKind>;
}

export const catalog: CatalogEntry[] = [
  { kind: 'command', role: 'neutral', load: async () => (await import('./command.js')).command },
  { kind: 'wait_for', role: 'neutral', load: async () => (await import('./wait-for.js')).waitFor },
  { kind: 'assert', role: 'neutral', load: async () => (await import('./assert.js')).assertStep },
  { kind: 'fence', role: 'fence', load: async () => (await import('./fence.js')).fence },
  { kind: 'unfence', role: 'neutral', load: async () => (await import('./unfence.js')).unfence },
  { kind: 'raise_vip', role: 'takeover', load: async () => (await import('./raise-vip.js')).raiseVip },
  { kind: 'lower_vip', role: 'release', load: async () => (await import('./lower-vip.js')).lowerVip },
  { kind: 'failover_mac', role: 'takeover', load: async () => (await import('./failover-mac.js')).failoverMac },
  { kind: 'release_mac', role: 'release', load: async () => (await import('./release-mac.js')).releaseMac },
  { kind: 'garp', role: 'neutral', load: async () => (await import('./garp.js')).garp },
  { kind: 'export', role: 'takeover', load: async () => (await import('./export.js')).exportStep },
  { kind: 'unexport', role: 'release', load: async () => (await import('./unexport.js')).unexportStep },
  { kind: 'restart_statd', role: 'neutral', load: async () => (await import('./restart-statd.js')).restartStatd },
  { kind: 'track_lock_holders', role: 'neutral', load: async () => (await import('./track-lock-holders.js')).trackLockHolders },
  { kind: 'untrack_lock_holders', role: 'neutral', load: async () => (await import('./untrack-lock-holders.js')).untrackLockHolders },
  { kind: 'notify_lock_holders', role: 'neutral', load: async () => (await import('./notify-lock-holders.js')).notifyLockHolders },
  { kind: 'import_volume', role: 'takeover', load: async () => (await import('./import-volume.js')).importVolume },
  { kind: 'deport_volume', role: 'release', load: async () => (await import('./deport-volume.js')).deportVolume },
  { kind: 'mount', role: 'takeover', load: async () => (await import('./mount.js')).mountStep },
  { kind: 'unmount', role: 'release', load: async () => (await import('./unmount.js')).unmountStep },
  { kind: 'promote', role: 'takeover', load: async () => (await import('./promote.js')).promoteStep },
  { kind: 'demote', role: 'release', load: async () => (await import('./demote.js')).demoteStep },
  { kind: 'vip_holder', role: 'neutral', load: async () => (await import('./vip-holder.js')).vipHolder },
  { kind: 'mounted', role: 'neutral', load: async () => (await import('./mounted.js')).mounted },
  { kind: 'exported', role: 'neutral', load: async () => (await import('./exported.js')).exported },
  { kind: 'service_running', role: 'neutral', load: async () => (await import('./service-running.js')).serviceRunning },
  { kind: 'nfs_null', role: 'neutral', load: async () => (await import('./nfs-null.js')).nfsNull },
  { kind: 'tcp', role: 'neutral', load: async () => (await import('./tcp.js')).tcp },
  { kind: 'disk_free', role: 'neutral', load: async () => (await import('./disk-free.js')).diskFree },
  { kind: 'fence_device', role: 'neutral', load: async () => (await import('./fence-device.js')).fenceDevice },
  { kind: 'iscsi_target', role: 'takeover', load: async () => (await import('./iscsi-target.js')).iscsiTarget },
  { kind: 'iscsi_target_absent', role: 'release', load: async () => (await import('./iscsi-target-absent.js')).iscsiTargetAbsent },
  { kind: 'iscsi_portal', role: 'neutral', load: async () => (await import('./iscsi-portal.js')).iscsiPortal },
  { kind: 'iscsi_lun', role: 'neutral', load: async () => (await import('./iscsi-lun.js')).iscsiLun },
];
