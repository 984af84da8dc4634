import { batchedOk, StepRefusedError, type StepContext, type StepKind } from './contract.js';
import {
  DEFAULT_NSM_CALLOUT,
  groupDirArgv,
  groupDirOwnerArgv,
  installCalloutArgv,
  linkArgv,
  mapDirArgv,
  NSM_CALLOUT_SCRIPT,
  NSM_MAP_DIR,
  nsmViewArgv,
  parseNsmView,
  statdCallout,
  statdRestartArgv,
  statdWithCalloutArgv,
  unlinkArgv,
  type NsmView,
} from '../facts/nsm.js';
import { runBatch, type BatchCommand } from '../transport/batch.js';
import type { ExecResult } from '../transport/transport.js';

/**
 * `track_lock_holders`: from now on, the NFSv3 lock holders that use this group's VIP on this
 * node are recorded in the group's holder list on its volume (`STATE_DIR/sm/`), so the list moves
 * with the group and `notify_lock_holders` can tell exactly them after a move (docs/statd.md).
 *
 *   - track_lock_holders: { vip: "{{ move.vip }}", state_dir: "{{ move.mount_point }}/.nfs-statd" }
 *
 * On the node: baton's HA callout installed, the node's one rpc.statd running with it (`-H`),
 * and the map entry /run/baton/nsm/VIP -> STATE_DIR. The node's statd keeps its own state
 * directory and is never restarted for a group: only once, if it runs without the callout (its
 * monitor list is on disk and reloaded; nobody is notified). Revert puts the map entry back as
 * it was; the callout and statd's `-H` stay (with no map entry the callout records nothing).
 */
export interface TrackLockHoldersArgs {
  vip: string;
  state_dir: string;
  /** Where the callout is installed on the node (default /var/lib/nfs/baton-nsm-callout). */
  callout?: string;
  /** Seconds to wait for the node's rpc.statd to exit, if it must be restarted once (default 5). */
  stop_timeout?: number;
}

export interface TrackObserved {
  /** The map entry's target, or null. */
  link: string | null;
  /** The callout file holds baton's current text. */
  calloutCurrent: boolean;
  /** The node's rpc.statd, or null when none runs. */
  statd: { pid: number; uid: number; args: string[]; callout: string | null } | null;
  /** STATE_DIR/sm exists. */
  dirs: boolean;
}

const calloutPath = (a: TrackLockHoldersArgs) => a.callout ?? DEFAULT_NSM_CALLOUT;
const batch = (ctx: StepContext, commands: BatchCommand[], stdin?: string) => runBatch((argv, o) => ctx.run(argv, o), commands, stdin === undefined ? {} : { stdin });

/** What the node's view says of the group's tracking. */
function observedFrom(v: NsmView): TrackObserved {
  return {
    link: v.link,
    calloutCurrent: v.callout === NSM_CALLOUT_SCRIPT,
    statd: v.statd ? { ...v.statd, callout: statdCallout(v.statd, v.nfsConf) ?? null } : null,
    dirs: v.dirs,
  };
}

function viewed(host: string, r: ExecResult | undefined, argv: string[]): TrackObserved {
  const v = parseNsmView(batchedOk(host, r, argv).stdout);
  if (!v) throw new Error(`on ${host}: \`${argv.slice(0, 2).join(' ')} …\` printed less than its five sections: ${JSON.stringify((r?.stdout ?? '').slice(0, 300))}`);
  return observedFrom(v);
}

/** Everything the step needs to know, in one exec (facts/nsm.ts NSM_VIEW_SCRIPT). */
export async function probeTracking(ctx: StepContext, vip: string, stateDir: string, callout: string): Promise<TrackObserved> {
  const argv = nsmViewArgv(vip, callout, stateDir);
  return viewed(ctx.transport.host, await ctx.run(argv), argv);
}

const sameDir = (a: string | null, b: string) => a !== null && a.replace(/\/+$/, '') === b.replace(/\/+$/, '');

export const trackLockHolders: StepKind<TrackLockHoldersArgs, TrackObserved> = {
  kind: 'track_lock_holders',
  inverse: 'untrack_lock_holders',
  role: 'neutral',
  defaultTimeoutS: 30,

  probe: (ctx, a) => probeTracking(ctx, a.vip, a.state_dir, calloutPath(a)),

  satisfied(seen, a) {
    return sameDir(seen.link, a.state_dir) && seen.calloutCurrent && seen.dirs && seen.statd !== null && seen.statd.callout === calloutPath(a);
  },

  // Only the map entry is the group's; the callout and statd's -H serve every group of the node.
  restored: (before, now) => before.link === now.link,

  async apply(ctx, a, before): Promise<TrackObserved | void> {
    const host = ctx.transport.host;
    const callout = calloutPath(a);
    const uid = before.statd?.uid ?? 0;
    const other = before.statd?.callout;
    if (other && other !== callout) {
      throw new StepRefusedError(
        `on ${host}: rpc.statd (pid ${before.statd!.pid}) runs with another HA callout, ${other}; baton's (${callout}) would replace it. ` +
          'A node has one callout: remove the other one from statd (its -H, or ha-callout in [statd] of /etc/nfs.conf), or give baton its path with `callout:`, then re-run.',
      );
    }
    // 1. The callout (unless the probe read baton's current text there: another group landing
    // here installed it), the group's list (writable by statd's user) and the map entry: one exec.
    // When statd already runs the callout, that is all, and the same exec reads the node again.
    const commands: BatchCommand[] = [
      ...(before.calloutCurrent ? [] : [{ argv: installCalloutArgv(callout), stdin: true }]),
      { argv: [...groupDirArgv(a.state_dir), ...mapDirArgv().slice(2)] },
      { argv: groupDirOwnerArgv(a.state_dir, uid) },
      { argv: linkArgv(a.vip, a.state_dir) },
    ];
    const done = Boolean(before.statd && before.statd.callout === callout);
    const view = nsmViewArgv(a.vip, callout, a.state_dir);
    const results = await batch(ctx, done ? [...commands, { argv: view }] : commands, before.calloutCurrent ? undefined : NSM_CALLOUT_SCRIPT);
    commands.forEach((c, i) => batchedOk(host, results[i], c.argv));
    if (done) return viewed(host, results[commands.length], view);
    // 2. Once per node boot: statd without the callout is started again with it, on its own
    // state directory (its monitor list is reloaded from disk; --no-notify as before: nobody is
    // told). Under a node-side lock: another group landing here now may have done it already.
    const args = before.statd ? before.statd.args : ['--no-notify'];
    const start = statdRestartArgv(args, callout, [a.state_dir]);
    const timeoutS = a.stop_timeout ?? 5;
    const r = await ctx.run(statdWithCalloutArgv(timeoutS, callout, start), { okCodes: [0, 3, 4] });
    if (r.code === 4) {
      throw new Error(
        `on ${host}: rpc.statd (pid ${before.statd?.pid}) did not exit within ${timeoutS} s of SIGTERM, so it could not be given baton's HA callout; ` +
          'find out what holds it (`cat /proc/PID/stack`), stop it, and re-run.',
      );
    }
    if (r.code === 3) throw new Error(`on ${host}: ${r.stderr.trim()} for over 10 s (a stuck baton step on that node?); rpc.statd was not touched. Re-run.`);
    if (r.stdout.trim() !== 'already') ctx.log(`rpc.statd on ${host} restarted with baton's HA callout: ${start.join(' ')}`);
  },

  async revert(ctx, a, before) {
    await ctx.run(before.link === null ? unlinkArgv(a.vip) : linkArgv(a.vip, before.link));
  },

  describe(a) {
    const callout = calloutPath(a);
    return {
      summary: `record ${a.vip}'s NFSv3 lock holders in ${a.state_dir}/sm (rpc.statd's HA callout ${callout}, map ${NSM_MAP_DIR})`,
      commands: [installCalloutArgv(callout), groupDirArgv(a.state_dir), ['chown', '<uid of rpc.statd>', a.state_dir, `${a.state_dir}/sm`, `${a.state_dir}/sm.bak`], mapDirArgv(), linkArgv(a.vip, a.state_dir), ['rpc.statd', '<its own arguments, once, if it runs without the callout>', '-H', callout]],
    };
  },
};
