import type { StepContext, StepKind } from './contract.js';
import { parseSs, ssKillArgv, ssListArgv } from '../facts/net.js';
import { addVip, delArgv, probeVip, type VipObserved } from './raise-vip.js';
import { announce } from './garp.js';

/**
 * `lower_vip`: take a service address off this node (`ip addr del`) and reset the TCP
 * connections that used it, so clients reconnect to the new holder at once rather than after TCP
 * timeouts (CTDB's tickle ACKs, FACTS.md). `ss -K` destroys the sockets and the kernel sends each
 * peer a RST (measured here: the client saw "Connection reset by peer" at once); it needs a kernel
 * built with CONFIG_INET_DIAG_DESTROY, and without it the step goes on with a note.
 *
 *   - lower_vip: { address: "{{ vip }}", prefix: 24, interface: eth0 }
 *
 * Revert re-adds the address and announces it with gratuitous ARP from this node, so a rollback
 * does not leave clients pointing at the other node's MAC.
 */
export interface LowerVipArgs {
  address: string;
  prefix: number;
  interface: string;
  /** Reset TCP connections to the VIP after removing it (default true). */
  reset_connections?: boolean;
}

async function resetConnections(ctx: StepContext, a: LowerVipArgs): Promise<void> {
  const r = await ctx.run(ssKillArgv(a.address), { okCodes: [0, 1, 255] });
  const unsupported = /not supported|Operation not permitted|Invalid argument/i.test(r.stderr);
  const left = parseSs((await ctx.run(ssListArgv(a.address), { okCodes: [0, 1] })).stdout);
  if (left.length === 0) {
    if (r.stdout.trim()) ctx.log(`lower_vip: reset ${r.stdout.trim().split('\n').length} TCP connection(s) to ${a.address} on ${ctx.transport.host}`);
    return;
  }
  // A degraded release, not a failed one: the address is gone, clients will time out and retry.
  ctx.log(
    `lower_vip: ${left.length} TCP connection(s) to ${a.address} on ${ctx.transport.host} could not be reset` +
      `${unsupported ? ' (this kernel cannot destroy sockets: CONFIG_INET_DIAG_DESTROY?)' : ''}: ` +
      `${ssKillArgv(a.address).join(' ')} said ${(r.stderr || 'nothing').trim()}; their clients will reconnect only after TCP timeouts`,
  );
}

export const lowerVip: StepKind<LowerVipArgs, VipObserved> = {
  kind: 'lower_vip',
  inverse: 'raise_vip',
  role: 'release',

  probe: (ctx, a) => probeVip(ctx, a),

  satisfied(seen) {
    return !seen.present;
  },

  async apply(ctx, a, before) {
    // Delete with the prefix seen, which may differ from the one asked for.
    const now = await probeVip(ctx, a);
    if (now.present) await ctx.run(delArgv(a.address, now.prefix ?? before.prefix ?? a.prefix, a.interface));
    // After the delete, so a client that reconnects at once cannot land on this node again.
    if (a.reset_connections ?? true) await resetConnections(ctx, a);
  },

  async revert(ctx, a, before) {
    if (!before.present) return;
    const now = await probeVip(ctx, a);
    if (!(now.present && now.prefix === before.prefix && now.label === before.label && !now.tentative)) {
      if (now.present) await ctx.run(delArgv(a.address, now.prefix!, a.interface));
      await addVip(ctx, { address: a.address, prefix: before.prefix!, interface: a.interface, label: before.label });
    }
    // Clients were told another node holds it (garp after a takeover): tell them again.
    await announce(ctx, { address: a.address, interface: a.interface });
  },

  describe(a) {
    const commands = [delArgv(a.address, a.prefix, a.interface)];
    if (a.reset_connections ?? true) commands.push(ssKillArgv(a.address));
    return { summary: `lower ${a.address}/${a.prefix} from ${a.interface}${a.reset_connections === false ? '' : ' and reset its TCP connections'}`, commands };
  },
};
