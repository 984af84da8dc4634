/**
 * Service groups: what moves between nodes as one (a VIP, its volume, its mount, its NFS
 * exports and/or iSCSI targets), declared once in the inventory as `all.vars.baton_services`:
 *
 *   baton_services:
 *     nfs-a:
 *       vip: 198.18.0.200/24
 *       volume: { provider: loop, image: /var/lib/baton-lab/lab/disks/disk1.img }
 *       mount: { path: /srv/disk1, fstype: ext4 }
 *       nfs_exports: [{ path: /srv/disk1, pseudo: /disk1, fsid: 101 }]
 *       nodes: [n1, n2, n3]          # preference order: n1 is its home
 *     san-a:                         # an iSCSI group: its LUN is the volume itself (no mount)
 *       vip: 198.18.0.210/24
 *       volume: { provider: loop, image: /var/lib/baton-lab/lab/disks/disk2.img }
 *       iscsi_targets:
 *         - iqn: iqn.2026-11.dev.baton:san-a
 *           acls: [198.18.0.0/24]
 *           luns: [{ lun: 1, scsi_id: "5ba7000000000001", scsi_sn: "SAN-A-1" }]
 *       nodes: [n2, n1]
 *
 * An inventory without `baton_services` but with the single-service vars the shipped nfs-*
 * playbooks use (`vip`, `disks`/`volume_image`, `mount_point`, ...) describes one group, named
 * `nfs` (IMPLIED_GROUP), derived from those vars with the roles' defaults: see impliedGroup().
 *
 * Problems are reported all at once, each at its `file:line:col`: the schema's
 * (schemas/services.json), then what a schema cannot say: every node named is an inventory host,
 * and no two groups share a VIP, a mount path, a volume, an fsid, an export id or a pseudo path
 * (two groups on one node would fight over it, and two exports with one fsid give clients ESTALE),
 * nor an IQN, a scsi_id or a scsi_sn (initiators would take two disks for one); every LUN has a
 * backing (its own backing_store, else the group's loop or LVM volume), and a LUN on the group's
 * volume rules out a mount of it (the node's filesystem and the initiators would both write it).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { checkAgainst, compileSchema } from '../playbook/schema-check.js';
import { originOf, type ParsedYaml } from '../playbook/yaml-source.js';
import { schemasDir } from '../util/paths.js';
import { ValidationError, type Problem, type SourceLocation } from '../util/errors.js';
import type { Host, Inventory } from './model.js';
import { selectHosts } from './pattern.js';

/** The inventory var that declares the groups. */
export const SERVICES_VAR = 'baton_services';

/** Name of the one group an inventory of today's single-service vars describes. */
export const IMPLIED_GROUP = 'nfs';

/** The lock the shipped nfs-* playbooks take: the implied group keeps it. */
export const IMPLIED_GROUP_LOCK = 'nfs-service';

export type VolumeSpec =
  | { provider: 'loop'; image: string }
  | { provider: 'zfs'; pool: string }
  | { provider: 'lvm'; vg: string; device: string };

export interface MountSpec {
  path: string;
  fstype: string;
  options?: string;
}

export interface NfsExportSpec {
  path: string;
  pseudo: string;
  fsid: number;
  /** NFS-Ganesha's Export_Id; the fsid when not given. */
  exportId: number;
  clients?: string;
  access?: 'rw' | 'ro';
  squash?: 'root_squash' | 'no_root_squash' | 'all_squash';
}

export interface IscsiLunSpec {
  lun: number;
  scsiId: string;
  scsiSn: string;
  /** Written in the inventory; else the LUN is the group's volume. */
  backingStore?: string;
}

export interface IscsiTargetSpec {
  iqn: string;
  luns: IscsiLunSpec[];
  /** Empty: any initiator (tgt's ALL). */
  acls: string[];
  /** The portal's TCP port on the VIP. */
  port: number;
}

export const ISCSI_DEFAULT_PORT = 3260;

export interface ServiceGroup {
  name: string;
  vip: { address: string; prefix: number };
  /** Where the VIP is raised; absent: `nodeInterfaces`, else each node's `iface` var, else eth0. */
  interface?: string;
  /** The implied group's nodes naming different `vip_interface`s: each node's own. */
  nodeInterfaces?: Record<string, string>;
  volume?: VolumeSpec;
  mount?: MountSpec;
  nfsExports: NfsExportSpec[];
  iscsiTargets: IscsiTargetSpec[];
  /** Allowed nodes, in order of preference. */
  nodes: string[];
  /** nodes[0]. */
  home: string;
  /** The group's lock name (service-NAME unless set). */
  lock: string;
  /**
   * The group's own MAC (failover MAC), lower case: the VIP is raised on `failoverInterface`, which
   * takes this MAC on the node that runs the group (docs/service-groups.md). Set with it.
   */
  mac?: string;
  /** Each node's spare interface that carries the group's MAC and VIP. */
  failoverInterface?: string;
  /** Derived from single-service vars, not declared in baton_services. */
  implied: boolean;
  /** Where the group was written (its key, or the var it was derived from). */
  loc?: SourceLocation;
}

type Raw = Record<string, unknown>;

export const GROUP_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

const isMapping = (v: unknown): v is Raw => v !== null && typeof v === 'object' && !Array.isArray(v);

let schemaCache: object | undefined;
export function servicesSchema(): object {
  schemaCache ??= JSON.parse(readFileSync(path.join(schemasDir, 'services.json'), 'utf8')) as object;
  return schemaCache;
}

/**
 * The inventory's service groups, validated; throws ValidationError (exit 2) listing every
 * problem. No groups (no baton_services and no `vip`) is an empty list, not an error: the caller
 * says what it needed them for.
 */
export function loadServiceGroups(inventory: Inventory): ServiceGroup[] {
  const found = findServicesVar(inventory);
  if (found.problems.length) throw new ValidationError(found.problems);
  if (!found.value) {
    const g = impliedGroup(inventory);
    return g ? [g] : [];
  }
  const { value, locate } = found;
  const problems: Problem[] = [];
  if (!isMapping(value)) {
    problems.push({ loc: locate([]), message: `${SERVICES_VAR} must be a mapping of group name to group (vip, volume, mount, nfs_exports, nodes), got ${Array.isArray(value) ? 'a list' : JSON.stringify(value)}` });
    throw new ValidationError(problems);
  }
  const shape = checkAgainst(compileSchema('services', servicesSchema()), value, { doc: found.doc, basePath: found.basePath, rootLabel: SERVICES_VAR });
  // A provider's missing key is said by its `required` error; the if/then wrapper adds nothing.
  problems.push(...shape.filter((p) => !p.message.endsWith('must match "then" schema')));
  if (problems.length) throw new ValidationError(problems);

  const groups = Object.entries(value).map(([name, raw]) => toGroup(name, raw as Raw, locate));
  problems.push(...crossCheck(groups, value, inventory, locate));
  if (problems.length) throw new ValidationError(problems);
  return groups;
}

/**
 * What is wrong with the inventory's baton_services, for the inventory loader: every command
 * that reads an inventory refuses a bad group declaration before contacting a node, whether
 * or not it uses the groups.
 */
export function serviceGroupProblems(inventory: Inventory): Problem[] {
  const declared = [...inventory.hosts.values()].some((h) => h.vars[SERVICES_VAR] !== undefined) || inventory.groups.get('all')?.vars[SERVICES_VAR] !== undefined;
  if (!declared) return [];
  try {
    loadServiceGroups(inventory);
    return [];
  } catch (e) {
    if (e instanceof ValidationError) return e.problems;
    throw e;
  }
}

/** One group by name, or an error listing the ones there are. */
export function serviceGroup(groups: ServiceGroup[], name: string): ServiceGroup {
  const g = groups.find((x) => x.name === name);
  if (g) return g;
  const names = groups.map((x) => x.name);
  throw new Error(`no service group ${JSON.stringify(name)} in the inventory; ${names.length ? `its groups: ${names.join(', ')}` : `it declares none (${SERVICES_VAR} in all.vars)`}`);
}

type Locate = (sub: ReadonlyArray<string | number>, key?: boolean) => SourceLocation;

interface Found {
  value?: unknown;
  doc: ParsedYaml;
  basePath: Array<string | number>;
  locate: Locate;
  problems: Problem[];
}

/**
 * baton_services as every host sees it. It belongs to the whole inventory: a host (or a group
 * other than `all`) with a value of its own would make "where does nfs-a run" depend on who asks.
 * Positions inside the value come from the YAML it was parsed from (originOf); a value that was
 * rendered from a template, or read from INI or a script, is located at the var itself.
 */
function findServicesVar(inventory: Inventory): Found {
  const problems: Problem[] = [];
  const holders = [...inventory.hosts.values()].filter((h) => h.vars[SERVICES_VAR] !== undefined && h.vars[SERVICES_VAR] !== null);
  const raw = inventory.groups.get('all')?.vars[SERVICES_VAR];
  const first: Host | undefined = holders[0];
  const value = first ? first.vars[SERVICES_VAR] : raw;
  const varLoc: SourceLocation = first?.varOrigins?.[SERVICES_VAR] ?? { file: inventory.file, line: 1, col: 1 };
  const origin = originOf(raw) ?? originOf(value);
  const doc: ParsedYaml = origin?.doc ?? {
    file: varLoc.file,
    value: undefined,
    root: undefined,
    at: () => varLoc,
    keyAt: () => varLoc,
  };
  const basePath = origin?.path ?? [];
  const locate: Locate = (sub, key) => (key ? doc.keyAt([...basePath, ...sub]) : doc.at([...basePath, ...sub]));
  if (first) {
    const want = JSON.stringify(value);
    const others = [...inventory.hosts.values()].filter((h) => JSON.stringify(h.vars[SERVICES_VAR]) !== want);
    if (others.length) {
      const o = others[0]!;
      const where = o.varOrigins?.[SERVICES_VAR];
      problems.push({
        loc: where ?? o.loc ?? varLoc,
        message: `${SERVICES_VAR} must be the same for every host (set it once, in all.vars): host ${o.name} sees ${o.vars[SERVICES_VAR] === undefined ? 'none' : 'another value'} than host ${first.name} (${varLoc.file}:${varLoc.line})`,
      });
    }
  }
  return { value, doc, basePath, locate, problems };
}

function toGroup(name: string, raw: Raw, locate: Locate): ServiceGroup {
  const [address, prefix] = String(raw.vip).split('/') as [string, string];
  const nodes = (raw.nodes as string[]).map(String);
  const exports = ((raw.nfs_exports as Raw[] | undefined) ?? []).map((e): NfsExportSpec => {
    const x: NfsExportSpec = { path: String(e.path), pseudo: String(e.pseudo), fsid: Number(e.fsid), exportId: Number(e.export_id ?? e.fsid) };
    if (e.clients !== undefined) x.clients = String(e.clients);
    if (e.access !== undefined) x.access = e.access as NfsExportSpec['access'];
    if (e.squash !== undefined) x.squash = e.squash as NfsExportSpec['squash'];
    return x;
  });
  const targets = ((raw.iscsi_targets as Raw[] | undefined) ?? []).map((t): IscsiTargetSpec => ({
    iqn: String(t.iqn),
    acls: ((t.acls as unknown[] | undefined) ?? []).map(String),
    port: t.port === undefined ? ISCSI_DEFAULT_PORT : Number(t.port),
    luns: (t.luns as Raw[]).map((l) => ({
      lun: Number(l.lun),
      scsiId: String(l.scsi_id),
      scsiSn: String(l.scsi_sn),
      ...(typeof l.backing_store === 'string' ? { backingStore: l.backing_store } : {}),
    })),
  }));
  const g: ServiceGroup = {
    name,
    vip: { address, prefix: Number(prefix) },
    nfsExports: exports,
    iscsiTargets: targets,
    nodes,
    home: nodes[0]!,
    lock: typeof raw.lock === 'string' ? raw.lock : `service-${name}`,
    implied: false,
    loc: locate([name], true),
  };
  if (typeof raw.interface === 'string') g.interface = raw.interface;
  if (typeof raw.mac === 'string') g.mac = raw.mac.toLowerCase();
  if (typeof raw.failover_interface === 'string') g.failoverInterface = raw.failover_interface;
  if (isMapping(raw.volume)) g.volume = toVolume(raw.volume);
  if (isMapping(raw.mount)) {
    g.mount = { path: normPath(String(raw.mount.path)), fstype: String(raw.mount.fstype) };
    if (typeof raw.mount.options === 'string') g.mount.options = raw.mount.options;
  }
  return g;
}

function toVolume(v: Raw): VolumeSpec {
  switch (v.provider) {
    case 'zfs':
      return { provider: 'zfs', pool: String(v.pool) };
    case 'lvm':
      return { provider: 'lvm', vg: String(v.vg), device: String(v.device) };
    default:
      return { provider: 'loop', image: String(v.image) };
  }
}

const normPath = (p: string): string => (p.length > 1 ? p.replace(/\/+$/, '') : p);

/** IPv6 written two ways is one address: compare a canonical form. */
function canonicalAddress(a: string): string {
  if (!a.includes(':')) return a;
  const [head = '', tail] = a.toLowerCase().split('::', 2) as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(Math.max(0, 8 - h.length - t.length)).fill('0');
  return [...h, ...fill, ...t].map((x) => x.replace(/^0+(?=.)/, '')).join(':');
}

function crossCheck(groups: ServiceGroup[], raw: Raw, inventory: Inventory, locate: Locate): Problem[] {
  const problems: Problem[] = [];
  for (const g of groups) {
    if (!GROUP_NAME_RE.test(g.name)) {
      problems.push({ loc: locate([g.name], true), message: `service group name ${JSON.stringify(g.name)}: use letters, digits, '_', '.' and '-', starting with a letter or digit (it names the group's lock and is given as -e service=NAME)` });
    }
    g.nodes.forEach((n, i) => {
      if (inventory.hosts.has(n)) return;
      const known = [...inventory.hosts.keys()];
      problems.push({
        loc: locate([g.name, 'nodes', i]),
        message: `service group ${g.name}: node "${n}" is not a host of the inventory (hosts: ${known.slice(0, 12).join(', ')}${known.length > 12 ? ', ...' : ''})`,
      });
    });
  }
  // Each kind of resource: the first group to claim a value owns it; a later claim is the error,
  // located where the later group wrote it and naming the first.
  const unique = (what: string, claims: Array<{ group: string; value: string; shown?: string; at: Array<string | number> }>) => {
    const owner = new Map<string, string>();
    for (const c of claims) {
      const prev = owner.get(c.value);
      if (prev !== undefined && prev !== c.group) {
        problems.push({ loc: locate([c.group, ...c.at]), message: `service group ${c.group}: ${what} ${c.shown ?? c.value} is already group ${prev}'s; each group needs its own` });
      } else if (prev === undefined) owner.set(c.value, c.group);
    }
  };
  unique('VIP', groups.map((g) => ({ group: g.name, value: canonicalAddress(g.vip.address), shown: g.vip.address, at: ['vip'] })));
  unique('MAC', groups.flatMap((g) => (g.mac ? [{ group: g.name, value: g.mac, at: ['mac'] }] : [])));
  problems.push(...failoverMacProblems(groups, raw, locate));
  unique('mount path', groups.flatMap((g) => (g.mount ? [{ group: g.name, value: g.mount.path, at: ['mount', 'path'] }] : [])));
  unique(
    'volume',
    groups.flatMap((g) => {
      const v = g.volume;
      if (!v) return [];
      const [value, key] = v.provider === 'loop' ? [`image ${path.resolve(v.image)}`, 'image'] : v.provider === 'zfs' ? [`pool ${v.pool}`, 'pool'] : [`volume group ${v.vg}`, 'vg'];
      return [{ group: g.name, value, at: ['volume', key] }];
    }),
  );
  const exportClaims = (field: 'fsid' | 'exportId' | 'pseudo', key: string) =>
    groups.flatMap((g) =>
      g.nfsExports.map((e, i) => {
        // export_id defaults to the fsid: point at the fsid when it was not written.
        const written = key !== 'export_id' || (isMapping(raw[g.name]) && ((raw[g.name] as Raw).nfs_exports as Raw[])[i]?.export_id !== undefined);
        return { group: g.name, value: String(e[field]), at: ['nfs_exports', i, written ? key : 'fsid'] };
      }),
    );
  unique('fsid', exportClaims('fsid', 'fsid'));
  unique('NFS-Ganesha export id', exportClaims('exportId', 'export_id'));
  unique('NFSv4 pseudo path', exportClaims('pseudo', 'pseudo'));
  // Within one group too: two exports with one fsid are the same ESTALE trap.
  for (const g of groups) {
    const seen = new Map<number, number>();
    g.nfsExports.forEach((e, i) => {
      const j = seen.get(e.fsid);
      if (j !== undefined) problems.push({ loc: locate([g.name, 'nfs_exports', i, 'fsid']), message: `service group ${g.name}: fsid ${e.fsid} is already used by its export ${j + 1} (${g.nfsExports[j]!.path}); each export needs its own` });
      else seen.set(e.fsid, i);
    });
  }
  problems.push(...iscsiProblems(groups, locate, unique));
  return problems;
}

type Claim = { group: string; value: string; shown?: string; at: Array<string | number> };

/** What the schema cannot say about the groups' iSCSI targets (see the header). */
function iscsiProblems(groups: ServiceGroup[], locate: Locate, unique: (what: string, claims: Claim[]) => void): Problem[] {
  const problems: Problem[] = [];
  const claims = (what: (l: IscsiLunSpec) => string, key: string): Claim[] =>
    groups.flatMap((g) => g.iscsiTargets.flatMap((t, i) => t.luns.map((l, j) => ({ group: g.name, value: what(l), at: ['iscsi_targets', i, 'luns', j, key] }))));
  // One claim per target for the IQN; per LUN for the identity (case does not make another NAA).
  unique('IQN', groups.flatMap((g) => g.iscsiTargets.map((t, i) => ({ group: g.name, value: t.iqn, at: ['iscsi_targets', i, 'iqn'] }))));
  unique('scsi_id', claims((l) => l.scsiId.toLowerCase().replace(/^0+(?=.)/, ''), 'scsi_id'));
  unique('scsi_sn', claims((l) => l.scsiSn, 'scsi_sn'));
  for (const g of groups) {
    let mountSaid = false;
    const iqns = new Map<string, number>();
    const ids = new Map<string, string>();
    g.iscsiTargets.forEach((t, i) => {
      const prev = iqns.get(t.iqn);
      if (prev !== undefined) problems.push({ loc: locate([g.name, 'iscsi_targets', i, 'iqn']), message: `service group ${g.name}: IQN ${t.iqn} is already its target ${prev + 1}; each target needs its own` });
      else iqns.set(t.iqn, i);
      const luns = new Set<number>();
      t.luns.forEach((l, j) => {
        const at = (key: string) => locate([g.name, 'iscsi_targets', i, 'luns', j, key]);
        if (luns.has(l.lun)) problems.push({ loc: at('lun'), message: `service group ${g.name}: target ${t.iqn} has LUN ${l.lun} twice` });
        luns.add(l.lun);
        for (const [what, v] of [['scsi_id', l.scsiId.toLowerCase().replace(/^0+(?=.)/, '')], ['scsi_sn', l.scsiSn]] as const) {
          const key = `${what} ${v}`;
          const first = ids.get(key);
          if (first) problems.push({ loc: at(what), message: `service group ${g.name}: ${what} ${what === 'scsi_id' ? l.scsiId : l.scsiSn} is already ${first}'s; initiators would take two LUNs for one disk` });
          else ids.set(key, `${t.iqn} LUN ${l.lun}`);
        }
        if (l.backingStore) return;
        const v = g.volume;
        if (!v || v.provider === 'zfs') {
          problems.push({ loc: locate([g.name, 'iscsi_targets', i, 'luns', j]), message: `service group ${g.name}: LUN ${l.lun} of ${t.iqn} has no backing_store, and the group has ${v ? 'a ZFS pool, not a device' : 'no volume'} to serve instead; give it backing_store: /dev/... (a zvol, a device) or the group a loop or lvm volume` });
        } else if (g.mount && !mountSaid) {
          mountSaid = true;
          problems.push({ loc: locate([g.name, 'mount']), message: `service group ${g.name}: LUN ${l.lun} of ${t.iqn} serves the group's volume itself, which the group also mounts on ${g.mount.path}: the node's filesystem and the initiators would both write it; drop the mount, or give the LUN a backing_store (e.g. an image file under the mount)` });
        }
      });
    });
  }
  return problems;
}

/**
 * A MAC a group may own: unicast (bit 0 of the first octet clear: no interface takes a multicast
 * address) and locally administered (bit 1 set: never some vendor's NIC address).
 */
export function macProblem(mac: string): string | undefined {
  const first = parseInt(mac.slice(0, 2), 16);
  if (first & 1) return 'is a multicast address (its first octet is odd): no interface can take it';
  if (!(first & 2)) return "is not locally administered (the second bit of its first octet is clear): it may be some vendor NIC's; use one like 02:…, 06:…, 0a:… or 0e:…";
  return undefined;
}

/**
 * A failover MAC needs its interface and a MAC an interface may take; the VIP then goes on that
 * interface, so `interface` would be a second answer to where. One interface carries one MAC: two
 * groups that may run on the same node cannot share their failover interface.
 */
function failoverMacProblems(groups: ServiceGroup[], raw: Raw, locate: Locate): Problem[] {
  const problems: Problem[] = [];
  const written = (g: ServiceGroup, key: string) => isMapping(raw[g.name]) && (raw[g.name] as Raw)[key] !== undefined;
  for (const g of groups) {
    if (g.mac && !g.failoverInterface) {
      problems.push({ loc: locate([g.name, 'mac']), message: `service group ${g.name}: a mac needs failover_interface too: the interface on each node that takes the MAC and carries the VIP (e.g. failover_interface: fo1)` });
    }
    if (g.failoverInterface && !g.mac) {
      problems.push({ loc: locate([g.name, 'failover_interface']), message: `service group ${g.name}: failover_interface needs the mac it carries (a unicast, locally administered MAC such as 02:00:5e:10:00:01)` });
    }
    const bad = g.mac ? macProblem(g.mac) : undefined;
    if (bad) problems.push({ loc: locate([g.name, 'mac']), message: `service group ${g.name}: mac ${g.mac} ${bad}` });
    if (g.mac && g.failoverInterface && written(g, 'interface')) {
      problems.push({
        loc: locate([g.name, 'interface']),
        message: `service group ${g.name}: with a mac the VIP is raised on failover_interface (${g.failoverInterface}); drop interface (${g.interface}), or drop mac and failover_interface`,
      });
    }
  }
  const withIface = groups.filter((g) => g.mac && g.failoverInterface);
  withIface.forEach((g, i) => {
    for (const other of withIface.slice(0, i)) {
      if (other.failoverInterface !== g.failoverInterface) continue;
      const shared = g.nodes.filter((n) => other.nodes.includes(n));
      if (!shared.length) continue;
      problems.push({
        loc: locate([g.name, 'failover_interface']),
        message: `service group ${g.name}: failover_interface ${g.failoverInterface} is also group ${other.name}'s, and both may run on ${shared.join(', ')}: one interface carries one MAC; give each group its own`,
      });
      break;
    }
  });
  return problems;
}

// ---------------------------------------------------------------- the implied group

/** A var's value when it is plain data (a `{{ }}` left for a play to render is not). */
function plain(host: Host, name: string): unknown {
  const v = host.vars[name];
  if (host.deferred && name in host.deferred) return undefined;
  if (typeof v === 'string' && v.includes('{{')) return undefined;
  return v === null ? undefined : v;
}

/**
 * Today's single-service inventories (inventory/lab.example.yml, production.example.yml) as one
 * group named `nfs`, read the way the shipped roles read their vars (each role's defaults.yml):
 *   vip                  `vip`/`vip_prefix` (24); none: no group at all
 *   interface            `vip_interface` when it is plain data (else each node's iface)
 *   volume               `volume_provider` (loop): loop `volume_image`, else `disks[0]`;
 *                        zfs `volume_pool`; lvm `volume_vg` + `volume_device`
 *   mount                `mount_point` (/srv/disk1), `fstype` (ext4); none with zfs unless
 *                        mount_point is set (ZFS mounts its datasets itself)
 *   nfs_exports          one: `export_path` (the mount point), `export_pseudo` (/disk1),
 *                        fsid `nfs_fsid` (101), export id `export_id` (101)
 *   nodes                the hosts of `baton_peers` when set, else of group `nodes`, else every
 *                        host not reached locally, in inventory order; the first is home
 *   lock                 nfs-service, the lock the nfs-* playbooks take
 */
export function impliedGroup(inventory: Inventory): ServiceGroup | undefined {
  const nodes = impliedNodes(inventory);
  const ref = inventory.hosts.get(nodes[0] ?? '');
  if (!ref) return undefined;
  const vip = plain(ref, 'vip');
  if (typeof vip !== 'string' || !vip) return undefined;
  const [address, inlinePrefix] = vip.split('/') as [string, string | undefined];
  const prefix = Number(inlinePrefix ?? plain(ref, 'vip_prefix') ?? 24);
  const provider = String(plain(ref, 'volume_provider') ?? 'loop');
  let volume: VolumeSpec | undefined;
  if (provider === 'loop') {
    const disks = plain(ref, 'disks');
    const image = plain(ref, 'volume_image') ?? (Array.isArray(disks) ? disks[0] : undefined);
    if (typeof image === 'string' && image) volume = { provider: 'loop', image };
  } else if (provider === 'zfs') {
    const pool = plain(ref, 'volume_pool');
    if (typeof pool === 'string' && pool) volume = { provider: 'zfs', pool };
  } else if (provider === 'lvm') {
    const vg = plain(ref, 'volume_vg');
    const device = plain(ref, 'volume_device');
    if (typeof vg === 'string' && vg && typeof device === 'string' && device) volume = { provider: 'lvm', vg, device };
  }
  const mountPoint = plain(ref, 'mount_point');
  const mountPath = typeof mountPoint === 'string' && mountPoint ? normPath(mountPoint) : provider === 'zfs' ? undefined : '/srv/disk1';
  const exportPath = plain(ref, 'export_path');
  const fsid = Number(plain(ref, 'nfs_fsid') ?? 101);
  const exportId = Number(plain(ref, 'export_id') ?? 101);
  const pseudo = plain(ref, 'export_pseudo');
  const nfsExports: NfsExportSpec[] = [];
  const exported = typeof exportPath === 'string' && exportPath ? exportPath : mountPath;
  if (exported) nfsExports.push({ path: normPath(exported), pseudo: typeof pseudo === 'string' && pseudo ? pseudo : '/disk1', fsid, exportId });
  const g: ServiceGroup = {
    name: IMPLIED_GROUP,
    vip: { address, prefix },
    nfsExports,
    iscsiTargets: [],
    nodes,
    home: nodes[0]!,
    lock: IMPLIED_GROUP_LOCK,
    implied: true,
    loc: ref.varOrigins?.vip,
  };
  // One interface for the group only when every node names the same one: nodes may differ
  // (eth0 on one, ens192 on the other), and each node's own is then used (engine/placement.ts).
  const ifaces = nodes.map((n) => [n, plain(inventory.hosts.get(n) ?? ref, 'vip_interface')] as const);
  const iface = plain(ref, 'vip_interface');
  if (new Set(ifaces.map(([, i]) => i)).size === 1) {
    if (typeof iface === 'string' && iface) g.interface = iface;
  } else {
    g.nodeInterfaces = Object.fromEntries(ifaces.filter((e): e is readonly [string, string] => typeof e[1] === 'string' && e[1] !== ''));
  }
  if (volume) g.volume = volume;
  if (mountPath) g.mount = { path: mountPath, fstype: String(plain(ref, 'fstype') ?? 'ext4') };
  return g;
}

function impliedNodes(inventory: Inventory): string[] {
  const remote = (h: Host) => h.vars.ansible_connection !== 'local';
  const any = [...inventory.hosts.values()][0];
  const pattern = any?.vars.baton_peers;
  if (typeof pattern === 'string' && pattern) return selectHosts(inventory, pattern).hosts.filter(remote).map((h) => h.name);
  if (inventory.groups.has('nodes')) return [...inventory.hosts.values()].filter((h) => h.groups.includes('nodes')).map((h) => h.name);
  return [...inventory.hosts.values()].filter(remote).map((h) => h.name);
}
