/**
 * The lab's plan: names, addresses, ports, MACs and paths, all derived from the lab's name and
 * /24 so that two labs never share a namespace, an interface, a port or a file.
 */
import path from 'node:path';
import { createHash } from 'node:crypto';
import { BatonError, ExitCode } from '../util/errors.js';

export interface LabSpec {
  name: string;
  /** e.g. 198.18.10.0/24 */
  subnet: string;
  nodes: number;
  clients: number;
  disks: number;
  /** Size of each shared disk image, in MiB. */
  diskMiB: number;
  /**
   * Service groups written into the inventory (baton_services), one disk and one VIP each;
   * absent or 0: the single-service inventory of before. Disks are added when fewer than groups.
   */
  groups?: number;
  /**
   * Spare interfaces per node on the lab switch (fo1, fo2, ...), for failover MACs: group i gets
   * MAC and failover interface fo<i> when i is at most this. Absent or 0: none.
   */
  failoverNics?: number;
  /** A "SAN" namespace whose tgtd serves one shared LUN to every node (san.ts). */
  san?: boolean;
  /**
   * iSCSI service groups beside them (a disk, a VIP and a target IQN each, with a fixed
   * scsi_id and scsi_sn); their disks come after the NFS groups' ones.
   */
  iscsiGroups?: number;
}

/** One iSCSI service group of the lab's inventory (see iscsiGroupsOf). */
export interface LabIscsiGroupPlan {
  name: string;
  /** VIP/prefix. */
  vip: string;
  image: string;
  iqn: string;
  lun: number;
  scsiId: string;
  scsiSn: string;
  /** Who may log in: the lab's /24 (its clients, and the controller). */
  acls: string[];
  nodes: string[];
}

/** One service group of the lab's inventory (see serviceGroupsOf). */
export interface LabGroupPlan {
  name: string;
  /** VIP/prefix. */
  vip: string;
  image: string;
  mountPoint: string;
  pseudo: string;
  fsid: number;
  /** Preference order, home first. */
  nodes: string[];
  /** The group's failover MAC and the interface that carries it (with --failover-nics). */
  mac?: string;
  failoverInterface?: string;
}

/** A node's spare interface for failover MACs: a veth into the switch, down until a group takes it. */
export interface FailoverNicPlan {
  /** Inside the node: fo1, fo2, ... */
  name: string;
  /** Its peer on the bridge, in the switch namespace. */
  switchPort: string;
  /** Its own MAC, which it has whenever no group's MAC is on it (and again after a reboot). */
  mac: string;
}

export interface NodePlan {
  name: string;
  index: number;
  netns: string;
  /** Interface of the node's veth inside the switch namespace. */
  switchPort: string;
  address: string;
  mac: string;
  dir: string;
  bmc: BmcPlan;
  /** Empty unless the spec asks for failover NICs. */
  failoverNics: FailoverNicPlan[];
}

export interface BmcPlan {
  address: string;
  port: number;
  user: string;
  password: string;
  dir: string;
}

export interface ClientPlan {
  name: string;
  index: number;
  netns: string;
  switchPort: string;
  address: string;
  mac: string;
  dir: string;
}

export interface LabPlan {
  spec: LabSpec;
  dir: string;
  /** Every netns of this lab starts with it; nothing of another lab does (names have no '-'). */
  prefix: string;
  switchNetns: string;
  /** Controller end of the veth into the switch, in the host namespace. */
  controllerIf: string;
  controllerAddress: string;
  prefixLength: 24;
  network: string;
  vip: string;
  keyFile: string;
  knownHostsFile: string;
  inventoryFile: string;
  disks: string[];
  /** Empty unless the spec asks for groups. */
  groups: LabGroupPlan[];
  /** Empty unless the spec asks for iSCSI groups. */
  iscsiGroups: LabIscsiGroupPlan[];
  nodes: NodePlan[];
  clients: ClientPlan[];
}

/**
 * Root of all labs. Not under /run or /tmp: every node mounts a private tmpfs over both, which
 * would hide the node's own config files from its daemons.
 */
export function labsRoot(): string {
  return path.resolve(process.env.BATON_LAB_DIR ?? '/var/lib/baton-lab');
}

/** Lab names end up in interface names (15 bytes max, `bt-` + name) and must not contain '-'. */
export const LAB_NAME_RE = /^[a-z][a-z0-9]{0,11}$/;

export const MAX_NODES = 9;
export const MAX_CLIENTS = 9;
export const MAX_DISKS = 8;
/** One disk each, and their VIPs .200-.207 stay clear of the nodes (.11-) and clients (.101-). */
export const MAX_GROUPS = MAX_DISKS;

function invalid(message: string): never {
  throw new BatonError(`lab: ${message}; nothing was changed`, ExitCode.INVALID);
}

/** Parse `198.18.X.0/24` (or 198.19.X.0/24) into its third octet and the /15 half. */
export function parseSubnet(subnet: string): { second: 18 | 19; third: number } {
  const m = /^198\.(18|19)\.(\d{1,3})\.0\/24$/.exec(subnet);
  if (!m || Number(m[2]) > 255) {
    invalid(`subnet ${JSON.stringify(subnet)} must be a /24 of 198.18.0.0/15 written as 198.18.X.0/24 or 198.19.X.0/24 (the lab uses no other addresses)`);
  }
  return { second: Number(m[1]) as 18 | 19, third: Number(m[2]) };
}

/** A default /24 derived from the name, so `baton lab up --name x` works without --subnet. */
export function defaultSubnet(name: string): string {
  const h = createHash('sha256').update(name).digest();
  // 198.19.0.0/16 only: tests pick their /24s from 198.18.0.0/16, so defaults never meet them.
  return `198.19.${h[0]! % 250}.0/24`;
}

export function validateSpec(spec: LabSpec): void {
  if (!LAB_NAME_RE.test(spec.name)) {
    invalid(`lab name ${JSON.stringify(spec.name)} must be 1-12 characters of a-z and 0-9, starting with a letter (it prefixes interface names, which Linux limits to 15 bytes)`);
  }
  parseSubnet(spec.subnet);
  const count = (what: string, n: number, min: number, max: number) => {
    if (!Number.isInteger(n) || n < min || n > max) invalid(`--${what} must be an integer from ${min} to ${max}, got ${n}`);
  };
  count('nodes', spec.nodes, 1, MAX_NODES);
  count('clients', spec.clients, 0, MAX_CLIENTS);
  count('disks', spec.disks, 0, MAX_DISKS);
  count('disk-size', spec.diskMiB, 16, 4096);
  if (spec.groups !== undefined) count('groups', spec.groups, 0, MAX_GROUPS);
  if (spec.failoverNics !== undefined) count('failover-nics', spec.failoverNics, 0, MAX_GROUPS);
  if (spec.iscsiGroups !== undefined) count('iscsi-groups', spec.iscsiGroups, 0, MAX_GROUPS);
  const total = (spec.groups ?? 0) + (spec.iscsiGroups ?? 0);
  if (total > MAX_DISKS) invalid(`--groups and --iscsi-groups need a disk each: ${total} is more than the ${MAX_DISKS} disks a lab has`);
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

export function planLab(spec: LabSpec): LabPlan {
  validateSpec(spec);
  const { second, third } = parseSubnet(spec.subnet);
  const net = `198.${second}.${third}`;
  const dir = path.join(labsRoot(), spec.name);
  const prefix = `baton-${spec.name}-`;
  // One BMC port block per /24: two labs (different /24s) never compete for a port even if
  // their BMCs listened on the same address, which they do not.
  const bmcPortBase = 20000 + ((second - 18) * 256 + third) * 10;
  // Locally administered unicast MACs that encode the /24, the role and the index.
  const mac = (role: number, index: number) => `02:ba:${hex2(second)}:${hex2(third)}:${hex2(role)}:${hex2(index)}`;

  const nodes: NodePlan[] = [];
  for (let i = 1; i <= spec.nodes; i++) {
    const name = `n${i}`;
    const ndir = path.join(dir, 'nodes', name);
    nodes.push({
      name,
      index: i,
      netns: `${prefix}${name}`,
      switchPort: name,
      address: `${net}.${10 + i}`,
      mac: mac(1, i),
      dir: ndir,
      // Own MACs: role 4, the node in the high nibble and the NIC in the low one.
      failoverNics: Array.from({ length: spec.failoverNics ?? 0 }, (_, k) => ({ name: `fo${k + 1}`, switchPort: `${name}f${k + 1}`, mac: mac(4, i * 16 + k + 1) })),
      bmc: {
        address: `${net}.1`,
        port: bmcPortBase + i,
        user: 'admin',
        password: `bmc-${spec.name}-${name}`,
        dir: path.join(dir, 'bmc', name),
      },
    });
  }
  const clients: ClientPlan[] = [];
  for (let i = 1; i <= spec.clients; i++) {
    const name = `c${i}`;
    clients.push({
      name,
      index: i,
      netns: `${prefix}${name}`,
      switchPort: name,
      address: `${net}.${100 + i}`,
      mac: mac(2, i),
      dir: path.join(dir, 'clients', name),
    });
  }
  const disks: string[] = [];
  const diskCount = Math.max(spec.disks, (spec.groups ?? 0) + (spec.iscsiGroups ?? 0));
  for (let i = 1; i <= diskCount; i++) disks.push(path.join(dir, 'disks', `disk${i}.img`));

  return {
    spec,
    dir,
    prefix,
    switchNetns: `${prefix}sw`,
    controllerIf: `bt-${spec.name}`,
    controllerAddress: `${net}.1`,
    prefixLength: 24,
    network: `${net}.0`,
    vip: `${net}.200`,
    keyFile: path.join(dir, 'id_ed25519'),
    knownHostsFile: path.join(dir, 'known_hosts'),
    inventoryFile: path.join(dir, 'inventory.yml'),
    disks,
    groups: withFailoverMacs(serviceGroupsOf(spec.groups ?? 0, net, disks, nodes.map((n) => n.name)), spec.failoverNics ?? 0, (i) => mac(3, i)),
    iscsiGroups: iscsiGroupsOf(spec, second, third, disks, nodes.map((n) => n.name)),
    nodes,
    clients,
  };
}

/**
 * The lab's service groups: group i (nfs-a, nfs-b, ...) has disk i mounted on /srv/diskI and
 * exported as /diskI with fsid 100+i, and VIP .199+i of the lab's /24, so the first group is
 * exactly the single service of the nfs-* playbooks (VIP .200, disk1, fsid 101). Homes go round
 * the nodes (n1, n2, n3, n1, ...); every node is allowed, the next ones in ring order.
 */
export function serviceGroupsOf(count: number, net: string, disks: string[], nodes: string[]): LabGroupPlan[] {
  const out: LabGroupPlan[] = [];
  for (let i = 1; i <= count; i++) {
    const home = (i - 1) % nodes.length;
    out.push({
      name: `nfs-${String.fromCharCode(96 + i)}`,
      vip: `${net}.${199 + i}/24`,
      image: disks[i - 1]!,
      mountPoint: mountPointFor(i),
      pseudo: `/disk${i}`,
      fsid: 100 + i,
      nodes: nodes.map((_, k) => nodes[(home + k) % nodes.length]!),
    });
  }
  return out;
}

/**
 * Group i (from 1) gets failover MAC `macOf(i)` on interface fo<i> when i <= nics: every node has
 * fo1..fo<nics>, so no two groups share an interface and the groups beyond stay as they were.
 */
export function withFailoverMacs(groups: LabGroupPlan[], nics: number, macOf: (i: number) => string): LabGroupPlan[] {
  return groups.map((g, k) => (k < nics ? { ...g, mac: macOf(k + 1), failoverInterface: `fo${k + 1}` } : g));
}

/**
 * The lab's iSCSI groups: iscsi-a, iscsi-b, ... after the N NFS groups: disk N+i, VIP .209+i
 * (.210-.217, clear of the NFS groups' .200-.207), target iqn.2026-11.dev.baton.lab:NAME.iscsi-X
 * with LUN 1, scsi_id 5ba7 + the /24 + i in hex and scsi_sn BATON-NAME-X: fixed, so a lab made
 * again serves the same identity. Homes go on round the nodes after the NFS groups' homes, so
 * `--groups 1 --iscsi-groups 1` on two nodes is active-active (nfs-a on n1, iscsi-a on n2).
 * The group has no mount: the LUN is the whole disk, which no node's filesystem may write too.
 */
export function iscsiGroupsOf(spec: LabSpec, second: number, third: number, disks: string[], nodes: string[]): LabIscsiGroupPlan[] {
  const out: LabIscsiGroupPlan[] = [];
  const before = spec.groups ?? 0;
  for (let i = 1; i <= (spec.iscsiGroups ?? 0); i++) {
    const home = (before + i - 1) % nodes.length;
    const letter = String.fromCharCode(96 + i);
    out.push({
      name: `iscsi-${letter}`,
      vip: `198.${second}.${third}.${209 + i}/24`,
      image: disks[before + i - 1]!,
      iqn: `iqn.2026-11.dev.baton.lab:${spec.name}.iscsi-${letter}`,
      lun: 1,
      scsiId: `5ba7${hex2(second)}${hex2(third)}0000${hex2(i)}`,
      scsiSn: `BATON-${spec.name.toUpperCase()}-${letter.toUpperCase()}`,
      acls: [`198.${second}.${third}.0/24`],
      nodes: nodes.map((_, k) => nodes[(home + k) % nodes.length]!),
    });
  }
  return out;
}

/** Where a node mounts shared disk N (made on every node at boot, in the node's private /srv). */
export function mountPointFor(diskIndex: number): string {
  return `/srv/disk${diskIndex}`;
}

/** The lab's spec as saved by `up`, so `down`, `status` and `power` need only the name. */
export const SPEC_FILE = 'lab.json';
