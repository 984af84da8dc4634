/** DRBD provider: `drbdadm primary|secondary RES`. */
import { StepRefusedError, type StepContext } from '../contract.js';
import { drbdConnected, drbdRoleArgv, drbdStatusArgv, parseDrbdRole, parseDrbdStatus, type Runner } from '../../facts/storage.js';
import type { ReplicationArgs, ReplicationObserved, ReplicationProvider } from './provider.js';

const res = (a: ReplicationArgs): string => {
  if (!a.resource) throw new Error('provider drbd needs `resource`');
  return a.resource;
};

/** --force only when asked: it promotes without an UpToDate peer, which is how split brains start. */
export const drbdPrimaryArgv = (a: ReplicationArgs): string[] => ['drbdadm', 'primary', ...(a.force ? ['--force'] : []), res(a)];
export const drbdSecondaryArgv = (a: ReplicationArgs): string[] => ['drbdadm', 'secondary', res(a)];

export const drbdProvider: ReplicationProvider = {
  label: (a) => `DRBD resource ${res(a)}`,

  async probe(run: Runner, a): Promise<ReplicationObserved> {
    const role = parseDrbdRole((await run(drbdRoleArgv(res(a)))).stdout);
    const status = parseDrbdStatus((await run(drbdStatusArgv(res(a)))).stdout);
    return { primary: role === 'Primary', role, connected: drbdConnected(status) };
  },

  async promote(ctx: StepContext, a, now) {
    if (now.connected === false && !a.force && !ctx.force) {
      throw new StepRefusedError(
        `${ctx.host.name}: will not promote ${res(a)}: it is not connected to its peer (\`drbdadm status ${res(a)}\`); promoting now risks a split brain ` +
          `with diverging data. Make sure the peer is fenced or Secondary, then re-run with --force.`,
      );
    }
    await ctx.run(drbdPrimaryArgv(a), { timeoutMs: ctx.timeoutMs });
  },

  async demote(ctx, a) {
    // Fails while the device is still in use (mounted, exported): unmount first.
    await ctx.run(drbdSecondaryArgv(a), { timeoutMs: ctx.timeoutMs });
  },

  promoteArgv: (a) => [drbdPrimaryArgv(a)],
  demoteArgv: (a) => [drbdSecondaryArgv(a)],
};
