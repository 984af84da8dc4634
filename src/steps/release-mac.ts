import type { StepContext, StepKind } from './contract.js';
import { readLink } from '../facts/links.js';
import { macResource, restoreMac, setMacArgv, type MacObserved } from './failover-mac.js';

/**
 * `release_mac`: this node gives a service group's MAC up: its failover interface goes down and
 * back to its own MAC, so the group's MAC is on one node only and the next holder's
 * `failover_mac` may take it. Runs after `lower_vip` took the VIP off the interface.
 *
 *   - release_mac: { interface: fo1, mac: "02:00:5e:10:00:01" }
 *
 * The interface's own MAC is, first found: `idle_mac`; the node's `failover_nics` var (a mapping
 * of failover interface to its own MAC, as `baton lab up --failover-nics` writes it); the NIC's
 * permanent address as the kernel reports it (`permaddr`: physical NICs). With none of them the
 * interface only goes down, keeping the group's MAC while down. Revert brings the group's MAC back
 * up, after the same checks as failover_mac (no peer has it up now).
 */
export interface ReleaseMacArgs {
  interface: string;
  mac: string;
  /** The interface's own MAC, to give back. */
  idle_mac?: string;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** The node's own MAC for this interface from its `failover_nics` var, when it is plain data. */
function idleFromVars(ctx: StepContext, iface: string): string | undefined {
  const nics = ctx.host.vars.failover_nics;
  if (!nics || typeof nics !== 'object' || Array.isArray(nics)) return undefined;
  const mac = (nics as Record<string, unknown>)[iface];
  return typeof mac === 'string' && MAC_RE.test(mac.toLowerCase()) ? mac.toLowerCase() : undefined;
}

async function probeRelease(ctx: StepContext, a: ReleaseMacArgs): Promise<MacObserved> {
  const link = await readLink(ctx, a.interface);
  if (!link) return { exists: false, address: '', up: false };
  const idle = a.idle_mac?.toLowerCase() || idleFromVars(ctx, a.interface) || link.permaddr || '';
  return { exists: true, address: link.address, up: link.up, idle };
}

export const releaseMac: StepKind<ReleaseMacArgs, MacObserved> = {
  kind: 'release_mac',
  inverse: 'failover_mac',
  role: 'release',
  defaultTimeoutS: 20,
  resource: macResource,

  probe: probeRelease,

  satisfied(seen, a) {
    if (!seen.exists || seen.address !== a.mac.toLowerCase()) return true;
    // Nothing to give the MAC back for: down is as released as it gets.
    return !seen.idle && !seen.up;
  },

  restored(before, now) {
    return now.exists === before.exists && now.address === before.address && now.up === before.up;
  },

  async apply(ctx, a, before) {
    if (before.idle) await ctx.run(setMacArgv(a.interface, before.idle, false));
    else {
      ctx.log(`release_mac: no own MAC known for ${a.interface} on ${ctx.transport.host} (no idle_mac, no failover_nics var, no permaddr): taking it down with ${a.mac} on it`);
      await ctx.run(['ip', 'link', 'set', 'dev', a.interface, 'down']);
    }
  },

  revert: (ctx, a, before) => restoreMac(ctx, a.interface, before),

  describe(a) {
    // The own MAC is read from the node when not given (failover_nics, permaddr): known at run time only.
    if (a.idle_mac) return { summary: `take ${a.interface} down and give it back its own MAC ${a.idle_mac.toLowerCase()} (releasing ${a.mac.toLowerCase()})`, commands: [setMacArgv(a.interface, a.idle_mac.toLowerCase(), false)] };
    return { summary: `take ${a.interface} down and give it back its own MAC (the node's failover_nics, or its permaddr), releasing ${a.mac.toLowerCase()}`, commands: [['ip', 'link', 'set', 'dev', a.interface, 'down']] };
  },
};
