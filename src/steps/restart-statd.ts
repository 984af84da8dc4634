import { CommandFailedError, StepRefusedError, type StepContext, type StepKind } from './contract.js';
import {
  nextStatdState,
  readStatdPids,
  readStatdState,
  smNotifyArgv,
  statdDirsArgv,
  statdStartArgv,
  statdStateWriteArgv,
} from '../facts/nfs.js';

/**
 * `restart_statd`: NFSv3 lock recovery after a takeover (FACTS.md, restart_statd). The NSM state
 * (`sm/`, `sm.bak/`, `state`) lives on the shared volume, so the node taking over knows whom the
 * old node granted locks to. Stop the node's rpc.statd, write a state number larger than the
 * previous one (clients act only when it changed), start rpc.statd on the shared directory under
 * the VIP's name, then tell the clients with sm-notify from the VIP — last, once the exports exist
 * (notifying before makes reclaims fail: resource-agents PR #443).
 *
 * One-shot: there is nothing to probe, and notifying again is what a re-run would mean. Gate it
 * in playbooks with `when: <export step> is changed`.
 */
export interface RestartStatdArgs {
  vip: string;
  state_dir: string;
  /** Send SM_NOTIFY to the monitored clients (default true). */
  notify?: boolean;
  /** Seconds to wait for the old rpc.statd to exit (default 5). */
  stop_timeout?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stopStatd(ctx: StepContext, timeoutS: number): Promise<void> {
  const pids = await readStatdPids(ctx);
  if (pids.length === 0) return;
  await ctx.run(['kill', '-TERM', ...pids.map(String)], { okCodes: [0, 1] });
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    const r = await ctx.run(['kill', '-0', ...pids.map(String)], { okCodes: [0, 1] });
    // kill -0 on several pids exits 0 while any is alive.
    if (r.code !== 0) return;
    if (Date.now() >= deadline) {
      throw new StepRefusedError(
        `on ${ctx.transport.host}: rpc.statd (pid ${pids.join(', ')}) did not exit within ${timeoutS} s of SIGTERM; ` +
          'find out what holds it (`cat /proc/PID/stack`), stop it, and re-run.',
      );
    }
    await sleep(100);
  }
}

async function checkNameResolves(ctx: StepContext, vip: string): Promise<void> {
  // sm-notify turns -v ADDRESS into the mon_name it sends by a reverse lookup and gives up
  // ("my_name … is unusable") when the address has no name: seen here with nfs-utils 2.6.2.
  const r = await ctx.run(['getent', 'hosts', vip], { okCodes: [0, 1, 2] });
  if (r.code !== 0) {
    throw new StepRefusedError(
      `on ${ctx.transport.host}: the VIP ${vip} has no host name (\`getent hosts ${vip}\` found none), and sm-notify needs one as the ` +
        `name clients know this server by. Add "${vip} <the name clients mount>" to /etc/hosts on every node (or DNS), then re-run.`,
    );
  }
}

export const restartStatd: StepKind<RestartStatdArgs, Record<string, never>> = {
  kind: 'restart_statd',
  role: 'neutral',
  defaultTimeoutS: 60,
  oneShot: true,

  async probe() {
    return {};
  },

  satisfied: () => false,

  async apply(ctx, a) {
    const notify = a.notify ?? true;
    if (notify) await checkNameResolves(ctx, a.vip);
    await ctx.run(statdDirsArgv(a.state_dir));
    await stopStatd(ctx, a.stop_timeout ?? 5);
    const previous = await readStatdState(ctx, a.state_dir);
    const next = nextStatdState(previous, Date.now() / 1000);
    await ctx.run(statdStateWriteArgv(a.state_dir, next));
    const written = await readStatdState(ctx, a.state_dir);
    if (written !== next) {
      throw new Error(`on ${ctx.transport.host}: wrote NSM state ${next} to ${a.state_dir}/state but read back ${written ?? 'nothing'}`);
    }
    ctx.log(`NSM state ${previous ?? 'none'} -> ${next} in ${a.state_dir}/state`);
    await ctx.run(statdStartArgv(a.state_dir, a.vip));
    if ((await readStatdPids(ctx)).length === 0) {
      throw new Error(`on ${ctx.transport.host}: \`${statdStartArgv(a.state_dir, a.vip).join(' ')}\` exited 0 but no rpc.statd runs; see the node's syslog`);
    }
    if (!notify) return;
    try {
      // Without -d sm-notify forks and keeps retrying unreachable clients (15 min by default).
      await ctx.run(smNotifyArgv(a.state_dir, a.vip));
    } catch (e) {
      if (e instanceof CommandFailedError) {
        throw new Error(`${e.message}. rpc.statd was restarted with state ${next}; clients were not notified: fix the cause and run sm-notify as shown.`);
      }
      throw e;
    }
  },

  // Nothing to undo: a higher state number and a notification cannot be taken back, and a
  // statd on the shared directory is what the node that holds the VIP should run.
  reversible: () => false,
  async revert() {},

  describe(a) {
    const commands = [statdDirsArgv(a.state_dir), ['kill', '-TERM', '<pid of rpc.statd>'], statdStateWriteArgv(a.state_dir, 0).slice(0, -1).concat('<next state>'), statdStartArgv(a.state_dir, a.vip)];
    if (a.notify ?? true) commands.push(smNotifyArgv(a.state_dir, a.vip));
    return { summary: `restart rpc.statd on ${a.state_dir} as ${a.vip}${(a.notify ?? true) ? ' and notify NFSv3 clients' : ''}`, commands };
  },
};
