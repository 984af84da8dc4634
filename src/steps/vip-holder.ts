import { CommandFailedError } from './contract.js';
import { checkKind, listNames, type SeverityArg } from './check/common.js';
import { addrShowArgv, findAddress, parseIpAddr } from '../facts/net.js';
import { allAddrShowArgv } from '../facts/health.js';
import { describeError } from '../engine/errors.js';

/**
 * `vip_holder`: exactly one node holds the VIP. None is an outage; two or more is split brain
 * (FACTS.md: a VIP on two nodes). It asks every listed host itself, in parallel, so one
 * instance covers the cluster: write it with `run_once: true`.
 *
 *   - vip_holder: { address: "{{ vip }}", hosts: "{{ groups.nodes }}" }
 *     run_once: true
 */
export interface VipHolderArgs extends SeverityArg {
  address: string;
  /** Inventory hosts to ask (default: every host of the play). */
  hosts?: string[];
  interface?: string;
}

export interface VipHolderObserved {
  holders: string[];
  asked: string[];
  /** Hosts that could not be asked, with why: one of them might hold the VIP too. */
  unreachable: Record<string, string>;
}

function hostsToAsk(a: VipHolderArgs, vars: Record<string, unknown>, self: string): string[] {
  if (a.hosts && a.hosts.length) return a.hosts;
  const play = vars.play_hosts;
  return Array.isArray(play) && play.length ? play.map(String) : [self];
}

export const vipHolder = checkKind<VipHolderArgs, VipHolderObserved>({
  kind: 'vip_holder',

  async probe(ctx, a) {
    const asked = hostsToAsk(a, ctx.vars, ctx.host.name);
    const argv = a.interface ? addrShowArgv(a.interface) : allAddrShowArgv();
    const holders: string[] = [];
    const unreachable: Record<string, string> = {};
    await Promise.all(
      asked.map(async (h) => {
        try {
          const t = await ctx.transportFor(h);
          const r = await t.exec(argv, { timeoutMs: ctx.timeoutMs });
          // A missing interface (exit 1, "does not exist") holds nothing; other failures are unknowns.
          if (r.code !== 0 && !(a.interface && /does not exist/i.test(r.stderr))) throw new CommandFailedError(h, r);
          if (findAddress(parseIpAddr(r.stdout), a.address)) holders.push(h);
        } catch (e) {
          unreachable[h] = describeError(e);
        }
      }),
    );
    holders.sort((x, y) => asked.indexOf(x) - asked.indexOf(y));
    if (Object.keys(unreachable).length === asked.length) {
      throw new Error(`could not ask any host whether it holds ${a.address}: ${Object.entries(unreachable).map(([h, e]) => `${h}: ${e}`).join('; ')}`);
    }
    return { holders, asked, unreachable };
  },

  problem(seen, a) {
    const down = Object.keys(seen.unreachable);
    const unasked = down.length ? ` (not asked: ${listNames(down)})` : '';
    if (seen.holders.length === 0) return `no node holds ${a.address}${unasked}`;
    if (seen.holders.length > 1) return `${a.address} held by ${listNames(seen.holders)} (split brain)`;
    return undefined;
  },

  healthy(seen, a) {
    const down = Object.keys(seen.unreachable);
    return `${a.address} held by ${seen.holders[0]}${down.length ? ` (could not ask ${listNames(down)})` : ''}`;
  },

  describe(a) {
    return {
      summary: `exactly one of ${a.hosts?.length ? listNames(a.hosts) : 'the play\'s hosts'} holds ${a.address}`,
      commands: [a.interface ? addrShowArgv(a.interface) : allAddrShowArgv()],
    };
  },
});
