/**
 * `unmount`: unmount a path; processes keeping it busy are signalled (TERM, then KILL) within
 * `kill_timeout` seconds, then the step gives up naming them. What was mounted is recorded, so
 * a revert mounts it back with the same source, type and options.
 *
 *   - unmount: { path: /srv/disk1 }
 *   - unmount: { path: /export, kill_timeout: 30, kill_users: false }
 */
import { StepRefusedError, type StepKind } from './contract.js';
import { mountAt, normPath, readLoopState, readMounts, readStorageView, runnerOf, type StorageView } from '../facts/storage.js';
import { DEFAULT_KILL_TIMEOUT_S, mountArgv, mountResource, toMounted, unmountPath, type MountedFs } from './mount.js';

export interface UnmountArgs {
  path: string;
  /** Seconds the whole unmount may take, signals included (default 10). */
  kill_timeout?: number;
  /** Signal the processes that keep the mount busy (default true). */
  kill_users?: boolean;
}

export interface UnmountObserved {
  mounted: MountedFs | null;
  /** Backing file when the source is a loop device: a re-import after rollback may get another loopN. */
  image?: string;
}

/** The probe's reading of a storage view: what is mounted at the path, and the image behind a loop device. */
function unmountSeen(view: StorageView, a: UnmountArgs): UnmountObserved {
  const mounted = toMounted(mountAt(view.mounts, a.path));
  if (!mounted || !/^\/dev\/loop\d+$/.test(mounted.source)) return { mounted };
  const image = view.loops.find((d) => d.name === mounted.source)?.backFile;
  return image ? { mounted, image } : { mounted };
}

export const unmountStep: StepKind<UnmountArgs, UnmountObserved> = {
  kind: 'unmount',
  inverse: 'mount',
  role: 'release',
  // The kill escalation is bounded by kill_timeout; leave room for the umount after it.
  defaultTimeoutS: (a) => (a.kill_timeout ?? DEFAULT_KILL_TIMEOUT_S) + 30,
  resource: mountResource,
  // Back as before means mounted again with the same filesystem type: a re-imported disk may be
  // /dev/loop1 where it was /dev/loop2, and that is the same service.
  restored: (before, now) => (before.mounted === null) === (now.mounted === null) && (before.mounted === null || before.mounted.fstype === now.mounted?.fstype),

  async probe(ctx, a) {
    // Mount table and loop devices in one exec: the backing file is needed when it is a loop.
    return unmountSeen(await readStorageView(runnerOf(ctx)), a);
  },


  satisfied: (o) => o.mounted === null,

  // Mounting back is a mount of what was there: the peers are asked about that image or device
  // (the path alone would not tell them what to look for).
  revertAs(a, before) {
    const m = before.mounted;
    if (!m) return { path: a.path, fstype: '' };
    const base = { path: a.path, fstype: m.fstype, options: m.options };
    return before.image ? { ...base, source_image: before.image } : { ...base, source: m.source };
  },

  async apply(ctx, a) {
    const { killed, view } = await unmountPath(ctx, a.path, { killTimeoutS: a.kill_timeout ?? DEFAULT_KILL_TIMEOUT_S, killUsers: a.kill_users ?? true });
    if (killed.length) ctx.log(`unmounted ${a.path} after signalling ${killed.map((u) => `${u.pid} (${u.comm})`).join(', ')}`);
    return view ? unmountSeen(view, a) : undefined;
  },

  async revert(ctx, a, before) {
    const m = before.mounted;
    if (!m) return;
    const now = mountAt(await readMounts(runnerOf(ctx)), a.path);
    if (now) return;
    let source = m.source;
    if (before.image) {
      // Only a device this node attached: where nodes share a kernel (containers, the lab) the
      // old loop device may still exist after this node let go of it, attached by a peer now.
      const held = (await readLoopState(runnerOf(ctx), before.image)).held;
      if (!held.length) {
        throw new StepRefusedError(
          `${ctx.host.name}: will not mount ${before.image} back on ${normPath(a.path)}: it is not attached on this node any more (its detach was not put back)`,
        );
      }
      if (!held.includes(source)) source = held[0]!;
    }
    await ctx.run(mountArgv(source, a.path, m.fstype, m.options));
  },

  describe(a) {
    return { summary: `unmount ${normPath(a.path)}`, commands: [['umount', normPath(a.path)]] };
  },
};
