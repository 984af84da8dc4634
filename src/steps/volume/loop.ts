/** Loop provider: a shared image file attached as a loop device (the lab's SAN disks). */
import { CommandFailedError, StepRefusedError } from '../contract.js';
import { loopClaimRemoveArgv, loopClaimWriteArgv, readLoopState, readStorageView, runnerOf, type LoopState } from '../../facts/storage.js';
import { need, type VolumeProvider } from './provider.js';

export const loopImportArgv = (image: string): string[] => ['losetup', '--nooverlap', '--find', '--show', image];
export const loopDetachArgv = (device: string): string[] => ['losetup', '--detach', device];

export const loopProvider: VolumeProvider<LoopState> = {
  label: (a) => `loop image ${need(a, 'image')}`,

  probe: (run, a) => readLoopState(run, need(a, 'image')),

  imported: (o) => o.held.length > 0,

  async importHere(ctx, a) {
    const image = need(a, 'image');
    // --nooverlap reuses a device already backed by the image instead of attaching a second one
    // (two devices on one ext4 image mounted twice would corrupt it).
    const r = await ctx.run(loopImportArgv(image));
    const device = r.stdout.trim();
    if (!/^\/dev\/loop\d+$/.test(device)) throw new Error(`on ${ctx.host.name}: \`${loopImportArgv(image).join(' ')}\` printed "${device}", not a loop device`);
    await ctx.run(loopClaimWriteArgv(device, image));
  },

  async deportHere(ctx, a, now) {
    const image = need(a, 'image');
    const mounts = (await readStorageView(runnerOf(ctx))).mounts;
    for (const dev of now.held) {
      const where = mounts.filter((m) => m.source === dev).map((m) => m.mountPoint);
      if (where.length) {
        throw new StepRefusedError(`${ctx.host.name}: will not detach ${dev} (${image}): it is mounted on ${where.join(', ')}; unmount it first (an unmount step before deport_volume)`);
      }
    }
    for (const dev of now.held) {
      await ctx.run(loopDetachArgv(dev)).catch((e: unknown) => {
        // Detached by someone else in between: that is the state we want.
        if (!(e instanceof CommandFailedError && /No such device/i.test(e.result.stderr))) throw e;
      });
      // losetup -d on a busy device only sets autoclear and exits 0: check it is really gone.
      const after = await readLoopState(runnerOf(ctx), image);
      if (after.attached.includes(dev)) {
        throw new Error(
          `on ${ctx.host.name}: ${dev} (${image}) is still attached after \`losetup --detach ${dev}\`: something still holds it open ` +
            `(a mount in another namespace, a process with the device open); find it with \`lsof ${dev}\` or \`findmnt ${dev}\`, release it, and re-run`,
        );
      }
      await ctx.run(loopClaimRemoveArgv(dev));
    }
  },

  importArgv: (a) => [loopImportArgv(need(a, 'image'))],
  deportArgv: () => [['losetup', '--detach', 'DEVICE']],
};
