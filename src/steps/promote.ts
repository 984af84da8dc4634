/**
 * `promote`: make this node the replication primary (DRBD Primary, or a site command). A
 * disconnected DRBD resource is refused unless forced: promoting both sides splits the data.
 *
 *   - promote: { provider: drbd, resource: r0 }
 *   - promote: { provider: command, probe: [cat, /run/role], expect: '^primary$', promote: [...], demote: [...] }
 */
import type { StepKind } from './contract.js';
import { drbdProvider } from './replication/drbd.js';
import { commandReplicationProvider } from './replication/command.js';
import type { ReplicationArgs, ReplicationObserved, ReplicationProvider } from './replication/provider.js';

export type { ReplicationArgs };

export function replicationProvider(a: ReplicationArgs): ReplicationProvider {
  if (a.provider === 'drbd') return drbdProvider;
  if (a.provider === 'command') return commandReplicationProvider;
  throw new Error(`unknown replication provider "${String(a.provider)}" (drbd, command)`);
}

export const probeRole = (ctx: Parameters<StepKind['probe']>[0], a: ReplicationArgs): Promise<ReplicationObserved> =>
  replicationProvider(a).probe((argv, okCodes) => ctx.run(argv, { okCodes }), a);

export const forceWarning = (a: ReplicationArgs): string =>
  a.provider === 'drbd' && a.force ? ' WITH --force: no UpToDate peer is required, this can discard the newer data' : '';

export const promoteStep: StepKind<ReplicationArgs, ReplicationObserved> = {
  kind: 'promote',
  inverse: 'demote',
  role: 'takeover',
  defaultTimeoutS: 120,
  resource: (a) => `replication ${a.resource ?? a.provider}`,

  probe: probeRole,
  satisfied: (o) => o.primary,

  async apply(ctx, a, before) {
    if (a.provider === 'drbd' && a.force) ctx.log(`promoting ${a.resource} with --force`);
    await replicationProvider(a).promote(ctx, a, before);
  },

  reversible: (a) => a.provider !== 'command' || a.demote !== undefined,

  async revert(ctx, a, before) {
    if (before.primary) return;
    const now = await probeRole(ctx, a);
    if (now.primary) await replicationProvider(a).demote(ctx, a, now);
  },

  describe(a) {
    const p = replicationProvider(a);
    return { summary: `promote ${p.label(a)} to primary${forceWarning(a)}`, commands: p.promoteArgv(a) };
  },
};
