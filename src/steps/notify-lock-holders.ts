import { batchedOk, CommandFailedError, StepRefusedError, type StepContext, type StepKind } from './contract.js';
import { nextStatdState, parseStatdState, statdStateReadArgv, statdStateWriteArgv } from '../facts/nfs.js';
import { groupDirArgv, groupSmNotifyArgv, notifyCopyArgv, notifyScratchDir } from '../facts/nsm.js';
import { runBatch, type BatchCommand } from '../transport/batch.js';

/**
 * `notify_lock_holders`: NFSv3 lock recovery for one service group after it moved. Its holders
 * (`STATE_DIR/sm/`, kept by `track_lock_holders` on the group's volume) get SM_NOTIFY from the
 * group's VIP with the group's own state number, made larger than the last one (clients act only
 * when it changed: FACTS.md, restart_statd). The node's rpc.statd is not touched, so the
 * holders of the other groups on the node are neither notified nor disturbed (docs/statd.md).
 *
 *   - notify_lock_holders: { vip: "{{ move.vip }}", state_dir: "{{ move.mount_point }}/.nfs-statd" }
 *     when: vip_raised is changed
 *
 * One-shot, last (after the exports and the VIP: notifying before the exports exist makes
 * reclaims fail, resource-agents PR #443). With no holder on record, sm-notify is not run.
 */
export interface NotifyLockHoldersArgs {
  vip: string;
  state_dir: string;
}

const batch = (ctx: StepContext, commands: BatchCommand[]) => runBatch((argv, o) => ctx.run(argv, o), commands);

export const notifyLockHolders: StepKind<NotifyLockHoldersArgs, Record<string, never>> = {
  kind: 'notify_lock_holders',
  role: 'neutral',
  defaultTimeoutS: 30,
  oneShot: true,

  async probe() {
    return {};
  },

  satisfied: () => false,

  async apply(ctx, a) {
    const host = ctx.transport.host;
    const getent = ['getent', 'hosts', a.vip];
    // 1. The VIP's name, the list's directories and the last state number: one exec.
    const [named, dirs, stateNow] = await batch(ctx, [
      { argv: getent, mayFail: true },
      { argv: groupDirArgv(a.state_dir) },
      { argv: statdStateReadArgv(a.state_dir), mayFail: true },
    ]);
    if (named && named.code !== 0) {
      // sm-notify sends the VIP's host name as mon_name and gives up without one (nfs-utils 2.6.2).
      throw new StepRefusedError(
        `on ${host}: the VIP ${a.vip} has no host name (\`getent hosts ${a.vip}\` found none), and sm-notify needs one as the ` +
          `name clients know this server by. Add "${a.vip} <the name clients mount>" to /etc/hosts on every node (or DNS), then re-run.`,
      );
    }
    batchedOk(host, dirs, groupDirArgv(a.state_dir));
    const previous = stateNow && stateNow.code === 0 ? parseStatdState(stateNow.stdout) : undefined;
    const next = nextStatdState(previous, Date.now() / 1000);
    // 2. The new state number, read back, and the notification from a copy of the list: one exec.
    const commands: BatchCommand[] = [{ argv: statdStateWriteArgv(a.state_dir, next) }, { argv: statdStateReadArgv(a.state_dir) }, { argv: notifyCopyArgv(a.state_dir, a.vip) }];
    const [wrote, readBack, notified] = await batch(ctx, commands);
    batchedOk(host, wrote, commands[0]!.argv);
    const written = parseStatdState(batchedOk(host, readBack, commands[1]!.argv).stdout);
    if (written !== next) throw new Error(`on ${host}: wrote NSM state ${next} to ${a.state_dir}/state but read back ${written ?? 'nothing'}`);
    try {
      const n = Number(batchedOk(host, notified, commands[2]!.argv).stdout.trim().split('\n')[0]);
      ctx.log(`${a.vip}: NSM state ${previous ?? 'none'} -> ${next}; ${n ? `SM_NOTIFY sent to ${n} lock holder(s)` : 'no NFSv3 lock holder on record, nobody to notify'}`);
    } catch (e) {
      if (e instanceof CommandFailedError) {
        throw new Error(
          `${e.message}. ${a.state_dir}/state now holds ${next}; the holders were not notified: fix the cause and re-run, or run ` +
            `\`${groupSmNotifyArgv(notifyScratchDir(a.vip), a.vip).join(' ')}\` on a copy of ${a.state_dir} there.`,
        );
      }
      throw e;
    }
  },

  // A larger state number and a notification cannot be taken back.
  reversible: () => false,
  async revert() {},

  describe(a) {
    return {
      summary: `notify ${a.vip}'s NFSv3 lock holders (${a.state_dir}/sm) from ${a.vip} with a larger state number`,
      commands: [groupDirArgv(a.state_dir), statdStateWriteArgv(a.state_dir, 0).slice(0, -1).concat('<next state>'), notifyCopyArgv(a.state_dir, a.vip)],
    };
  },
};
