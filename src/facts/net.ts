/**
 * Network facts: read-only probes of a node's addresses, its arping, its TCP connections.
 * Pure argv builders and parsers (unit-tested on output captured from real nodes), plus small
 * readers that run them through a StepContext. Nothing here changes a node.
 */
import type { Inventory } from '../inventory/model.js';
import type { StepContext } from '../steps/contract.js';
import { recalled, remember } from './remembered.js';

// ---------------------------------------------------------------- addresses

export type Family = 'inet' | 'inet6';

export interface IfAddress {
  iface: string;
  family: Family;
  address: string;
  prefix: number;
  /** IPv4 label (the interface name when none was given); absent for IPv6. */
  label?: string;
  /** Words between `scope X` and the label: secondary, tentative, dadfailed, deprecated, nodad… */
  flags: string[];
}

export function isIPv6(address: string): boolean {
  return address.includes(':');
}

/**
 * Canonical text of an address, so that `2001:2:0::10` asked by a user matches `2001:2::10`
 * printed by ip. IPv6 is expanded to eight lower-case groups; IPv4 is returned as is.
 */
export function canonicalAddress(address: string): string {
  if (!isIPv6(address)) return address.trim();
  let a = address.trim().toLowerCase();
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (v4) {
    const [b1, b2, b3, b4] = v4.slice(1).map(Number) as [number, number, number, number];
    a = a.slice(0, v4.index) + `${((b1 << 8) | b2).toString(16)}:${((b3 << 8) | b4).toString(16)}`;
  }
  const [head, tail] = a.includes('::') ? a.split('::', 2) as [string, string] : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const missing = tail === undefined ? 0 : 8 - h.length - t.length;
  const groups = [...h, ...Array(Math.max(0, missing)).fill('0'), ...t];
  return groups.map((g) => g.replace(/^0+(?=.)/, '')).join(':');
}

export function sameAddress(a: string, b: string): boolean {
  return canonicalAddress(a) === canonicalAddress(b);
}

export function addrShowArgv(iface: string): string[] {
  return ['ip', '-o', 'addr', 'show', 'dev', iface];
}

/**
 * Parse `ip -o addr show`: one line per address,
 *   `2: eth0    inet 198.18.30.200/24 scope global secondary eth0:vip\       valid_lft …`
 *   `2: eth0    inet6 2001:2::10/64 scope global dadfailed tentative \       valid_lft …`
 * For IPv4 the last word before the backslash is the label; IPv6 has none.
 */
export function parseIpAddr(stdout: string): IfAddress[] {
  const out: IfAddress[] = [];
  for (const line of stdout.split('\n')) {
    // `inet A/N …`, or a point-to-point `inet A peer B/N …` (A itself then carries no prefix).
    const m = /^\d+:\s+(\S+?)(?:@\S+)?\s+(inet6?)\s+([0-9a-fA-F:.]+)(?:\/(\d+)|(?=\s+peer\s))(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, iface, family, address, own, rest] = m as unknown as [string, string, Family, string, string | undefined, string];
    const prefix = own ?? /^\s+peer\s+\S+?\/(\d+)/.exec(rest)?.[1] ?? (family === 'inet' ? '32' : '128');
    const before = rest.split('\\')[0]!.trim().split(/\s+/).filter(Boolean);
    // Drop `brd X`, `peer X`, `scope X`, `metric N`: word pairs that are not flags.
    const words: string[] = [];
    for (let i = 0; i < before.length; i++) {
      if (['brd', 'peer', 'scope', 'metric', 'proto'].includes(before[i]!)) {
        i++;
        continue;
      }
      words.push(before[i]!);
    }
    const entry: IfAddress = { iface, family, address, prefix: Number(prefix), flags: words };
    if (family === 'inet' && words.length > 0) {
      entry.label = words[words.length - 1]!;
      entry.flags = words.slice(0, -1);
    }
    out.push(entry);
  }
  return out;
}

export function findAddress(list: IfAddress[], address: string): IfAddress | undefined {
  return list.find((a) => sameAddress(a.address, address));
}

export async function readAddresses(ctx: StepContext, iface: string): Promise<IfAddress[]> {
  const r = await ctx.run(addrShowArgv(iface), { shared: true });
  return parseIpAddr(r.stdout);
}

// ---------------------------------------------------------------- arping

/**
 * Two unrelated programs are called arping. iputils' (Debian iputils-arping) and Thomas
 * Habets' (Debian arping) disagree on most flags: `-A` is "send replies" in one and "count only
 * matching addresses" in the other; `-V` prints the version in one and takes a VLAN in the other.
 */
export type ArpingFlavour = 'iputils' | 'habets' | 'none' | 'unknown';

/**
 * Tells the flavours apart: iputils' `arping -V` names iputils; Habets' takes `-V` for a VLAN and
 * names itself in `--help`, asked only when `-V` did not settle it.
 */
const ARPING_FLAVOUR_PROBE = 'v=$(arping -V 2>&1); case "$v" in *iputils*) ;; *) v="$v $(arping --help 2>&1)" ;; esac';

export function arpingVersionArgv(): string[] {
  // A constant script so that a missing arping reads as exit 127 rather than a failed exec.
  return ['sh', '-c', `command -v arping >/dev/null 2>&1 || exit 127; ${ARPING_FLAVOUR_PROBE}; printf '%s\\n' "$v"; exit 0`];
}

/** The flavours baton can drive. */
const usableFlavour = (f: ArpingFlavour): f is 'iputils' | 'habets' => f === 'iputils' || f === 'habets';

/** A node's arping, as far as this connection has learned it (it does not change during a run). */
export const recalledArpingFlavour = (ctx: StepContext): 'iputils' | 'habets' | undefined => recalled(ctx.transport, 'arping');

export function rememberArpingFlavour(ctx: StepContext, flavour: ArpingFlavour): void {
  if (usableFlavour(flavour)) remember(ctx.transport, 'arping', flavour);
}

export function parseArpingFlavour(output: string, code: number | null): ArpingFlavour {
  if (code === 127) return 'none';
  if (/iputils/i.test(output)) return 'iputils';
  if (/habets/i.test(output)) return 'habets';
  return 'unknown';
}

/**
 * Duplicate check before raising an IPv4 VIP: ARP probes with sender 0.0.0.0 (RFC 5227).
 * iputils `-D`: exit 0 = nobody answered, 1 = someone answered, 2 = error (measured here:
 * a missing device exits 2). It stops at the first reply, so a duplicate costs ~1 ms and a free
 * address `count` seconds.
 * Habets: `-0` sends from 0.0.0.0; exit 0 = replies, 1 = none.
 */
export function duplicateCheckArgv(flavour: ArpingFlavour, iface: string, address: string, probes = DEFAULT_DUPLICATE_PROBES): string[] {
  if (flavour === 'habets') return ['arping', '-0', '-c', String(probes), '-i', iface, address];
  return ['arping', '-D', '-c', String(probes), '-w', String(probes + 1), '-I', iface, address];
}

/**
 * One probe: a holder answers within milliseconds, and every probe on a free address costs a
 * second of the client's outage (it is on the takeover's critical path). RFC 5227 hosts send 3;
 * raise_vip's `duplicate_probes` asks for more where a lossy segment warrants it.
 */
export const DEFAULT_DUPLICATE_PROBES = 1;

/** What the duplicate check's exit code means, for each flavour. */
export function duplicateVerdict(flavour: ArpingFlavour, code: number | null): 'free' | 'duplicate' | 'error' {
  if (flavour === 'habets') return code === 0 ? 'duplicate' : code === 1 ? 'free' : 'error';
  return code === 0 ? 'free' : code === 1 ? 'duplicate' : 'error';
}

/**
 * The bound on one duplicate-address probe. A node that holds the address answers within a
 * millisecond on a LAN (0.5 ms measured in the lab); waiting longer only lengthens the outage.
 * iputils rejects a fractional `-w`, so the bound is `timeout(1)`'s, whose exit 124 means "killed
 * before anyone answered": the address is free.
 */
export const DUPLICATE_PROBE_BOUND_MS = 200;

/**
 * One exec that finds the arping flavour and probes the wire with it, under a bound: one round
 * trip instead of two, and no second-long wait on a free address. Prints `flavour F`, arping's
 * own output, then `exit N`. A constant script: the interface and address are positional
 * parameters, never shell code.
 *   $1 interface  $2 address  $3 probes  $4 bound (seconds, fractional)  $5 iputils -w (whole seconds)
 *   $6 the flavour when already known, else empty
 */
const BOUNDED_DUPLICATE_CHECK = `v=$6
if [ -z "$v" ]; then
  command -v arping >/dev/null 2>&1 || { echo "flavour none"; exit 0; }
  ${ARPING_FLAVOUR_PROBE}
fi
case "$v" in
  *iputils*) echo "flavour iputils"; timeout "$4" arping -D -c "$3" -w "$5" -I "$1" "$2"; c=$? ;;
  *[Hh]abets*) echo "flavour habets"; timeout "$4" arping -0 -c "$3" -i "$1" "$2"; c=$? ;;
  *) echo "flavour unknown"; exit 0 ;;
esac
echo "exit $c"
exit 0`;

/** Seconds `timeout` allows: 200 ms for the first probe, a second for each further one (arping's interval). */
export function duplicateBoundMs(probes = DEFAULT_DUPLICATE_PROBES): number {
  return DUPLICATE_PROBE_BOUND_MS + (Math.max(1, probes) - 1) * 1000;
}

/** `flavour`: the node's arping when already known (the check then asks nothing about it). */
export function boundedDuplicateCheckArgv(iface: string, address: string, probes = DEFAULT_DUPLICATE_PROBES, flavour = ''): string[] {
  const bound = (duplicateBoundMs(probes) / 1000).toFixed(3);
  return ['sh', '-c', BOUNDED_DUPLICATE_CHECK, 'baton-dup-check', iface, address, String(probes), bound, String(probes + 1), flavour];
}

export interface DuplicateCheck {
  flavour: ArpingFlavour;
  verdict: 'free' | 'duplicate' | 'error';
  /** arping's exit status (124: stopped by the bound). */
  code: number | null;
  /** MACs that answered. */
  macs: string[];
  /** arping's output, for an error message. */
  output: string;
}

/**
 * Reads the bounded check's output. A reply seen in the output is a duplicate whatever the exit
 * status says (Habets' arping can be stopped by the bound after printing one); exit 124 with no
 * reply is a free address in both flavours.
 */
export function parseBoundedDuplicateCheck(stdout: string, stderr = ''): DuplicateCheck {
  const flavour = (/^flavour (\w+)$/m.exec(stdout)?.[1] ?? 'unknown') as ArpingFlavour;
  const exit = /^exit (\d+)$/m.exec(stdout);
  const code = exit ? Number(exit[1]) : null;
  const body = stdout.replace(/^(flavour|exit) .*$/gm, '').trim();
  const macs = parseArpReplies(body);
  let verdict: DuplicateCheck['verdict'];
  if (flavour === 'none' || flavour === 'unknown' || code === null) verdict = 'error';
  else if (macs.length > 0) verdict = 'duplicate';
  else if (code === 124) verdict = 'free';
  else verdict = duplicateVerdict(flavour, code);
  return { flavour, verdict, code, macs, output: [body, stderr.trim()].filter(Boolean).join('\n') };
}

/**
 * MACs that answered, lower case, from either flavour's output:
 *   iputils: `Unicast reply from 198.18.30.200 [02:BA:12:1E:01:02]  0.560ms`
 *   Habets:  `60 bytes from 00:11:85:4c:01:01 (88.1.180.225): index=0 time=13.910 msec`
 */
export function parseArpReplies(stdout: string): string[] {
  const macs = new Set<string>();
  for (const m of stdout.matchAll(/([0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})/g)) macs.add(m[1]!.toLowerCase());
  return [...macs];
}

export interface GarpOptions {
  iface: string;
  address: string;
  count: number;
  intervalMs: number;
  /** Unsolicited ARP requests (default) or replies; some old stacks only honour one of them. */
  mode: 'request' | 'reply';
}

/** iputils 20221126 (Debian 12) rejects a fractional `-i` ("invalid argument: '0.5'"): whole seconds, at least 1. */
export function iputilsInterval(intervalMs: number): number {
  return Math.max(1, Math.ceil(intervalMs / 1000));
}

/**
 * Gratuitous ARP: sender and target IP both the VIP, so every neighbour that has an entry for it
 * replaces the MAC.
 *   iputils: `-U` requests, `-A` replies; `-i` whole seconds between packets; source defaults to the VIP.
 *   Habets:  `-U` unsolicited (broadcast target), `-P` replies, `-S` source IP, `-i` interface,
 *            `-W` seconds between packets (floating point).
 */
export function garpArgv(flavour: ArpingFlavour, o: GarpOptions): string[] {
  if (flavour === 'habets') {
    const secs = String(o.intervalMs / 1000);
    return ['arping', '-q', '-U', ...(o.mode === 'reply' ? ['-P'] : []), '-S', o.address, '-i', o.iface, '-c', String(o.count), '-W', secs, o.address];
  }
  return ['arping', '-q', o.mode === 'reply' ? '-A' : '-U', '-c', String(o.count), '-i', String(iputilsInterval(o.intervalMs)), '-I', o.iface, o.address];
}

/**
 * Run argv detached from the SSH channel: setsid gives it its own session (no SIGHUP when the
 * channel closes), and /dev/null for every stream lets the channel close at once.
 */
export function detachedArgv(argv: string[]): string[] {
  return ['sh', '-c', 'exec setsid -f "$@" </dev/null >/dev/null 2>&1', 'baton-detach', ...argv];
}

/** Inventory hosts whose `mac` var is this MAC (who answers for a VIP?). */
export function hostsWithMac(inventory: Inventory, mac: string): string[] {
  const want = mac.toLowerCase();
  const out: string[] = [];
  for (const h of inventory.hosts.values()) {
    const m = h.vars['mac'];
    if (typeof m === 'string' && m.toLowerCase() === want) out.push(h.name);
  }
  return out;
}

// ---------------------------------------------------------------- IPv6 announcements

/**
 * Unsolicited neighbour advertisement. Debian ships no iputils tool for it; `ndsend ADDR IF`
 * (vzctl) sends one to all-nodes. Without a tool the kernel can send one itself when DAD of a new
 * address completes, if `ndisc_notify` is set on the interface (seen here with tcpdump).
 */
export function ndsendArgv(address: string, iface: string): string[] {
  return ['ndsend', address, iface];
}

export function hasCommandArgv(name: string): string[] {
  return ['sh', '-c', 'command -v "$1" >/dev/null 2>&1', 'baton-has', name];
}

export async function hasCommand(ctx: StepContext, name: string): Promise<boolean> {
  return (await ctx.run(hasCommandArgv(name), { okCodes: [0, 1, 127] })).code === 0;
}

export function ndiscNotifyPath(iface: string): string {
  return `/proc/sys/net/ipv6/conf/${iface}/ndisc_notify`;
}

export function readFileArgv(path: string): string[] {
  return ['cat', path];
}

export function writeFileArgv(path: string, value: string): string[] {
  return ['sh', '-c', 'printf "%s\\n" "$1" > "$2"', 'baton-write', value, path];
}

// ---------------------------------------------------------------- TCP connections

/**
 * `ss` filter for connections whose local end is the VIP. On the holder the VIP is the *source*
 * of its sockets (`ss -K dst VIP` would match only connections this node opened to it). IPv6
 * addresses need brackets in ss filters; IPv4-mapped sockets match the plain IPv4 form (seen here
 * with Ganesha's dual-stack listener). `state connected` spares listeners bound to the VIP.
 */
export function ssAddress(address: string): string {
  return isIPv6(address) ? `[${address}]` : address;
}

function ssFilter(address: string): string[] {
  return ['state', 'connected', 'src', ssAddress(address)];
}

export function ssKillArgv(address: string): string[] {
  return ['ss', '-H', '-K', '-t', ...ssFilter(address)];
}

export function ssListArgv(address: string): string[] {
  return ['ss', '-H', '-n', '-t', ...ssFilter(address)];
}

export interface TcpConn {
  state: string;
  local: string;
  peer: string;
}

/** `ss -H -n -t`: `ESTAB 0 0 [::ffff:198.18.30.200]:2049 [::ffff:198.18.30.101]:44286` */
export function parseSs(stdout: string): TcpConn[] {
  const out: TcpConn[] = [];
  for (const line of stdout.split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w.length < 5 || w[0] === 'State' || w[0] === 'Netid') continue;
    // With -t and a state filter ss may or may not print the Netid column.
    const o = w[0] === 'tcp' ? 1 : 0;
    out.push({ state: w[o]!, local: w[o + 3]!, peer: w[o + 4]! });
  }
  return out;
}
