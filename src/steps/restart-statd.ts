import { batchedOk, CommandFailedError, StepRefusedError, type StepContext, type StepKind } from './contract.js';
import {
  nextStatdState,
  parsePids,
  parseStatdState,
  smNotifyArgv,
  statdDirsArgv,
  statdPidsArgv,
  statdStartArgv,
  statdStateReadArgv,
  statdStateWriteArgv,
} from '../facts/nfs.js';
import { runBatch, type BatchCommand } from '../transport/batch.js';
import type { ExecResult } from '../transport/transport.js';

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

/**
 * TERM the node's rpc.statd and wait for it to exit, in one exec: exit 0 once every pid is gone,
 * 1 (printing the survivors) after TIMEOUT seconds.
 */
const STOP_STATD = `t=$1; shift
kill -TERM "$@" 2>/dev/null
i=0
while kill -0 "$@" 2>/dev/null; do
  [ "$i" -ge $((t * 20)) ] && { echo "$@"; exit 1; }
  sleep 0.05; i=$((i + 1))
done
exit 0`;
const stopStatdArgv = (timeoutS: number, pids: number[]): string[] => ['sh', '-c', STOP_STATD, 'baton-statd-stop', String(Math.ceil(timeoutS)), ...pids.map(String)];

/** Each round trip is time the NFSv3 clients wait for their notification: commands go in batches. */
const batch = (ctx: StepContext, commands: BatchCommand[]) => runBatch((argv, o) => ctx.run(argv, o), commands);

function refuseNameless(ctx: StepContext, vip: string, r: ExecResult | undefined): void {
  // sm-notify turns -v ADDRESS into the mon_name it sends by a reverse lookup and gives up
  // ("my_name … is unusable") when the address has no name: seen here with nfs-utils 2.6.2.
  if (r && r.code !== 0) {
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
    const getent = ['getent', 'hosts', a.vip];
    // 1. Name check, statd's directories, the running statd and the last state number: one exec.
    const [named, dirs, pidsNow, stateNow] = await batch(ctx, [
      ...(notify ? [{ argv: getent, mayFail: true }] : [{ argv: ['true'] }]),
      { argv: statdDirsArgv(a.state_dir) },
      { argv: statdPidsArgv() },
      { argv: statdStateReadArgv(a.state_dir), mayFail: true },
    ]);
    if (notify) refuseNameless(ctx, a.vip, named);
    batchedOk(ctx.transport.host, dirs, statdDirsArgv(a.state_dir));
    const pids = parsePids(batchedOk(ctx.transport.host, pidsNow, statdPidsArgv()).stdout);
    // 2. The old statd stops (statd writes its state number only when it starts).
    if (pids.length) {
      const timeoutS = a.stop_timeout ?? 5;
      const r = await ctx.run(stopStatdArgv(timeoutS, pids), { okCodes: [0, 1] });
      if (r.code !== 0) {
        throw new StepRefusedError(
          `on ${ctx.transport.host}: rpc.statd (pid ${r.stdout.trim() || pids.join(', ')}) did not exit within ${timeoutS} s of SIGTERM; ` +
            'find out what holds it (`cat /proc/PID/stack`), stop it, and re-run.',
        );
      }
    }
    const previous = stateNow && stateNow.code === 0 ? parseStatdState(stateNow.stdout) : undefined;
    const next = nextStatdState(previous, Date.now() / 1000);
    // 3. The new state number, read back, and the new statd on the shared directory: one exec.
    const [wrote, readBack, started, pidsAfter] = await batch(ctx, [
      { argv: statdStateWriteArgv(a.state_dir, next) },
      { argv: statdStateReadArgv(a.state_dir) },
      { argv: statdStartArgv(a.state_dir, a.vip) },
      { argv: statdPidsArgv() },
    ]);
    batchedOk(ctx.transport.host, wrote, statdStateWriteArgv(a.state_dir, next));
    const written = parseStatdState(batchedOk(ctx.transport.host, readBack, statdStateReadArgv(a.state_dir)).stdout);
    if (written !== next) {
      throw new Error(`on ${ctx.transport.host}: wrote NSM state ${next} to ${a.state_dir}/state but read back ${written ?? 'nothing'}`);
    }
    ctx.log(`NSM state ${previous ?? 'none'} -> ${next} in ${a.state_dir}/state`);
    batchedOk(ctx.transport.host, started, statdStartArgv(a.state_dir, a.vip));
    if (parsePids(batchedOk(ctx.transport.host, pidsAfter, statdPidsArgv()).stdout).length === 0) {
      throw new Error(`on ${ctx.transport.host}: \`${statdStartArgv(a.state_dir, a.vip).join(' ')}\` exited 0 but no rpc.statd runs; see the node's syslog`);
    }
    if (!notify) return;
    try {
      // 4. Without -d sm-notify forks and keeps retrying unreachable clients (15 min by default).
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
