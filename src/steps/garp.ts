import type { StepContext, StepKind } from './contract.js';
import { batchedOk, StepRefusedError } from './contract.js';
import {
  addrShowArgv,
  arpingVersionArgv,
  detachedArgv,
  findAddress,
  garpArgv,
  hasCommandArgv,
  iputilsInterval,
  isIPv6,
  ndsendArgv,
  parseArpingFlavour,
  recalledArpingFlavour,
  rememberArpingFlavour,
  parseIpAddr,
  type ArpingFlavour,
} from '../facts/net.js';
import { runBatch } from '../transport/batch.js';

/**
 * `garp`: tell the segment that this node now answers for an address, so clients and routers
 * replace the old holder's MAC in their neighbour caches at once instead of after it ages out.
 *
 *   - garp: { address: "{{ vip }}", interface: eth0 }
 *     when: vip_raised is changed
 *
 * One-shot: there is nothing to probe (a neighbour's cache is not ours to read), so it runs
 * whenever selected. Several packets spread over more than a second, because Linux ignores an ARP
 * update to an entry younger than `locktime` (1 s); in the background by default so the takeover
 * does not wait for them (resource-agents IPaddr2 sends 5 in the background).
 */
export interface GarpArgs {
  address: string;
  interface: string;
  /** Packets to send (default 5). */
  count?: number;
  /** Milliseconds between packets (default 1000; iputils takes whole seconds only). */
  interval_ms?: number;
  /** Unsolicited ARP requests (default) or replies. */
  mode?: 'request' | 'reply';
  /** Start it detached and return at once (default true). */
  background?: boolean;
}

const defaults = (a: GarpArgs) => ({
  count: a.count ?? 5,
  intervalMs: a.interval_ms ?? 1000,
  mode: a.mode ?? 'request',
  background: a.background ?? true,
});

function arpArgv(flavour: ArpingFlavour, a: GarpArgs): string[] {
  const d = defaults(a);
  return garpArgv(flavour, { iface: a.interface, address: a.address, count: d.count, intervalMs: d.intervalMs, mode: d.mode });
}

/**
 * A background announcement leaves its pid here, so that giving the address up (lower_vip, or
 * rolling back raise_vip) can stop it: a rolled-back takeover must not go on pointing clients at
 * itself for seconds while the restored holder announces.
 */
export function garpPidFile(address: string, iface: string): string {
  return `/run/baton-garp-${iface}-${address}.pid`;
}

/** Detached, recording its pid first: `sh` writes `$$` and then execs the command, so it is that pid. */
function backgroundArgv(argv: string[], pidFile: string): string[] {
  return detachedArgv(['sh', '-c', 'echo $$ > "$1"; shift; exec "$@"', 'baton-garp', pidFile, ...argv]);
}

/** Kill the recorded announcer only if that pid still runs an announcer (pids are reused). */
export const STOP_ANNOUNCER_SCRIPT = '[ -e "$1" ] || exit 0; p=; read -r p < "$1"; rm -f "$1"; case "$p" in ""|*[!0-9]*) exit 0;; esac; ' +
  // The announcer is a session (and process group) leader (setsid): its group takes the round's
  // arping with it, which would otherwise send its packet up to a second later.
  'if grep -qa -e arping -e ndsend "/proc/$p/cmdline" 2>/dev/null; then kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null; fi; exit 0';

export function stopGarpArgv(address: string, iface: string): string[] {
  return ['sh', '-c', STOP_ANNOUNCER_SCRIPT, 'baton-garp-stop', garpPidFile(address, iface)];
}

export async function stopAnnouncing(ctx: StepContext, address: string, iface: string): Promise<void> {
  await ctx.run(stopGarpArgv(address, iface));
}

/**
 * Send one announcement per round, COUNT rounds, the interval apart. A round that fails (the link
 * is down for a moment: arping exits 2 at once on a down interface) does not end the
 * announcement: the rounds after it are what reach the clients once the link is back. Exit 0 if
 * any round went out. PAUSE=1 sleeps after a good round too (ndsend and Habets' arping return at
 * once; iputils' `arping -c 1` waits its interval itself).
 */
const ANNOUNCE_LOOP =
  'n=$1; s=$2; pause=$3; shift 3; i=0; ok=1; ' +
  'while [ $i -lt $n ]; do i=$((i+1)); if "$@"; then ok=0; [ "$pause" = 1 ] && [ $i -lt $n ] && sleep "$s"; else [ $i -lt $n ] && sleep "$s"; fi; done; exit $ok';

const announceLoopArgv = (count: number, intervalMs: number, pause: boolean, one: string[]): string[] => ['sh', '-c', ANNOUNCE_LOOP, 'baton-garp', String(count), String(intervalMs / 1000), pause ? '1' : '0', ...one];

/**
 * Announce an address held here. Shared with lower_vip's revert (DESIGN.md: the revert of a
 * release re-announces from the restored holder). Refuses to announce an address this node does
 * not hold: that would point every client at a node that drops their packets.
 */
export async function announce(ctx: StepContext, a: GarpArgs): Promise<void> {
  const d = defaults(a);
  const v6 = isIPv6(a.address);
  // What this node holds and what it can announce with: one exec (the address only, when the
  // connection already knows its arping: raise_vip's duplicate check learned it).
  const known = v6 ? undefined : recalledArpingFlavour(ctx);
  const [addrs, tool] = await runBatch((argv, o) => ctx.run(argv, o), [
    { argv: addrShowArgv(a.interface) },
    ...(known ? [] : [{ argv: v6 ? hasCommandArgv('ndsend') : arpingVersionArgv(), mayFail: true }]),
  ]);
  const held = findAddress(parseIpAddr(batchedOk(ctx.transport.host, addrs, addrShowArgv(a.interface)).stdout), a.address);
  if (!held && !ctx.force) {
    throw new StepRefusedError(
      `garp: ${a.address} is not on ${a.interface} of ${ctx.transport.host}; announcing it would send its clients to a node that does not answer. ` +
        `Raise it first (raise_vip), or pass --force.`,
    );
  }
  let argv: string[];
  if (v6) {
    if (tool?.code !== 0) {
      ctx.log(
        `garp: no tool to send an unsolicited neighbour advertisement for ${a.address} on ${ctx.transport.host} (ndsend, from vzctl, is not installed); ` +
          `raise_vip had the kernel send one when DAD completed (ndisc_notify), and neighbours re-resolve stale entries by themselves`,
      );
      return;
    }
    // ndsend sends one packet per call: a constant loop script, the values as positional args.
    argv = announceLoopArgv(d.count, d.intervalMs, true, ndsendArgv(a.address, a.interface));
  } else {
    const flavour = known ?? (tool ? parseArpingFlavour(tool.stdout + tool.stderr, tool.code) : 'unknown');
    rememberArpingFlavour(ctx, flavour);
    if (flavour === 'none' || flavour === 'unknown') {
      throw new Error(
        `garp: ${flavour === 'none' ? 'no arping' : 'an arping baton does not recognise'} on ${ctx.transport.host}; ` +
          `install iputils-arping (or Thomas Habets' arping) so takeovers can announce ${a.address}`,
      );
    }
    if (flavour === 'iputils' && iputilsInterval(d.intervalMs) * 1000 !== d.intervalMs) {
      ctx.log(`garp: iputils arping takes whole seconds between packets: ${d.intervalMs} ms rounded to ${iputilsInterval(d.intervalMs)} s`);
    }
    argv = announceLoopArgv(d.count, d.intervalMs, flavour === 'habets', garpArgv(flavour, { iface: a.interface, address: a.address, count: 1, intervalMs: d.intervalMs, mode: d.mode }));
  }
  // Stop the announcer of an earlier run and start this one: one exec.
  const send = d.background ? backgroundArgv(argv, garpPidFile(a.address, a.interface)) : argv;
  const [stopped, sent] = await runBatch((x, o) => ctx.run(x, { ...o, timeoutMs: ctx.timeoutMs }), [{ argv: stopGarpArgv(a.address, a.interface) }, { argv: send }]);
  batchedOk(ctx.transport.host, stopped, stopGarpArgv(a.address, a.interface));
  batchedOk(ctx.transport.host, sent, send);
}

export const garp: StepKind<GarpArgs, Record<string, never>> = {
  kind: 'garp',
  role: 'neutral',
  defaultTimeoutS: 30,
  oneShot: true,
  // Packets sent cannot be unsent; rolling back a takeover re-announces from the old holder
  // (lower_vip's revert), which is the inverse that matters.
  reversible: () => false,

  async probe() {
    return {};
  },

  satisfied() {
    return false;
  },

  async apply(ctx, a) {
    await announce(ctx, a);
  },

  async revert() {
    // Nothing to put back: see `reversible`.
  },

  describe(a) {
    const d = defaults(a);
    const argv = isIPv6(a.address) ? ndsendArgv(a.address, a.interface) : arpArgv('iputils', a);
    return {
      summary: `announce ${a.address} on ${a.interface} (${d.count} × ${isIPv6(a.address) ? 'unsolicited NA' : `gratuitous ARP ${d.mode}`}${d.background ? ', in the background' : ''})`,
      commands: [d.background ? backgroundArgv(argv, garpPidFile(a.address, a.interface)) : argv],
    };
  },
};
