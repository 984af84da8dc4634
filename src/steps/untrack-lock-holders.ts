import { batchedOk, type StepKind } from './contract.js';
import { linkArgv, NSM_MAP_DIR, readLinkArgv, unlinkArgv } from '../facts/nsm.js';
import { runBatch } from '../transport/batch.js';
import type { ExecResult } from '../transport/transport.js';

/**
 * `untrack_lock_holders`: this node stops recording lock holders of the VIP in the group's list,
 * before the group leaves it (release, before the exports go: Ganesha may unmonitor the
 * group's holders as their locks go away, and that must not empty the list that travels with
 * the volume). Only the map entry /run/baton/nsm/VIP goes; the node's statd and the other
 * groups' entries are untouched. Revert puts the entry back.
 *
 *   - untrack_lock_holders: { vip: "{{ move.vip }}" }
 */
export interface UntrackLockHoldersArgs {
  vip: string;
}

export interface UntrackObserved {
  link: string | null;
}

const linkSeen = (r: ExecResult): UntrackObserved => ({ link: r.code === 0 && r.stdout.trim() ? r.stdout.trim() : null });

export const untrackLockHolders: StepKind<UntrackLockHoldersArgs, UntrackObserved> = {
  kind: 'untrack_lock_holders',
  inverse: 'track_lock_holders',
  role: 'neutral',
  defaultTimeoutS: 15,

  async probe(ctx, a) {
    return linkSeen(await ctx.run(readLinkArgv(a.vip), { okCodes: [0, 1] }));
  },

  satisfied: (seen) => seen.link === null,
  restored: (before, now) => before.link === now.link,

  // The entry removed and read again in one exec: this runs for every group leaving a node.
  async apply(ctx, a) {
    const [removed, after] = await runBatch((argv, o) => ctx.run(argv, o), [{ argv: unlinkArgv(a.vip) }, { argv: readLinkArgv(a.vip), mayFail: true }]);
    batchedOk(ctx.transport.host, removed, unlinkArgv(a.vip));
    return after ? linkSeen(after) : undefined;
  },

  async revert(ctx, a, before) {
    if (before.link !== null) await ctx.run(linkArgv(a.vip, before.link));
  },

  describe(a) {
    return { summary: `stop recording ${a.vip}'s NFSv3 lock holders on this node (${NSM_MAP_DIR})`, commands: [unlinkArgv(a.vip)] };
  },
};
