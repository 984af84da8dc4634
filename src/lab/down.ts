/**
 * Remove everything a lab made: processes, mounts, loop devices, namespaces, veths, files. It
 * finds them by the lab's name prefix and directory, not by a record of what `up` made, so it
 * also clears the remains of a lab that crashed half-way (which is what `up` uses it for).
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runRaw, sleep, waitFor } from './exec.js';
import { labNetns, linkExists, netnsPids } from './netns.js';
import { loopsUnder } from './disks.js';
import { labsRoot, LAB_NAME_RE } from './plan.js';
import { BatonError, ExitCode } from '../util/errors.js';

export interface DownReport {
  name: string;
  killed: number;
  netns: string[];
  loops: string[];
  veth?: string;
  dir?: string;
  problems: string[];
}

async function ancestors(): Promise<Set<number>> {
  const out = new Set<number>([process.pid]);
  let pid = process.pid;
  for (let i = 0; i < 64 && pid > 1; i++) {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      out.add(pid);
    } catch {
      break;
    }
  }
  return out;
}

/** Host pids of processes whose command line names a file of the lab (ipmi_sim, node holders). */
async function pidsUsingDir(dir: string): Promise<number[]> {
  const needle = `${dir}/`;
  const skip = await ancestors();
  const out: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (skip.has(pid)) continue;
    try {
      const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8');
      if (cmd.includes(needle)) out.push(pid);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Alive and not a zombie (a zombie waits for a parent that may be slow to reap it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Host mount points whose source is one of `devices` (a disk mounted on the host by hand). */
async function hostMountsOf(devices: string[]): Promise<string[]> {
  const mi = await readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of mi.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const source = right.split(' ')[1];
    if (source && devices.includes(source)) out.push(left.split(' ')[4]!.replace(/\\040/g, ' '));
  }
  return out;
}

export async function teardown(name: string): Promise<DownReport> {
  if (!LAB_NAME_RE.test(name)) throw new BatonError(`lab down: invalid lab name ${JSON.stringify(name)}; nothing was changed`, ExitCode.INVALID);
  const dir = path.join(labsRoot(), name);
  const prefix = `baton-${name}-`;
  const report: DownReport = { name, killed: 0, netns: [], loops: [], problems: [] };

  // 1. Processes: everything in the lab's namespaces (nodes, clients, anything run there with
  //    `ip netns exec`) and everything in the host namespace started from the lab dir (BMCs).
  const namespaces = await labNetns(prefix);
  const victims = new Set<number>(await pidsUsingDir(dir));
  for (const ns of namespaces) for (const p of await netnsPids(ns)) victims.add(p);
  for (const p of victims) {
    try {
      process.kill(p, 'SIGKILL');
      report.killed++;
    } catch {
      /* already gone */
    }
  }
  const gone = await waitFor(() => [...victims].every((p) => !alive(p)), 5000, 50);
  if (!gone) report.problems.push(`processes still alive after SIGKILL: ${[...victims].filter(alive).join(' ')}`);

  // 2. Loop devices: a node's mounts die with its mount namespace and autoclear releases the
  //    loop; wait a moment for that, then detach any that a host-side mount or losetup kept.
  await waitFor(async () => (await loopsUnder(dir)).length === 0, 2000, 50);
  for (const loop of await loopsUnder(dir)) {
    for (const mp of await hostMountsOf([loop.device])) {
      const r = await runRaw(['umount', '-l', mp]);
      if (r.code !== 0) report.problems.push(`\`umount -l ${mp}\` (${loop.device}) exited ${r.code}: ${r.stderr.trim()}`);
    }
    const r = await runRaw(['losetup', '-d', loop.device]);
    if (r.code !== 0) report.problems.push(`\`losetup -d ${loop.device}\` (${loop.backingFile}) exited ${r.code}: ${r.stderr.trim()}`);
    report.loops.push(loop.device);
  }

  // 3. Namespaces (deleting the switch takes the bridge and the veth peers with it), then the
  //    controller veth if it is still there.
  for (const ns of namespaces) {
    const r = await runRaw(['ip', 'netns', 'del', ns]);
    if (r.code !== 0) report.problems.push(`\`ip netns del ${ns}\` exited ${r.code}: ${r.stderr.trim()}`);
    else report.netns.push(ns);
  }
  const veth = `bt-${name}`;
  if (await linkExists(veth)) {
    const r = await runRaw(['ip', 'link', 'del', veth]);
    // The switch namespace's deletion takes the veth's peer, and the kernel removes the veth
    // itself a moment later: gone between the check and the del is what we want.
    if (r.code !== 0 && !/Cannot find device/i.test(r.stderr)) report.problems.push(`\`ip link del ${veth}\` exited ${r.code}: ${r.stderr.trim()}`);
    else report.veth = veth;
  }

  // 4. Files, last: a failure above leaves the pid files and configs to look at.
  if (report.problems.length === 0) {
    for (let i = 0; i < 3; i++) {
      try {
        await rm(dir, { recursive: true, force: true });
        report.dir = dir;
        break;
      } catch (e) {
        if (i === 2) report.problems.push(`could not remove ${dir}: ${(e as Error).message}`);
        await sleep(100);
      }
    }
  }
  return report;
}

export async function labDown(name: string): Promise<DownReport> {
  const report = await teardown(name);
  if (report.problems.length > 0) {
    throw new BatonError(
      `lab down ${name}: could not remove everything:\n  ${report.problems.join('\n  ')}\nbaton: left ${dir(name)} in place; run \`baton lab down --name ${name}\` again`,
      ExitCode.FAILED_NOT_ROLLED_BACK,
    );
  }
  return report;
}

function dir(name: string): string {
  return path.join(labsRoot(), name);
}
