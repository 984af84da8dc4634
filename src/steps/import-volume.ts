/**
 * `import_volume`: make a shared volume usable on this node (attach a loop image, import a
 * zpool, take over a VG). The engine asks every peer whether it holds the volume first
 * (`heldBy`): importing what a live peer still uses is split brain.
 *
 *   - import_volume: { provider: loop, image: /srv/san/disk1.img }
 *   - import_volume: { provider: zfs, pool: tank }
 *   - import_volume: { provider: lvm, vg: vg_nfs }
 */
import type { StepKind } from './contract.js';
import { runnerOf } from '../facts/storage.js';
import type { VolumeArgs, VolumeProvider } from './volume/provider.js';
import { loopProvider } from './volume/loop.js';
import { zfsProvider } from './volume/zfs.js';
import { lvmProvider } from './volume/lvm.js';
import { commandVolumeProvider } from './volume/command.js';

export type { VolumeArgs };

const providers: Record<VolumeArgs['provider'], VolumeProvider> = {
  loop: loopProvider as VolumeProvider,
  zfs: zfsProvider as VolumeProvider,
  lvm: lvmProvider as VolumeProvider,
  command: commandVolumeProvider as VolumeProvider,
};

export function volumeProvider(a: VolumeArgs): VolumeProvider {
  const p = providers[a.provider];
  if (!p) throw new Error(`unknown volume provider "${String(a.provider)}" (loop, zfs, lvm, command)`);
  return p;
}

/** The key import and deport share: one volume, whatever node it is on. */
export const volumeResource = (a: VolumeArgs): string => `volume ${volumeProvider(a).label(a)}`;

export const importVolume: StepKind<VolumeArgs, unknown> = {
  kind: 'import_volume',
  inverse: 'deport_volume',
  role: 'takeover',
  // zpool import of a large pool can take a while; a hung one must still end.
  defaultTimeoutS: 120,
  resource: volumeResource,

  async heldBy(peer, a) {
    const p = volumeProvider(a);
    // A peer's own system ID decides for LVM, not the one this node takes over to.
    const seen = await p.probe(runnerOf(peer), { ...a, system_id: undefined });
    return p.imported(seen, a) ? `has ${p.label(a)} imported` : null;
  },

  probe: (ctx, a) => volumeProvider(a).probe((argv, okCodes) => ctx.run(argv, { okCodes }), a),

  satisfied: (o, a) => volumeProvider(a).imported(o, a),

  async apply(ctx, a, before) {
    return volumeProvider(a).importHere(ctx, a, before);
  },

  reversible: (a) => a.provider !== 'command' || a.deport !== undefined,

  async revert(ctx, a, before) {
    const p = volumeProvider(a);
    if (p.imported(before, a)) return;
    // Probe again: an undo after a crash may revert an import that never happened.
    const now = await p.probe((argv, okCodes) => ctx.run(argv, { okCodes }), a);
    if (p.imported(now, a) || a.provider === 'lvm') await p.deportHere(ctx, a, now, before);
  },

  describe(a) {
    const p = volumeProvider(a);
    return { summary: `import ${p.label(a)}${a.force ? ' (forced)' : ''}`, commands: p.importArgv(a) };
  },
};
