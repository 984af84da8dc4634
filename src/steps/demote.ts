/**
 * `demote`: give up the replication primary role on this node (DRBD Secondary, or a site
 * command). DRBD refuses while the device is in use: unmount first.
 *
 *   - demote: { provider: drbd, resource: r0 }
 */
import type { StepKind } from './contract.js';
import { probeRole, replicationProvider, type ReplicationArgs } from './promote.js';
import type { ReplicationObserved } from './replication/provider.js';

export const demoteStep: StepKind<ReplicationArgs, ReplicationObserved> = {
  kind: 'demote',
  inverse: 'promote',
  role: 'release',
  defaultTimeoutS: 120,
  resource: (a) => `replication ${a.resource ?? a.provider}`,

  probe: probeRole,
  satisfied: (o) => !o.primary,

  async apply(ctx, a, before) {
    await replicationProvider(a).demote(ctx, a, before);
  },

  reversible: (a) => a.provider !== 'command' || a.promote !== undefined,

  async revert(ctx, a, before) {
    if (!before.primary) return;
    const now = await probeRole(ctx, a);
    // Back to primary on the node that was primary a moment ago: the connection check is for takeovers.
    if (!now.primary) await replicationProvider(a).promote(ctx, { ...a }, { ...now, connected: undefined });
  },

  describe(a) {
    const p = replicationProvider(a);
    return { summary: `demote ${p.label(a)} to secondary`, commands: p.demoteArgv(a) };
  },
};
