/**
 * `iscsi_portal`: make this node's tgtd listen where initiators connect (`ADDR:PORT`, the VIP),
 * unless a portal it has already covers it (the address itself, or the wildcard of its family on
 * that port). tgtd binds a portal's address, so this runs after the VIP is up on the node: the
 * group roles make the target first (`iscsi_target`, before the VIP, so an initiator that
 * reconnects finds it) and open its portal once the VIP is raised.
 *
 *   - iscsi_portal: { portal: "{{ vip }}:3261" }
 *
 * Revert removes the portal only if this step added it: portals are tgtd's, shared by every
 * target on the node.
 */
import type { StepKind } from './contract.js';
import { deletePortalArgv, newPortalArgv, portalCovered, readTgtView, splitPortal } from '../facts/iscsi.js';
import { runnerOf } from '../facts/storage.js';
import { controlPortOf } from './iscsi/tgt.js';

export interface IscsiPortalArgs {
  /** "ADDR" or "ADDR:PORT" (default port 3260); an IPv6 address as [ADDR]:PORT. */
  portal: string;
  control_port?: number | string;
}

export interface IscsiPortalObserved {
  running: boolean;
  portals: string[];
}

/** The portal as tgtd writes it: ADDR:PORT, [ADDR]:PORT for IPv6. */
export function portalText(portal: string): string {
  const p = splitPortal(portal);
  return p.address.includes(':') ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`;
}

export const iscsiPortal: StepKind<IscsiPortalArgs, IscsiPortalObserved> = {
  kind: 'iscsi_portal',
  inverse: 'iscsi_portal',
  role: 'neutral',
  defaultTimeoutS: 30,

  async probe(ctx, a) {
    const view = await readTgtView(runnerOf(ctx), controlPortOf(a));
    return { running: view.running, portals: view.portals };
  },

  satisfied: (o, a) => o.running && portalCovered(o.portals, portalText(a.portal)),

  restored: (before, now, a) => portalCovered(before.portals, portalText(a.portal)) === portalCovered(now.portals, portalText(a.portal)),

  async apply(ctx, a, before) {
    if (!before.running) throw new Error(`on ${ctx.transport.host}: tgtd does not answer (tgtadm exit 107); start tgtd on this node first`);
    await ctx.run(newPortalArgv(controlPortOf(a), portalText(a.portal)));
  },

  async revert(ctx, a, before) {
    if (portalCovered(before.portals, portalText(a.portal))) return;
    const want = splitPortal(portalText(a.portal));
    const now = await readTgtView(runnerOf(ctx), controlPortOf(a));
    const there = now.portals.find((p) => splitPortal(p).address === want.address && splitPortal(p).port === want.port);
    if (there) await ctx.run(deletePortalArgv(controlPortOf(a), there));
  },

  describe(a) {
    return { summary: `make tgtd listen on ${portalText(a.portal)} (unless a portal of it covers that already)`, commands: [newPortalArgv(controlPortOf(a), portalText(a.portal))] };
  },
};
