import type { StepContext, StepKind } from './contract.js';
import { parseIpAddr, parseSs, ssAddress, ssKillArgv, ssListArgv, type TcpConn } from '../facts/net.js';
import { addVip, delArgv, probeVip, vipResource, vipRestored, vipSeen, type VipObserved } from './raise-vip.js';
import { announce, garpPidFile, STOP_ANNOUNCER_SCRIPT } from './garp.js';

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
  /** Reset TCP connections to the VIP as it is removed (default true). */
  reset_connections?: boolean;
}

/**
 * Reset the VIP's connections, then delete it, in one command. The order matters: once the address
 * is gone the kernel cannot route the RST from it (measured here: the client then saw nothing and
 * waited for its timeout), so the reset must come first; one command keeps the window in which a
 * client could reconnect to this node as short as one `ss` run.
 */
const RESET_THEN_DEL = 'ss -H -K -t state connected src "$1"; shift; exec "$@"';

export function releaseArgv(a: LowerVipArgs, prefix: number): string[] {
  const del = delArgv(a.address, prefix, a.interface);
  if (a.reset_connections === false) return del;
  return ['sh', '-c', RESET_THEN_DEL, 'baton-lower-vip', ssAddress(a.address), ...del];
}

/**
 * The whole release in one exec (each round trip is outage): stop our own announcer of the
 * address (garp's pid file; in a subshell, whose exits end only it), then releaseArgv's reset and
 * delete (run here, not in a shell of their own: a process less per group moved), then the
 * connections still there, after a marker line, then the interface's addresses after another
 * (the step's probe, read after the change: one round trip less).
 *   $1 garp pid file  $2 address for ss  $3 interface  $4 1 to reset connections  $5… the delete
 */
const STOP_RELEASE_LIST = `( ${STOP_ANNOUNCER_SCRIPT} )
shift; a=$1; dev=$2; reset=$3; shift 3
if [ "$reset" = 1 ]; then ss -H -K -t state connected src "$a"; fi
"$@" || exit $?
printf '%s\\n' --baton--left
ss -H -n -t state connected src "$a" || true
if out=$(ip -o addr show dev "$dev"); then printf '%s\\n' --baton--addr "$out"; fi`;

export function stopReleaseListArgv(a: LowerVipArgs, prefix: number): string[] {
  const reset = a.reset_connections === false ? '0' : '1';
  return ['sh', '-c', STOP_RELEASE_LIST, 'baton-lower-vip', garpPidFile(a.address, a.interface), ssAddress(a.address), a.interface, reset, ...delArgv(a.address, prefix, a.interface)];
}

async function checkReset(ctx: StepContext, a: LowerVipArgs, stderr: string, seenLeft?: TcpConn[]): Promise<void> {
  const left = seenLeft ?? parseSs((await ctx.run(ssListArgv(a.address), { okCodes: [0, 1] })).stdout);
  if (left.length === 0) return;
  // Connections that raced the delete, or a kernel that cannot destroy sockets. Destroy what is
  // left (their RST cannot leave any more, but the sockets stop holding the old state).
  const again = await ctx.run(ssKillArgv(a.address), { okCodes: [0, 1, 255] });
  const unsupported = /not supported|Operation not permitted|Invalid argument/i.test(stderr + again.stderr);
  // A degraded release, not a failed one: the address is gone, clients will time out and retry.
  ctx.log(
    `lower_vip: ${left.length} TCP connection(s) to ${a.address} on ${ctx.transport.host} were not reset` +
      `${unsupported ? ' (this kernel cannot destroy sockets: built without CONFIG_INET_DIAG_DESTROY?)' : ''}; ` +
      `their clients reconnect only after TCP timeouts${(stderr + again.stderr).trim() ? `. ss said: ${(stderr + again.stderr).trim()}` : ''}`,
  );
}

export const lowerVip: StepKind<LowerVipArgs, VipObserved> = {
  kind: 'lower_vip',
  inverse: 'raise_vip',
  role: 'release',
  defaultTimeoutS: 30,
  resource: vipResource,
  restored: vipRestored,

  probe: (ctx, a) => probeVip(ctx, a),

  satisfied(seen) {
    return !seen.present;
  },

  async apply(ctx, a, before) {
    // Delete with the prefix the engine's probe just saw, which may differ from the one asked for.
    if (!before.present) return;
    const r = await ctx.run(stopReleaseListArgv(a, before.prefix ?? a.prefix));
    const [released = '', addrText] = r.stdout.split(/^--baton--addr$/m, 2);
    // The interface as it is after the delete, read in the same exec: the step's probe.
    const after = addrText === undefined ? undefined : vipSeen(parseIpAddr(addrText), a);
    if (a.reset_connections === false) return after;
    const [killedText = '', leftText = ''] = released.split(/^--baton--left$/m, 2);
    const killed = killedText.split('\n').filter((l) => l.trim()).length;
    if (killed) ctx.log(`lower_vip: reset ${killed} TCP connection(s) to ${a.address} on ${ctx.transport.host}`);
    await checkReset(ctx, a, r.stderr, parseSs(leftText));
    return after;
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
    const commands = [releaseArgv(a, a.prefix)];
    return { summary: `lower ${a.address}/${a.prefix} from ${a.interface}${a.reset_connections === false ? '' : ' and reset its TCP connections'}`, commands };
  },
};
