/**
 * The invariant checker of the fault suite and the soak: what is REALLY true on every lab node,
 * read from the controller's side of the namespaces (the node's PID 1 through /proc and nsenter,
 * `ip -n`), never through baton and never over the node's sshd, so a node whose sshd was killed
 * or stopped is still seen as it is.
 *
 * "Attached on node X" is the lab's and src/facts/storage.ts's definition: loop devices belong to
 * the kernel all lab nodes share, so a node holds a device when the kernel shows it backed by
 * the image AND the node recorded a claim for it in its private /run/baton/loop.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { LOOP_CLAIM_DIR, parseLosetupJson, parseMountinfo, type LoopDevice } from '../../src/facts/storage.js';
import { nodeFiles } from '../../src/lab/node.js';
import type { Lab } from './lab.js';

const execFileP = promisify(execFile);

/** The service's mount point and export, as roles/volume and roles/nfs-export define them. */
export const SERVICE_MOUNT = '/srv/disk1';
export const SERVICE_PSEUDO = '/disk1';

export interface DiskMount {
  mountPoint: string;
  source: string;
}

export interface NodeTruth {
  name: string;
  /** The node's PID 1 runs (powered on). */
  on: boolean;
  /** Host pid of the node's PID 1 (its namespaces), when on. */
  initPid?: number;
  /** IPv4 addresses on eth0 (CIDR), read with `ip -n` (a powered-off node has none). */
  addresses: string[];
  holdsVip: boolean;
  /** Loop devices backed by the image that this node claimed. */
  attached: string[];
  /** Mounts in this node's mount namespace whose source is a loop device backed by the image. */
  mounted: DiskMount[];
  /** Ganesha's exports (id 0, the NFSv4 pseudo root, left out); undefined when unreadable. */
  exports?: Array<{ id: number; path: string }>;
  /** Why the exports could not be read (Ganesha stopped, bus gone…). */
  exportsError?: string;
  /** An NFS server (ganesha.nfsd) runs on the node: without one it cannot take the service. */
  nfsServer: boolean;
}

export interface ClusterTruth {
  at: number;
  nodes: NodeTruth[];
  /** Every loop device backed by the image (the shared kernel's view). */
  loops: string[];
  /** Loop devices of the image no running node claims: leaked (no node can release them). */
  orphans: string[];
}

export interface Violation {
  invariant: 'vip-on-two-nodes' | 'disk-attached-on-two-nodes' | 'disk-mounted-on-two-nodes' | 'exported-where-not-mounted' | 'exports-unreadable' | 'journal-unreadable';
  detail: string;
}

async function sh(argv: string[], timeoutMs = 5000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await execFileP(argv[0]!, argv.slice(1), { timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string; killed?: boolean };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: (err.stderr ?? '') + (err.killed ? ' (timed out)' : '') };
  }
}

/** Host pid of a lab node's PID 1, or undefined when the node is powered off. */
export function nodeInitPid(lab: Lab, node: string): number | undefined {
  const plan = lab.plan.nodes.find((n) => n.name === node);
  if (!plan) throw new Error(`lab ${lab.name} has no node ${node}`);
  const f = nodeFiles(plan);
  let holder: number;
  try {
    holder = Number(readFileSync(f.holderPid, 'utf8').trim());
    // The power script's own test: the pid is the unshare that runs this node's INIT.
    if (!readFileSync(`/proc/${holder}/cmdline`, 'utf8').includes(f.init)) return undefined;
  } catch {
    return undefined;
  }
  try {
    const kids = readFileSync(`/proc/${holder}/task/${holder}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return kids.length ? Number(kids[0]) : undefined;
  } catch {
    return undefined;
  }
}

/** `ShowExports` answers an array of structs that open with (uint16 id, string path). */
export function parseShowExports(stdout: string): Array<{ id: number; path: string }> {
  const out: Array<{ id: number; path: string }> = [];
  const re = /struct \{\s*uint16 (\d+)\s*string "([^"]*)"/g;
  for (const m of stdout.matchAll(re)) out.push({ id: Number(m[1]), path: m[2]! });
  return out;
}

async function readExports(initPid: number): Promise<{ exports?: Array<{ id: number; path: string }>; error?: string }> {
  // The node's bus socket is in its private /run: enter its mount namespace only. A bound
  // reply timeout: a stopped Ganesha must not stop the checker.
  const r = await sh(
    [
      'nsenter', '-t', String(initPid), '-m', '--',
      'dbus-send', '--system', '--print-reply', '--reply-timeout=3000', '--dest=org.ganesha.nfsd',
      '/org/ganesha/nfsd/ExportMgr', 'org.ganesha.nfsd.exportmgr.ShowExports',
    ],
    6000,
  );
  if (r.code === 0) return { exports: parseShowExports(r.stdout).filter((e) => e.id !== 0) };
  // No Ganesha on the bus (it died, or the node is booting): it exports nothing.
  if (/ServiceUnknown|NameHasNoOwner|was not provided by any \.service/.test(r.stderr)) return { exports: [] };
  return { error: `ShowExports exited ${r.code}: ${r.stderr.trim()}` };
}

async function readLoops(image: string): Promise<LoopDevice[]> {
  const r = await sh(['losetup', '--list', '--json', '--output', 'NAME,BACK-FILE']);
  if (r.code !== 0) throw new Error(`losetup --list on the controller exited ${r.code}: ${r.stderr}`);
  return parseLosetupJson(r.stdout).filter((d) => d.backFile === image);
}

export async function readNode(lab: Lab, node: string, imageLoops: string[], image: string): Promise<NodeTruth> {
  const plan = lab.plan.nodes.find((n) => n.name === node)!;
  const addr = await sh(['ip', '-n', plan.netns, '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
  const addresses = [...addr.stdout.matchAll(/inet (\S+)/g)].map((m) => m[1]!);
  const initPid = nodeInitPid(lab, node);
  const truth: NodeTruth = {
    name: node,
    on: initPid !== undefined,
    initPid,
    addresses,
    holdsVip: addresses.some((a) => a.split('/')[0] === lab.vip),
    attached: [],
    mounted: [],
    exports: [],
    nfsServer: false,
  };
  if (initPid === undefined) return truth;
  // The node's network namespace holds exactly the node's processes.
  const pids = await sh(['ip', 'netns', 'pids', plan.netns]);
  truth.nfsServer = pids.stdout.split('\n').some((pid) => {
    try {
      return /^\d+$/.test(pid.trim()) && readFileSync(`/proc/${pid.trim()}/comm`, 'utf8').trim() === 'ganesha.nfsd';
    } catch {
      return false;
    }
  });
  const claimDir = `/proc/${initPid}/root${LOOP_CLAIM_DIR}`;
  if (existsSync(claimDir)) {
    for (const f of readdirSync(claimDir)) {
      let claimed = '';
      try {
        claimed = readFileSync(path.join(claimDir, f), 'utf8').trim();
      } catch {
        continue;
      }
      if (claimed === image && imageLoops.includes(`/dev/${f}`)) truth.attached.push(`/dev/${f}`);
    }
  }
  try {
    const mounts = parseMountinfo(readFileSync(`/proc/${initPid}/mountinfo`, 'utf8'));
    truth.mounted = mounts.filter((m) => imageLoops.includes(m.source)).map((m) => ({ mountPoint: m.mountPoint, source: m.source }));
  } catch {
    // The node died between the two reads: it holds nothing.
    return { ...truth, on: false, initPid: undefined, attached: [] };
  }
  let ex = await readExports(initPid);
  if (ex.error) {
    // A node being powered off (a fence a killed controller had started goes on in its BMC)
    // loses its bus before its PID 1: look again once it had time to finish either way.
    await new Promise((r) => setTimeout(r, 500));
    if (nodeInitPid(lab, node) !== initPid) return { ...truth, on: false, initPid: undefined, attached: [], mounted: [] };
    ex = await readExports(initPid);
  }
  truth.exports = ex.exports;
  truth.exportsError = ex.error;
  return truth;
}

/** Read every node of the lab, as it is now. */
export async function readTruth(lab: Lab, image = lab.disks[0]!): Promise<ClusterTruth> {
  const loops = (await readLoops(image)).map((d) => d.name);
  const nodes = await Promise.all(lab.nodes.map((n) => readNode(lab, n.name, loops, image)));
  const claimed = new Set(nodes.flatMap((n) => n.attached));
  const mountedSomewhere = new Set(nodes.flatMap((n) => n.mounted.map((m) => m.source)));
  return { at: Date.now(), nodes, loops, orphans: loops.filter((l) => !claimed.has(l) && !mountedSomewhere.has(l)) };
}

/** Safety: what must hold at every moment, whatever baton said (split brain and its kin). */
export function safetyViolations(t: ClusterTruth): Violation[] {
  const v: Violation[] = [];
  const vip = t.nodes.filter((n) => n.holdsVip).map((n) => n.name);
  if (vip.length > 1) v.push({ invariant: 'vip-on-two-nodes', detail: `the VIP is on ${vip.join(' and ')}` });
  const attached = t.nodes.filter((n) => n.attached.length).map((n) => `${n.name} (${n.attached.join(',')})`);
  if (attached.length > 1) v.push({ invariant: 'disk-attached-on-two-nodes', detail: `the disk is attached on ${attached.join(' and ')}` });
  const mounted = t.nodes.filter((n) => n.mounted.length).map((n) => `${n.name} (${n.mounted.map((m) => `${m.source} on ${m.mountPoint}`).join(',')})`);
  if (mounted.length > 1) v.push({ invariant: 'disk-mounted-on-two-nodes', detail: `the disk is mounted on ${mounted.join(' and ')}` });
  for (const n of t.nodes) {
    if (n.exportsError) v.push({ invariant: 'exports-unreadable', detail: `${n.name}: ${n.exportsError}` });
    for (const e of n.exports ?? []) {
      if (!n.mounted.some((m) => m.mountPoint === e.path)) {
        v.push({ invariant: 'exported-where-not-mounted', detail: `${n.name} exports ${e.path} (id ${e.id}) with the disk not mounted there: clients would see the empty directory underneath` });
      }
    }
  }
  return v;
}

/**
 * Every journal under the state dir reads back: each line a JSON record, the first a run
 * record. A torn LAST line is what a controller killed mid-write leaves and is allowed (listed in
 * `torn`); anything else is a violation.
 */
export function journalViolations(stateDir: string): { violations: Violation[]; torn: string[]; journals: number } {
  const dir = path.join(stateDir, 'runs');
  const violations: Violation[] = [];
  const torn: string[] = [];
  let journals = 0;
  if (!existsSync(dir)) return { violations, torn, journals };
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.jsonl'))) {
    journals++;
    const file = path.join(dir, f);
    const lines = readFileSync(file, 'utf8').split('\n');
    if (lines.at(-1) === '') lines.pop();
    lines.forEach((line, i) => {
      let rec: { t?: unknown } | undefined;
      try {
        rec = JSON.parse(line) as { t?: unknown };
      } catch {
        if (i === lines.length - 1) torn.push(`${f}:${i + 1}`);
        else violations.push({ invariant: 'journal-unreadable', detail: `${f} line ${i + 1} is not a JSON record: ${line.slice(0, 80)}` });
        return;
      }
      if (i === 0 && rec?.t !== 'run') violations.push({ invariant: 'journal-unreadable', detail: `${f} does not open with a run record` });
    });
    if (lines.length === 0) violations.push({ invariant: 'journal-unreadable', detail: `${f} is empty` });
  }
  return { violations, torn, journals };
}

/** The client's view: read a file through the VIP from the lab client's netns (libnfs, NFSv4). */
export async function clientRead(lab: Lab, file: string, timeoutMs = 5_000): Promise<{ ok: boolean; sha256?: string; error?: string }> {
  const ns = lab.clients[0]!.netns;
  try {
    const r = await execFileP('ip', ['netns', 'exec', ns, 'nfs-cat', `nfs://${lab.vip}${file}?version=4`], {
      encoding: 'buffer',
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { ok: true, sha256: createHash('sha256').update(r.stdout).digest('hex') };
  } catch (e) {
    const err = e as { code?: number; stderr?: Buffer; killed?: boolean };
    return { ok: false, error: `nfs-cat exited ${err.code ?? '?'}${err.killed ? ' (timed out)' : ''}: ${err.stderr?.toString().trim() ?? ''}` };
  }
}

/** The MAC the lab client would send to for the VIP (its neighbour entry), if it has a usable one. */
export async function clientNeighbourMac(lab: Lab): Promise<string | undefined> {
  const r = await sh(['ip', '-n', lab.clients[0]!.netns, 'neigh', 'show', lab.vip]);
  const m = /lladdr (\S+) .*?(REACHABLE|STALE|DELAY|PROBE|PERMANENT|NOARP)/.exec(r.stdout);
  return m?.[1]?.toLowerCase();
}

export interface ServiceCheck {
  /** Empty when the service is served by `holder` exactly as a clean run leaves it. */
  problems: string[];
  holder?: string;
}

/**
 * Is the service whole, served by one node only? The VIP, the attached and mounted disk and the
 * export on that node and nowhere else, the client reading `sha256` through the VIP, and the
 * client's ARP entry for the VIP on the holder's MAC (announced: a client with an old entry keeps
 * sending to the old node). `expectHolder`: the node it must be on, when known.
 */
export async function checkService(lab: Lab, t: ClusterTruth, o: { file: string; sha256: string; expectHolder?: string }): Promise<ServiceCheck> {
  const problems: string[] = [];
  const vip = t.nodes.filter((n) => n.holdsVip);
  const holder = vip.length === 1 ? vip[0]! : undefined;
  if (!holder) problems.push(vip.length ? `the VIP is on ${vip.map((n) => n.name).join(' and ')}` : 'no node holds the VIP');
  if (holder && o.expectHolder && holder.name !== o.expectHolder) problems.push(`the service is on ${holder.name}, not on ${o.expectHolder}`);
  if (holder) {
    if (!holder.attached.length) problems.push(`${holder.name} holds the VIP but has not attached the disk`);
    if (!holder.mounted.some((m) => m.mountPoint === SERVICE_MOUNT)) problems.push(`${holder.name} holds the VIP but has not mounted the disk on ${SERVICE_MOUNT}`);
    if (!(holder.exports ?? []).some((e) => e.path === SERVICE_MOUNT)) problems.push(`${holder.name} holds the VIP but does not export ${SERVICE_MOUNT}`);
  }
  for (const n of t.nodes) {
    // A standby whose NFS server is gone cannot take the service over: the pair is degraded.
    if (n.on && !n.nfsServer) problems.push(`${n.name} is on but runs no NFS server (ganesha.nfsd): it cannot serve`);
    if (n === holder) continue;
    if (n.attached.length) problems.push(`${n.name} (not the holder) has the disk attached (${n.attached.join(',')})`);
    if (n.mounted.length) problems.push(`${n.name} (not the holder) has the disk mounted`);
    if ((n.exports ?? []).length) problems.push(`${n.name} (not the holder) exports ${(n.exports ?? []).map((e) => e.path).join(',')}`);
  }
  if (t.orphans.length) problems.push(`loop device(s) of the disk no node holds: ${t.orphans.join(',')}`);
  if (holder) {
    const mac = lab.plan.nodes.find((n) => n.name === holder.name)!.mac.toLowerCase();
    // GARPs go out in the background after the run: give them a moment to land.
    let seen: string | undefined;
    for (let i = 0; i < 20; i++) {
      seen = await clientNeighbourMac(lab);
      if (seen === undefined || seen === mac) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (seen !== undefined && seen !== mac) problems.push(`the client still sends to ${seen} for the VIP, not to ${holder.name} (${mac}): the VIP was not announced`);
    const read = await clientRead(lab, o.file);
    if (!read.ok) problems.push(`the client cannot read ${o.file} through the VIP: ${read.error}`);
    else if (read.sha256 !== o.sha256) problems.push(`the client reads other bytes through the VIP (sha256 ${read.sha256?.slice(0, 12)}…, wrote ${o.sha256.slice(0, 12)}…)`);
  }
  return { problems, holder: holder?.name };
}

/** One line per node, for a failure message. */
export function describeTruth(t: ClusterTruth): string {
  const lines = t.nodes.map((n) => {
    if (!n.on) return `  ${n.name}: off${n.addresses.length ? ` (addresses ${n.addresses.join(',')})` : ''}`;
    const ex = n.exportsError ? `exports ? (${n.exportsError})` : `exports [${(n.exports ?? []).map((e) => e.path).join(',')}]`;
    return `  ${n.name}: ${n.nfsServer ? '' : 'NO NFS SERVER; '}${n.holdsVip ? 'VIP' : 'no VIP'}; attached [${n.attached.join(',')}]; mounted [${n.mounted.map((m) => m.mountPoint).join(',')}]; ${ex}`;
  });
  if (t.orphans.length) lines.push(`  unclaimed loop devices of the disk: ${t.orphans.join(',')}`);
  return lines.join('\n');
}

/**
 * The NSM state number on the shared disk as the node holding it sees it (restart_statd writes
 * a larger one on every takeover: the clients' cue to reclaim their locks), or undefined.
 */
export function statdStateOn(lab: Lab, node: string, stateDir = `${SERVICE_MOUNT}/.nfs-statd`): number | undefined {
  const init = nodeInitPid(lab, node);
  if (init === undefined) return undefined;
  try {
    const b = readFileSync(`/proc/${init}/root${stateDir}/state`);
    return b.length >= 4 ? b.readUInt32LE(0) : undefined;
  } catch {
    return undefined;
  }
}
