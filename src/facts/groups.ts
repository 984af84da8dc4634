/**
 * Where each service group runs, observed: `baton status` prints it, and `watch` and the group
 * playbooks (service-move, node-evacuate, node-failover) resolve placement from it at run time.
 *
 * Each node is read once, in one exec, for every group (addresses, loop devices and baton's
 * claims on them, mounts, NFS-Ganesha's and the kernel's exports, the IQNs tgtd serves, ZFS
 * pools, active LVs, and the links' MACs when a group has a failover MAC); all
 * nodes and all BMCs are asked at the same time. Then, per group, per node: does it hold the
 * VIP, the volume, the mount, the exports, the iSCSI targets? A group is
 *   running  on exactly one node, every part of it there;
 *   partial  on exactly one node, some part missing (named);
 *   split    seen on two or more nodes (any part: the VIP on one and the mount on another is
 *            no safer than the VIP on both);
 *   stopped  on no node, every node that may hold it read (or confirmed powered off);
 *   unknown  on no node read, while a node that may hold it could not be read and its BMC does
 *            not say it is off.
 * The lab's nodes share one kernel, so every node sees every loop device: a node holds a loop
 * volume when it holds baton's claim on it (LOOP_CLAIM_DIR, private to the node).
 */
import type { Inventory, Host } from '../inventory/model.js';
import type { ServiceGroup } from '../inventory/services.js';
import { UnreachableError, type Transport } from '../transport/transport.js';
import { parseIpLinkJson } from './links.js';
import { findAddress, parseIpAddr, type IfAddress } from './net.js';
import { GANESHA_BUS_NAME, GANESHA_EXPORT_MGR, NFSD_THREADS, parseExportfsV, parseShowExports } from './nfs.js';
import { parseTgtadmTargets } from './iscsi.js';
import { ipmitoolArgv, lanplusOf, parseIpmiPowerStatus, withPasswordOnStdin, type BmcSpec } from './power.js';
import { LOOP_CLAIM_DIR, loopStateOf, mountAt, normPath, parseLoopClaims, parseLosetupJson, parseMountinfo, type StorageView } from './storage.js';

// ---------------------------------------------------------------- one read of a node

/**
 * Everything status needs from one node, in one round trip. Sections are separated by marker
 * lines no section can contain; a tool that is missing (no Ganesha, no zpool) leaves its section
 * empty rather than failing the read. D-Bus is bounded: a hung Ganesha must not hold the answer.
 *   $1 the loop claim dir
 *   $2 \`links\` to read the links too (only when a group has a failover MAC: a process less per read)
 *   $3 the kernel NFS server's thread count file: at 0 threads it serves nothing, whatever etab
 *      (which is all \`exportfs -v\` reads) still lists, so its exports are not seen
 * The first section is \`ip -o link show\` and \`ip -o addr show\` from one \`ip -batch\`: each
 * link's state (a VIP on a link without carrier reaches no client) and the addresses.
 */
const NODE_VIEW = `ip -o -batch - <<'BATON_IP'
link show
addr show
BATON_IP
printf '\\n%s\\n' --baton--loops
losetup --list --json --output NAME,BACK-FILE 2>/dev/null
printf '\\n%s\\n' --baton--claims
grep -r -H -s '' "$1"
printf '\\n%s\\n' --baton--mountinfo
cat /proc/self/mountinfo
printf '\\n%s\\n' --baton--ganesha
command -v dbus-send >/dev/null 2>&1 && dbus-send --system --print-reply --reply-timeout=2000 --dest=${GANESHA_BUS_NAME} ${GANESHA_EXPORT_MGR} org.ganesha.nfsd.exportmgr.ShowExports 2>/dev/null
printf '\\n%s\\n' --baton--kernel
t=; { read -r t < "$3"; } 2>/dev/null
[ "$t" = 0 ] || { command -v exportfs >/dev/null 2>&1 && exportfs -v 2>/dev/null; }
printf '\\n%s\\n' --baton--tgt
command -v tgtadm >/dev/null 2>&1 && timeout 5 tgtadm --lld iscsi --mode target --op show 2>/dev/null
printf '\\n%s\\n' --baton--zfs
command -v zpool >/dev/null 2>&1 && zpool list -H -o name 2>/dev/null
printf '\\n%s\\n' --baton--lvm
command -v lvs >/dev/null 2>&1 && lvs --noheadings --separator '|' -o vg_name,lv_active 2>/dev/null
printf '\\n%s\\n' --baton--links
[ "$2" = links ] && ip -j link show 2>/dev/null
exit 0`;

export const nodeViewArgv = (o: { links?: boolean; nfsdThreads?: string } = {}): string[] => ['sh', '-c', NODE_VIEW, 'baton-node-view', LOOP_CLAIM_DIR, o.links ? 'links' : '-', o.nfsdThreads ?? NFSD_THREADS];

export interface NodeView {
  addresses: IfAddress[];
  storage: StorageView;
  /** Paths NFS-Ganesha exports (the pseudo root, export 0, left out). */
  ganeshaExports: string[];
  kernelExports: string[];
  /** IQNs the node's tgtd serves (none when tgtd is not running). */
  iscsiTargets: string[];
  zpools: string[];
  /** Volume groups with at least one active LV. */
  activeVgs: string[];
  /** The MACs of the links that are up (read only when asked: see nodeViewArgv). */
  upMacs: string[];
  /** Links seen not up, or up without carrier (no LOWER_UP): an address on one reaches no one. */
  downLinks: string[];
}

/** `ip -o link show` lines: the links that are not both UP and LOWER_UP. */
export function parseDownLinks(stdout: string): string[] {
  const down: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)(?:@[^:\s]*)?:\s+<([^>]*)>/.exec(line.trim());
    if (!m) continue;
    const flags = m[2]!.split(',');
    if (!flags.includes('UP') || !flags.includes('LOWER_UP')) down.push(m[1]!);
  }
  return down;
}

const SECTIONS = ['loops', 'claims', 'mountinfo', 'ganesha', 'kernel', 'tgt', 'zfs', 'lvm', 'links'] as const;

export function parseNodeView(stdout: string): NodeView {
  const parts: Record<string, string> = {};
  const split = stdout.split(new RegExp(`^--baton--(${SECTIONS.join('|')})$`, 'm'));
  parts.addresses = split[0] ?? '';
  for (let i = 1; i + 1 < split.length; i += 2) parts[split[i]!] = split[i + 1]!;
  let loops: StorageView['loops'] = [];
  try {
    loops = parseLosetupJson(parts.loops ?? '');
  } catch {
    // A losetup that printed no JSON (too old, or none at all): no loop volume is seen here.
  }
  const lines = (s: string | undefined) => (s ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
  let iscsiTargets: string[] = [];
  try {
    iscsiTargets = parseTgtadmTargets(parts.tgt ?? '').map((t) => t.iqn);
  } catch {
    // Output that is not tgtadm's (a wrapper printing something else first): nothing seen served.
  }
  let upMacs: string[] = [];
  try {
    upMacs = parseIpLinkJson(parts.links ?? '').filter((l) => l.up && l.address).map((l) => l.address);
  } catch {
    // An iproute2 without -j: no failover MAC is seen, and a group that has one reads as partial.
  }
  return {
    addresses: parseIpAddr(parts.addresses ?? ''),
    downLinks: parseDownLinks(parts.addresses ?? ''),
    storage: { loops, claims: parseLoopClaims(parts.claims ?? ''), mounts: parseMountinfo(parts.mountinfo ?? '') },
    ganeshaExports: parseShowExports(parts.ganesha ?? '').filter((e) => e.id !== 0).map((e) => normPath(e.path)),
    kernelExports: parseExportfsV(parts.kernel ?? '').map((e) => normPath(e.path)),
    iscsiTargets,
    zpools: lines(parts.zfs),
    activeVgs: [...new Set(lines(parts.lvm).flatMap((l) => {
      const [vg, active] = l.split('|').map((x) => x.trim());
      return vg && active === 'active' ? [vg] : [];
    }))],
    upMacs,
  };
}

// ---------------------------------------------------------------- what each group has where

export type Part = 'vip' | 'mac' | 'volume' | 'mount' | 'export' | 'target';
export type GroupState = 'running' | 'partial' | 'split' | 'stopped' | 'unknown';
export type PowerReading = 'on' | 'off' | 'unknown';

export interface NodeObservation {
  name: string;
  /** Connected over its transport (it may still have failed to answer the read: see view). */
  reachable: boolean;
  /** Not reachable, but its host answered: refused the connection, our login or our key (it is up). */
  answered?: boolean;
  /** Why it could not be reached or read. */
  error?: string;
  power: PowerReading;
  /** Why the power state is unknown (no BMC in the inventory, the BMC did not answer). */
  powerError?: string;
  /** What was read; absent when the node could not be reached or read. */
  view?: NodeView;
}

export interface GroupPlacement {
  name: string;
  state: GroupState;
  /** Nodes where any part of the group is seen, in the group's preference order first. */
  nodes: string[];
  home: string;
  /** Per part, the nodes holding it. Parts the group does not have are absent. */
  parts: Partial<Record<Part, string[]>>;
  /** For partial: what the node it is on lacks (`export /srv/b` when one of several is missing). */
  missing: string[];
  /** Nodes that may hold the group but could not be read (unreachable, power not known off). */
  unknownNodes: string[];
  /** One line: `running on n1`, `SPLIT on n1 and n2 (VIP on n1 and n2)`, ... */
  summary: string;
  /** What clients reach through the VIP: `NFS /disk1`, `iSCSI iqn.… LUN 1`. */
  serves: string[];
  /** The link its VIP is on, when that link is down or has no carrier (degraded: exit 1). */
  vipLinkDown?: string;
}

export function servesOf(g: ServiceGroup): string[] {
  return [
    ...g.nfsExports.map((e) => `NFS ${e.pseudo}`),
    ...g.iscsiTargets.map((t) => `iSCSI ${t.iqn} LUN${t.luns.length > 1 ? 's' : ''} ${t.luns.map((l) => l.lun).join(',')}`),
  ];
}

/** Which parts a node holds of a group (exports, targets: any one of them; what is missing is named apart). */
function partsOn(g: ServiceGroup, v: NodeView): { held: Part[]; missingExports: string[]; missingTargets: string[]; anyExport: boolean; vipLinkDown?: string } {
  const held: Part[] = [];
  const vip = findAddress(v.addresses, g.vip.address);
  // Held all the same (it would answer the moment the link came back: a second holder is a split).
  if (vip) held.push('vip');
  const vipLinkDown = vip && (v.downLinks ?? []).includes(vip.iface) ? vip.iface : undefined;
  // A link up with the group's MAC takes the frames clients send to the VIP, whatever it carries.
  if (g.mac && v.upMacs.includes(g.mac)) held.push('mac');
  const vol = g.volume;
  if (vol) {
    const has =
      vol.provider === 'loop' ? loopStateOf(v.storage, vol.image).held.length > 0 : vol.provider === 'zfs' ? v.zpools.includes(vol.pool) : v.activeVgs.includes(vol.vg);
    if (has) held.push('volume');
  }
  if (g.mount && mountAt(v.storage.mounts, g.mount.path)) held.push('mount');
  const exported = new Set([...v.ganeshaExports, ...v.kernelExports]);
  const missingExports = g.nfsExports.map((e) => normPath(e.path)).filter((p) => !exported.has(p));
  const anyExport = g.nfsExports.length > 0 && missingExports.length < g.nfsExports.length;
  if (g.nfsExports.length && anyExport) held.push('export');
  const served = new Set(v.iscsiTargets ?? []);
  const missingTargets = g.iscsiTargets.map((t) => t.iqn).filter((iqn) => !served.has(iqn));
  if (g.iscsiTargets.length && missingTargets.length < g.iscsiTargets.length) held.push('target');
  return { held, missingExports, missingTargets, anyExport, ...(vipLinkDown ? { vipLinkDown } : {}) };
}

const PART_WORD: Record<Part, string> = { vip: 'VIP', mac: 'failover MAC', volume: 'volume', mount: 'mount', export: 'export', target: 'iSCSI target' };

export function partsOf(g: ServiceGroup): Part[] {
  return [
    'vip',
    ...(g.mac ? ['mac' as const] : []),
    ...(g.volume ? ['volume' as const] : []),
    ...(g.mount ? ['mount' as const] : []),
    ...(g.nfsExports.length ? ['export' as const] : []),
    ...(g.iscsiTargets.length ? ['target' as const] : []),
  ];
}

const andList = (xs: string[]): string => (xs.length <= 1 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);

export function placementOf(g: ServiceGroup, nodes: NodeObservation[]): GroupPlacement {
  const wanted = partsOf(g);
  const parts: Partial<Record<Part, string[]>> = Object.fromEntries(wanted.map((p) => [p, [] as string[]]));
  const missingExportsOn = new Map<string, string[]>();
  const missingTargetsOn = new Map<string, string[]>();
  const vipLinkDownOn = new Map<string, string>();
  const seen: string[] = [];
  for (const n of nodes) {
    if (!n.view) continue;
    const { held, missingExports, missingTargets, vipLinkDown } = partsOn(g, n.view);
    if (vipLinkDown) vipLinkDownOn.set(n.name, vipLinkDown);
    for (const p of held) parts[p]!.push(n.name);
    missingExportsOn.set(n.name, missingExports);
    missingTargetsOn.set(n.name, missingTargets);
    if (held.length) seen.push(n.name);
  }
  // The group's own preference order first, then any other node it was found on.
  const rank = (n: string) => (g.nodes.includes(n) ? g.nodes.indexOf(n) : g.nodes.length + nodes.findIndex((x) => x.name === n));
  seen.sort((a, b) => rank(a) - rank(b));
  for (const p of wanted) parts[p]!.sort((a, b) => rank(a) - rank(b));
  const unknownNodes = nodes.filter((n) => !n.view && n.power !== 'off' && g.nodes.includes(n.name)).map((n) => n.name);

  let state: GroupState;
  let missing: string[] = [];
  let summary: string;
  const home = g.nodes[0]!;
  const notHome = (n: string) => (n === home ? '' : ` (home ${home})`);
  if (seen.length >= 2) {
    state = 'split';
    const where = wanted.filter((p) => parts[p]!.length).map((p) => `${PART_WORD[p]} on ${andList(parts[p]!)}`);
    summary = `SPLIT on ${andList(seen)} (${where.join('; ')})`;
  } else if (seen.length === 1) {
    const on = seen[0]!;
    for (const p of wanted) {
      if (parts[p]!.includes(on)) continue;
      missing.push(p === 'export' && g.nfsExports.length > 1 ? `exports` : p === 'target' ? `iSCSI target${g.iscsiTargets.length > 1 ? 's' : ` ${g.iscsiTargets[0]!.iqn}`}` : `${PART_WORD[p]}`);
    }
    const someExports = missingExportsOn.get(on) ?? [];
    if (parts.export?.includes(on) && someExports.length) missing.push(...someExports.map((e) => `export ${e}`));
    const someTargets = missingTargetsOn.get(on) ?? [];
    if (parts.target?.includes(on) && someTargets.length) missing.push(...someTargets.map((t) => `iSCSI target ${t}`));
    missing = missing.map((m) => `${m} missing`);
    state = missing.length ? 'partial' : 'running';
    summary = state === 'running' ? `running on ${on}${notHome(on)}` : `partial on ${on} (${missing.join(', ')})`;
  } else if (unknownNodes.length) {
    state = 'unknown';
    summary = `unknown: not seen on the nodes read; ${andList(unknownNodes)} could not be read`;
  } else {
    state = 'stopped';
    summary = 'stopped';
  }
  // Its parts are all there (placement moves it like any running group), but no client reaches it.
  const vipLinkDown = seen.length === 1 ? vipLinkDownOn.get(seen[0]!) : undefined;
  if (vipLinkDown) summary += `; its VIP is on ${vipLinkDown}, which is down (no carrier): no client reaches it`;
  if (unknownNodes.length && state !== 'unknown') summary += `; ${andList(unknownNodes)} could not be read`;
  return { name: g.name, state, nodes: seen, home, parts, missing, unknownNodes, summary, serves: servesOf(g), ...(vipLinkDown ? { vipLinkDown } : {}) };
}

export interface ClusterStatus {
  groups: GroupPlacement[];
  nodes: NodeObservation[];
  /** 0 every group running whole on one node and every node read; 1 degraded; 2 split brain. */
  exitCode: 0 | 1 | 2;
}

export function judgeCluster(groups: ServiceGroup[], nodes: NodeObservation[]): ClusterStatus {
  const placements = groups.map((g) => placementOf(g, nodes));
  const exitCode = placements.some((p) => p.state === 'split') ? 2 : placements.some((p) => p.state !== 'running' || p.vipLinkDown) || nodes.some((n) => !n.view) ? 1 : 0;
  return { groups: placements, nodes, exitCode };
}

// ---------------------------------------------------------------- reading the cluster

/** A node's BMC from its inventory vars (bmc_address, bmc_port, bmc_user, bmc_password, ...), as the fence steps read it. */
export function bmcOf(host: Host): BmcSpec | undefined {
  const v = host.vars;
  const set = (x: unknown) => x !== undefined && x !== null && x !== '';
  if (!set(v.bmc_address) || !set(v.bmc_user) || !set(v.bmc_password)) return undefined;
  const lanplus = v.bmc_lanplus;
  return {
    address: String(v.bmc_address),
    port: set(v.bmc_port) ? Number(v.bmc_port) : undefined,
    user: String(v.bmc_user),
    password: String(v.bmc_password),
    // A word that is no boolean is the fence step's error to report; reading the power, v2.
    lanplus: lanplusOf(lanplus, true),
    cipherSuite: set(v.bmc_cipher_suite) ? Number(v.bmc_cipher_suite) : undefined,
  };
}

/** Bound on one BMC question: a BMC that does not answer in this long is "unknown", not "off". */
export const POWER_READ_TIMEOUT_MS = 4_000;
/** Bound on one node's read, once connected. */
export const NODE_READ_TIMEOUT_MS = 10_000;

export interface ObserveOptions {
  inventory: Inventory;
  groups: ServiceGroup[];
  /** The nodes to read (default: every node of every group). */
  nodes?: string[];
  /** The connected transport of a node (rejects when it cannot be reached). */
  transportOf(node: string): Promise<Transport>;
  /** Where ipmitool runs to ask the BMCs (the controller). */
  bmcRunner?: Transport;
  /**
   * Told of a node its BMC says is off and that did not answer within POWERED_OFF_GRACE_MS: a run
   * marks it down, so its lock and steps do not wait out the same connection attempt.
   */
  onPoweredOff?(node: string): void;
}

/**
 * How long a node its BMC says is off still gets to answer. An SSH connection to a powered-off
 * node waits out its timeout (10 s by default, a SYN nobody answers), which was most of an
 * automatic failover's time; a node that is up answers well within this. The BMC may be wrong
 * (a cable to the wrong port): then the node answers in time and is read as usual.
 */
export const POWERED_OFF_GRACE_MS = 1_000;

async function readNodeUnlessOff(
  name: string,
  o: ObserveOptions,
  power: Promise<{ power: PowerReading; powerError?: string }>,
): Promise<NodeReading> {
  const read = readNode(name, o);
  const p = await Promise.race([read.then(() => undefined), power]);
  if (p?.power !== 'off') return read;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), POWERED_OFF_GRACE_MS);
  });
  const r = await Promise.race([read, late]).finally(() => clearTimeout(timer));
  if (r) return r;
  o.onPoweredOff?.(name);
  return { connected: false, error: `not read: its BMC says it is powered off, and it did not answer within ${POWERED_OFF_GRACE_MS / 1000} s` };
}

/** The nodes of all groups, in inventory order. */
export function nodesOfGroups(inventory: Inventory, groups: ServiceGroup[]): string[] {
  const wanted = new Set(groups.flatMap((g) => g.nodes));
  return [...inventory.hosts.keys()].filter((h) => wanted.has(h));
}

/** A node's power from its BMC (ipmitool on `runner`, the controller), as `baton status` reads it; never throws. */
/**
 * `patience`: how long ipmitool waits per try and how often it tries again. `baton status` asks
 * fast (1 s, 1 retry); the engine's safety check, which decides whether a takeover or a rollback
 * may go on, asks longer (a BMC on a loaded machine can take more than a second).
 */
export async function readBmcPower(
  host: Host | undefined,
  runner: Transport | undefined,
  patience: { seconds: number; retries: number } = { seconds: 1, retries: 1 },
): Promise<{ power: PowerReading; powerError?: string }> {
  const bmc = host && bmcOf(host);
  if (!bmc) return { power: 'unknown', powerError: 'no BMC in the inventory (bmc_address, bmc_user, bmc_password)' };
  if (!runner) return { power: 'unknown', powerError: 'BMCs not asked' };
  const argv = ipmitoolArgv(bmc, 'status', patience);
  const timeoutMs = Math.max(POWER_READ_TIMEOUT_MS, (patience.seconds * (patience.retries + 1) + 2) * 1000);
  try {
    const r = await runner.exec(withPasswordOnStdin(argv), { stdin: `${bmc.password}\n`, timeoutMs });
    const where = `BMC ${bmc.address}${bmc.port !== undefined ? `:${bmc.port}` : ''}`;
    if (r.code === 127) return { power: 'unknown', powerError: `ipmitool is not installed on ${runner.host} (Debian package ipmitool)` };
    if (r.timedOut) return { power: 'unknown', powerError: `${where} did not answer within ${timeoutMs / 1000} s` };
    if (r.code !== 0) return { power: 'unknown', powerError: `${where}: \`${argv.join(' ')}\` exited ${r.code}: ${(r.stderr || r.stdout).trim().split('\n')[0] ?? ''}` };
    return { power: parseIpmiPowerStatus(r.stdout) };
  } catch (e) {
    return { power: 'unknown', powerError: (e as Error).message };
  }
}

interface NodeReading {
  connected: boolean;
  answered?: boolean;
  view?: NodeView;
  error?: string;
}

async function readNode(node: string, o: Pick<ObserveOptions, 'transportOf' | 'groups'>): Promise<NodeReading> {
  let t: Transport;
  try {
    t = await o.transportOf(node);
  } catch (e) {
    return { connected: false, ...(e instanceof UnreachableError && e.answered ? { answered: true } : {}), error: (e as Error).message };
  }
  try {
    const r = await t.exec(nodeViewArgv({ links: o.groups.some((g) => g.mac) }), { timeoutMs: NODE_READ_TIMEOUT_MS });
    if (r.timedOut) return { connected: true, error: `reading ${node} took longer than ${NODE_READ_TIMEOUT_MS / 1000} s` };
    if (r.code !== 0) return { connected: true, error: `reading ${node} failed (exit ${r.code}): ${r.stderr.trim().split('\n')[0] ?? ''}` };
    return { connected: true, view: parseNodeView(r.stdout) };
  } catch (e) {
    // The connection dropped under the read: as unreachable as a node gets.
    return { connected: false, error: (e as Error).message };
  }
}

/** Read every node and every BMC at once, then judge each group. Never throws for a node: it is reported. */
export async function observeGroups(o: ObserveOptions): Promise<ClusterStatus> {
  const names = o.nodes ?? nodesOfGroups(o.inventory, o.groups);
  const nodes = await Promise.all(
    names.map(async (name): Promise<NodeObservation> => {
      const reading = readBmcPower(o.inventory.hosts.get(name), o.bmcRunner);
      const [read, power] = await Promise.all([readNodeUnlessOff(name, o, reading), reading]);
      const n: NodeObservation = { name, reachable: read.connected, power: power.power };
      if (read.answered) n.answered = true;
      if (read.error) n.error = read.error;
      if (power.powerError) n.powerError = power.powerError;
      if (read.view) n.view = read.view;
      return n;
    }),
  );
  return judgeCluster(o.groups, nodes);
}
