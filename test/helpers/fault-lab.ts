/**
 * Acting on lab nodes from the controller's side, for the fault suite and the soak: the faults
 * themselves (power off, kill or stop the node's sshd sessions, link down, stop a daemon) and
 * the repairs an operator makes afterwards (power on, link up, continue what was stopped), plus
 * a direct reset of the NFS service that does not depend on baton working.
 */
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { nodeFiles, nodePower, waitBooted } from '../../src/lab/node.js';
import type { Lab } from './lab.js';
import { nodeInitPid, readTruth, SERVICE_MOUNT } from './invariants.js';

const execFileP = promisify(execFile);

async function sh(argv: string[], timeoutMs = 10_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await execFileP(argv[0]!, argv.slice(1), { timeout: timeoutMs });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

const planOf = (lab: Lab, node: string) => {
  const p = lab.plan.nodes.find((n) => n.name === node);
  if (!p) throw new Error(`lab ${lab.name} has no node ${node}`);
  return p;
};

interface Proc {
  pid: number;
  ppid: number;
  comm: string;
}

function procOf(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: it ends at the last ')'.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    return { pid, ppid, comm };
  } catch {
    return undefined;
  }
}

/** Every process of a node (its network namespace holds exactly the node's processes). */
export async function nodeProcs(lab: Lab, node: string): Promise<Proc[]> {
  const r = await sh(['ip', 'netns', 'pids', planOf(lab, node).netns]);
  return r.stdout
    .split('\n')
    .filter((l) => /^\d+$/.test(l.trim()))
    .map((l) => procOf(Number(l)))
    .filter((p): p is Proc => p !== undefined);
}

/** The sshd processes serving connections (baton's), not the listener. */
export async function sshSessionPids(lab: Lab, node: string): Promise<number[]> {
  const init = nodeInitPid(lab, node);
  const procs = await nodeProcs(lab, node);
  const listeners = procs.filter((p) => p.comm === 'sshd' && p.ppid === init).map((p) => p.pid);
  return procs.filter((p) => (p.comm === 'sshd' || p.comm.startsWith('sshd-')) && !listeners.includes(p.pid)).map((p) => p.pid);
}

/** Pids of a daemon of a node, by its exact command name (ganesha.nfsd, rpc.statd). */
export async function daemonPids(lab: Lab, node: string, comm: string): Promise<number[]> {
  return (await nodeProcs(lab, node)).filter((p) => p.comm === comm).map((p) => p.pid);
}

/** The pid of a node's BMC (ipmi_sim on the controller), from the pid file the lab wrote. */
export function bmcPid(lab: Lab, node: string): number | undefined {
  const dir = planOf(lab, node).bmc.dir;
  try {
    const pid = Number(readFileSync(`${dir}/ipmi_sim.pid`, 'utf8').trim());
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('ipmi_sim') ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function signal(pids: number[], sig: NodeJS.Signals): number[] {
  const hit: number[] = [];
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
      hit.push(pid);
    } catch {
      // gone already
    }
  }
  return hit;
}

export const powerOff = (lab: Lab, node: string) => nodePower(planOf(lab, node), 'off');

export async function powerOn(lab: Lab, node: string): Promise<void> {
  await nodePower(planOf(lab, node), 'on');
  if (!(await waitBooted(planOf(lab, node)))) throw new Error(`lab ${lab.name}: ${node} powered on but its sshd did not answer within 20 s (see ${planOf(lab, node).dir}/console.log)`);
}

export async function linkSet(lab: Lab, node: string, state: 'up' | 'down'): Promise<void> {
  const r = await sh(['ip', '-n', planOf(lab, node).netns, 'link', 'set', 'eth0', state]);
  if (r.code !== 0) throw new Error(`lab ${lab.name}: ip -n ${planOf(lab, node).netns} link set eth0 ${state} exited ${r.code}: ${r.stderr}`);
}

/**
 * What an operator repairs after a fault, nothing more: every stopped process of the lab
 * continued, every powered-on node's link up, and (unless kept off: a fenced node stays off
 * until someone repairs it) every node powered on. Returns what it did.
 */
export async function heal(lab: Lab, o: { keepOff?: string[] } = {}): Promise<string[]> {
  const did: string[] = [];
  for (const n of lab.nodes) {
    const procs = await nodeProcs(lab, n.name);
    signal(procs.map((p) => p.pid), 'SIGCONT');
    const bmc = bmcPid(lab, n.name);
    if (bmc) signal([bmc], 'SIGCONT');
    const on = nodeInitPid(lab, n.name) !== undefined;
    if (on) {
      const link = await sh(['ip', '-n', n.netns, '-o', 'link', 'show', 'eth0']);
      if (!/state UP|,UP/.test(link.stdout)) {
        await linkSet(lab, n.name, 'up');
        did.push(`link of ${n.name} up`);
      }
    } else if (!o.keepOff?.includes(n.name)) {
      await powerOn(lab, n.name);
      did.push(`${n.name} powered on`);
    }
  }
  return did;
}

/**
 * Take the NFS service down everywhere without baton, so a case that broke the lab cannot break
 * the next one: every node power-cycled (a fresh boot holds nothing: no VIP, mount, export or
 * loop device; it is also the only sure way to let go of a file system a daemon still holds
 * open after a lazy unmount), then any loop device of the disk no node claims detached, and the
 * nodes' empty mount points emptied of what was written into them while nothing was mounted.
 */
export async function teardownService(lab: Lab): Promise<void> {
  for (const n of lab.nodes) await powerOff(lab, n.name);
  const t = await readTruth(lab);
  for (const dev of t.loops) await sh(['losetup', '-d', dev]);
  for (const n of lab.nodes) {
    const dir = `${nodeFiles(planOf(lab, n.name)).srv}${SERVICE_MOUNT.slice('/srv'.length)}`;
    try {
      for (const f of readdirSync(dir)) await sh(['rm', '-rf', '--', `${dir}/${f}`]);
    } catch {
      // no such directory yet
    }
  }
  for (const n of lab.nodes) await powerOn(lab, n.name);
}

const SPLIT_BRAIN = `IMG=$1 VIP=$2 CLAIMS=$3 MNT=$4
set -e
ip addr add "$VIP/24" dev eth0
dev=$(losetup --find --show "$IMG")
mkdir -p "$CLAIMS" && printf '%s\\n' "$IMG" > "$CLAIMS/\${dev#/dev/}"
# Read-only without journal replay: the image is mounted on the holder too, and must not be harmed.
mount -o ro,noload "$dev" "$MNT"
echo "$dev"`;

/**
 * Make the split brain the checker must see, by hand: on `node` (not the holder) the VIP, a loop
 * device of the disk claimed and mounted read-only. Only for proving the checker; the lab is
 * reset afterwards (teardownService).
 */
export async function makeSplitBrain(lab: Lab, node: string): Promise<void> {
  const init = nodeInitPid(lab, node);
  if (init === undefined) throw new Error(`${node} is off`);
  const r = await sh(['nsenter', '-t', String(init), '-m', '-n', '-p', '--', 'sh', '-c', SPLIT_BRAIN, 'split', lab.disks[0]!, lab.vip, '/run/baton/loop', SERVICE_MOUNT]);
  if (r.code !== 0) throw new Error(`making a split brain on ${node} failed (exit ${r.code}): ${r.stderr.trim()}`);
}

const EXPORT_UNMOUNTED = `CONF=$1 DIR=$2
printf 'EXPORT { Export_Id = 102; Path = %s; Pseudo = /checker; Protocols = 4; Access_Type = RO; SecType = sys; FSAL { Name = VFS; } }\\n' "$DIR" > "$CONF"
dbus-send --system --print-reply --reply-timeout=5000 --dest=org.ganesha.nfsd /org/ganesha/nfsd/ExportMgr \\
  org.ganesha.nfsd.exportmgr.AddExport "string:$CONF" 'string:EXPORT(Export_ID=102)'`;

/** Export a path of `node` over Ganesha (id 102) whatever is mounted there: for proving the checker. */
export async function exportAnyway(lab: Lab, node: string, dir: string): Promise<void> {
  const init = nodeInitPid(lab, node);
  if (init === undefined) throw new Error(`${node} is off`);
  const r = await sh(['nsenter', '-t', String(init), '-m', '-n', '-p', '--', 'sh', '-c', EXPORT_UNMOUNTED, 'export', '/run/ganesha/checker-export.conf', dir]);
  if (r.code !== 0) throw new Error(`exporting ${dir} on ${node} failed (exit ${r.code}): ${r.stderr.trim()} ${r.stdout.trim()}`);
}
