/** `baton lab status`: what each node, BMC and client of a lab is doing right now. */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { labNetns, linkExists, netnsAddresses, netnsPids } from './netns.js';
import { nodeFiles } from './node.js';
import { bmcPid, ipmi } from './bmc.js';
import { loopsUnder } from './disks.js';
import type { LabPlan } from './plan.js';
import { sanOf } from './san.js';

/** Daemons worth showing, by the name the kernel gives their process. */
const SERVICES = ['sshd', 'dbus-daemon', 'rpcbind', 'rpc.statd', 'ganesha.nfsd', 'tgtd'];

export interface MountInfo {
  source: string;
  target: string;
  fstype: string;
}

export interface NodeStatus {
  name: string;
  netns: string;
  power: 'on' | 'off';
  linkUp: boolean;
  base: string;
  /** Every IPv4 address on eth0: the base address, and VIPs. */
  addresses: string[];
  vips: string[];
  mounts: MountInfo[];
  services: string[];
  bmc: { address: string; port: number; running: boolean; power?: string };
}

export interface ClientStatus {
  name: string;
  netns: string;
  present: boolean;
  addresses: string[];
}

export interface LabStatus {
  name: string;
  subnet: string;
  dir: string;
  inventory: string;
  switch: boolean;
  controller: { iface: string; address: string; present: boolean };
  nodes: NodeStatus[];
  clients: ClientStatus[];
  disks: Array<{ path: string; loops: string[] }>;
  /** The SAN namespace of `lab up --san`: its tgtd serves the shared LUN the scsi-pr fence reserves. */
  san?: { netns: string; present: boolean; addresses: string[]; tgtd: boolean; portal: string; iqn: string; lun: number; image: string };
}

async function holderInit(pidFile: string): Promise<number | undefined> {
  try {
    const holder = (await readFile(pidFile, 'utf8')).trim();
    const kids = (await readFile(`/proc/${holder}/task/${holder}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean);
    return kids.length ? Number(kids[0]) : undefined;
  } catch {
    return undefined;
  }
}

/** The node's own mounts (seen through its PID 1's /proc entry): disks and NFS, not the base. */
async function nodeMounts(initPid: number | undefined): Promise<MountInfo[]> {
  if (!initPid) return [];
  let text = '';
  try {
    text = await readFile(`/proc/${initPid}/mounts`, 'utf8');
  } catch {
    return [];
  }
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const [source, target, fstype] = line.split(' ');
    if (!source || !target || !fstype) continue;
    if (source.startsWith('/dev/loop') || /^nfs/.test(fstype) || (target.startsWith('/srv/') && fstype !== 'tmpfs')) {
      out.push({ source, target: target.replace(/\\040/g, ' '), fstype });
    }
  }
  return out;
}

async function services(netns: string): Promise<string[]> {
  const found = new Set<string>();
  for (const pid of await netnsPids(netns)) {
    try {
      const comm = (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
      if (SERVICES.includes(comm)) found.add(comm);
    } catch {
      /* gone */
    }
  }
  return SERVICES.filter((s) => found.has(s));
}

export async function labStatus(plan: LabPlan, opts: { askBmc?: boolean } = {}): Promise<LabStatus> {
  const ns = new Set(await labNetns(plan.prefix));
  const nodes = await Promise.all(
    plan.nodes.map(async (n): Promise<NodeStatus> => {
      const present = ns.has(n.netns);
      const init = present ? await holderInit(nodeFiles(n).holderPid) : undefined;
      const addr = present ? await netnsAddresses(n.netns) : { up: false, addresses: [] };
      const addresses = addr.addresses.map((a) => `${a.address}/${a.prefixlen}`);
      const running = (await bmcPid(n)) !== undefined;
      let bmcPower: string | undefined;
      if (running && opts.askBmc !== false) {
        const r = await ipmi(n, ['chassis', 'power', 'status'], 5000);
        bmcPower = r.code === 0 ? r.stdout.trim() : `error: ${r.stderr.trim()}`;
      }
      return {
        name: n.name,
        netns: n.netns,
        power: init ? 'on' : 'off',
        linkUp: addr.up,
        base: n.address,
        addresses,
        vips: addr.addresses.filter((a) => a.address !== n.address).map((a) => a.address),
        mounts: await nodeMounts(init),
        services: present ? await services(n.netns) : [],
        bmc: { address: n.bmc.address, port: n.bmc.port, running, ...(bmcPower ? { power: bmcPower } : {}) },
      };
    }),
  );
  const clients = await Promise.all(
    plan.clients.map(async (c): Promise<ClientStatus> => {
      const present = ns.has(c.netns);
      const addr = present ? await netnsAddresses(c.netns) : { up: false, addresses: [] };
      return { name: c.name, netns: c.netns, present, addresses: addr.addresses.map((a) => `${a.address}/${a.prefixlen}`) };
    }),
  );
  const loops = await loopsUnder(plan.dir);
  let san: LabStatus['san'];
  if (plan.spec.san) {
    const p = sanOf(plan);
    const present = ns.has(p.netns);
    const addr = present ? await netnsAddresses(p.netns) : { up: false, addresses: [] };
    const tgtd = present && (await services(p.netns)).includes('tgtd');
    san = { netns: p.netns, present, addresses: addr.addresses.map((a) => `${a.address}/${a.prefixlen}`), tgtd, portal: p.portal, iqn: p.iqn, lun: p.lun, image: p.image };
  }
  return {
    name: plan.spec.name,
    subnet: plan.spec.subnet,
    dir: plan.dir,
    inventory: existsSync(plan.inventoryFile) ? plan.inventoryFile : '',
    switch: ns.has(plan.switchNetns),
    controller: { iface: plan.controllerIf, address: plan.controllerAddress, present: await linkExists(plan.controllerIf) },
    nodes,
    clients,
    disks: plan.disks.map((d) => ({ path: d, loops: loops.filter((l) => l.backingFile === d).map((l) => l.device) })),
    ...(san ? { san } : {}),
  };
}

export function formatStatus(s: LabStatus): string {
  const lines: string[] = [];
  lines.push(`lab ${s.name}  ${s.subnet}  dir ${s.dir}`);
  lines.push(`  switch ${s.switch ? 'up' : 'MISSING'}; controller ${s.controller.iface} ${s.controller.address} ${s.controller.present ? 'up' : 'MISSING'}`);
  if (s.inventory) lines.push(`  inventory ${s.inventory}`);
  for (const n of s.nodes) {
    lines.push(`  node ${n.name}: power ${n.power}, eth0 ${n.linkUp ? 'up' : 'down'} ${n.addresses.join(' ') || '(no address)'}${n.vips.length ? ` (VIP ${n.vips.join(' ')})` : ''}`);
    lines.push(`    services: ${n.services.join(' ') || '(none)'}`);
    lines.push(`    mounts: ${n.mounts.map((m) => `${m.source} on ${m.target} (${m.fstype})`).join(', ') || '(none)'}`);
    lines.push(`    bmc: ${n.bmc.address}:${n.bmc.port} ${n.bmc.running ? 'running' : 'NOT RUNNING'}${n.bmc.power ? ` — ${n.bmc.power}` : ''}`);
  }
  for (const c of s.clients) lines.push(`  client ${c.name}: ${c.present ? c.addresses.join(' ') || '(no address)' : 'MISSING'} (netns ${c.netns})`);
  for (const d of s.disks) lines.push(`  disk ${d.path}${d.loops.length ? ` attached as ${d.loops.join(' ')}` : ''}`);
  if (s.san) {
    const where = s.san.present ? s.san.addresses.join(' ') || '(no address)' : 'MISSING';
    lines.push(`  san: ${where} (netns ${s.san.netns}), tgtd ${s.san.tgtd ? 'running' : 'NOT RUNNING'}: ${s.san.iqn} LUN ${s.san.lun} at ${s.san.portal} from ${s.san.image}`);
  }
  return lines.join('\n');
}
