/**
 * `deport_volume`: release a shared volume on this node (detach the loop image, export the
 * zpool, deactivate the VG) so a peer can import it. A loop device that is still mounted is
 * refused: unmount first.
 *
 *   - deport_volume: { provider: loop, image: /srv/san/disk1.img }
 */
import type { StepKind } from './contract.js';
import { volumeProvider, volumeResource, type VolumeArgs } from './import-volume.js';

export const deportVolume: StepKind<VolumeArgs, unknown> = {
  kind: 'deport_volume',
  inverse: 'import_volume',
  role: 'release',
  defaultTimeoutS: 120,
  resource: volumeResource,

  probe: (ctx, a) => volumeProvider(a).probe((argv, okCodes) => ctx.run(argv, { okCodes }), a),

  satisfied: (o, a) => !volumeProvider(a).imported(o, a),

  async apply(ctx, a, before) {
    return volumeProvider(a).deportHere(ctx, a, before);
  },

  reversible: (a) => a.provider !== 'command' || a.import !== undefined,

  async revert(ctx, a, before) {
    const p = volumeProvider(a);
    if (!p.imported(before, a)) return;
    const now = await p.probe((argv, okCodes) => ctx.run(argv, { okCodes }), a);
    // Re-importing what this node held a moment ago: the engine has asked the peers first.
    if (!p.imported(now, a)) await p.importHere(ctx, a, now);
  },

  describe(a) {
    const p = volumeProvider(a);
    return { summary: `deport ${p.label(a)}${a.force ? ' (forced)' : ''}`, commands: p.deportArgv(a) };
  },
};
