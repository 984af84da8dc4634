/**
 * `baton lab up --san`: a separate "SAN" namespace on the lab's switch whose own tgtd serves
 * one shared LUN to every node, the ground for SCSI reservation fencing (provider scsi-pr).
 * The nodes' own disks and targets stay as they are.
 *
 * tgtd runs in the SAN's network namespace and in a mount namespace of its own with a private
 * tmpfs on /run, so its control socket (/run/tgtd/socket.0) is the SAN's alone and vanishes
 * with it: it never meets a node's tgtd, a test's tgtd or one on the host. `lab down` kills it
 * with the namespace's processes and removes the namespace (its name has the lab's prefix) and
 * the image (in the lab dir).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { cp, mkdir, open, writeFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { LabError, run, runRaw, waitFor } from './exec.js';
import { plugNetns, setAddressUp } from './netns.js';
import type { LabPlan } from './plan.js';
import { SCSI_PR_AGENT } from '../steps/fence/scsi-pr-protocol.js';

export interface SanPlan {
  name: 'san';
  netns: string;
  switchPort: string;
  address: string;
  mac: string;
  dir: string;
  image: string;
  iqn: string;
  lun: 1;
  /** "ADDRESS:3260", what the inventory's scsi_pr_portal says. */
  portal: string;
  scsiId: string;
  scsiSn: string;
}

/** Size of the shared LUN: reservations need a LUN, not room. */
const SAN_MIB = 16;

export function sanOf(plan: LabPlan): SanPlan {
  const net = plan.network.replace(/\.0$/, '');
  const dir = path.join(plan.dir, 'san');
  // .250: clear of the nodes (.11-), clients (.101-) and group VIPs (.200-.207).
  const address = `${net}.250`;
  const [, , second, third] = net.split('.').map(Number) as [number, number, number, number];
  const hex2 = (n: number) => n.toString(16).padStart(2, '0');
  return {
    name: 'san',
    netns: `${plan.prefix}san`,
    switchPort: 'san',
    address,
    mac: `02:ba:${hex2(second ?? 0)}:${hex2(third ?? 0)}:03:01`,
    dir,
    image: path.join(dir, 'shared.img'),
    iqn: `iqn.2026-11.dev.baton.lab:${plan.spec.name}.san`,
    lun: 1,
    portal: `${address}:3260`,
    scsiId: `ba7052${hex2(third ?? 0)}01`,
    scsiSn: `BATONSAN${hex2(third ?? 0)}01`,
  };
}

function pidFile(s: SanPlan): string {
  return path.join(s.dir, 'tgtd.pid');
}

/** The SAN tgtd's pid if it runs (its command line names the SAN's portal). */
export async function sanPid(s: SanPlan): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(pidFile(s), 'utf8')).trim());
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes(`portal=${s.portal}`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** tgtadm in the SAN tgtd's mount namespace (where its control socket is). */
function tgtadmArgv(pid: number, args: string[]): string[] {
  return ['nsenter', '--target', String(pid), '--mount', 'tgtadm', '--lld', 'iscsi', ...args];
}

export async function makeSan(plan: LabPlan): Promise<SanPlan> {
  const s = sanOf(plan);
  const where = 'SAN namespace';
  const onFailure = `stopped building the lab; run \`baton lab down --name ${plan.spec.name}\` to clear what was made`;
  await mkdir(s.dir, { recursive: true });
  await copyAgent(s);
  if (!existsSync(s.image)) {
    const fh = await open(s.image, 'w');
    await fh.truncate(SAN_MIB * 1024 * 1024);
    await fh.close();
  }
  await plugNetns(plan, s, where);
  await setAddressUp(s.netns, s.address, plan.prefixLength, where);

  const log = openSync(path.join(s.dir, 'tgtd.log'), 'a');
  let pid: number;
  try {
    // The shell text is fixed; tgtd and its arguments come in as "$@", never as shell code.
    const child = spawn(
      'ip',
      ['netns', 'exec', s.netns, 'unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount -t tmpfs -o mode=0755 san-run /run && mkdir -p /run/tgtd && exec "$@"', 'sh', 'tgtd', '-f', '--iscsi', `portal=${s.portal}`],
      { detached: true, stdio: ['ignore', log, log] },
    );
    if (!child.pid) throw new LabError(`SAN: could not start tgtd; see ${path.join(s.dir, 'tgtd.log')}`);
    child.unref();
    pid = child.pid;
    await writeFile(pidFile(s), `${pid}\n`);
  } finally {
    closeSync(log);
  }
  // `ip netns exec`, unshare and sh each exec the next: the pid is tgtd's once it answers.
  const up = await waitFor(async () => (await runRaw(tgtadmArgv(pid, ['--op', 'show', '--mode', 'target']), { timeoutMs: 2000 })).code === 0, 10_000, 100);
  if (!up) throw new LabError(`SAN: tgtd (pid ${pid}) in ${s.netns} does not answer tgtadm within 10 s; see ${path.join(s.dir, 'tgtd.log')}\nbaton: ${onFailure}`);
  const o = { where: `SAN tgtd in ${s.netns}`, onFailure };
  await run(tgtadmArgv(pid, ['--op', 'new', '--mode', 'target', '--tid', '1', '--targetname', s.iqn]), o);
  await run(tgtadmArgv(pid, ['--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', String(s.lun), '--backing-store', s.image]), o);
  await run(tgtadmArgv(pid, ['--op', 'update', '--mode', 'logicalunit', '--tid', '1', '--lun', String(s.lun), '--params', `scsi_id=${s.scsiId},scsi_sn=${s.scsiSn}`]), o);
  // Every node may log in: the portal listens on the lab's own network only.
  await run(tgtadmArgv(pid, ['--op', 'bind', '--mode', 'target', '--tid', '1', '--initiator-address', 'ALL']), o);
  return s;
}

/** Inventory vars that point the scsi-pr provider at the SAN's LUN. */
export function sanInventoryVars(plan: LabPlan): Record<string, unknown> {
  const s = sanOf(plan);
  return { scsi_pr_portal: s.portal, scsi_pr_iqn: s.iqn, scsi_pr_lun: s.lun, scsi_pr_agent_command: [process.execPath, agentCopyOf(s)] };
}

/**
 * The PR agent runs on the nodes (its I_T nexus must be the node's). A lab node sees the
 * controller's filesystem but for its private /tmp, /run and /root, where a clone of baton may
 * well be: the lab keeps a copy of baton's built modules in its own directory, which every node
 * sees, and the inventory names the agent there.
 */
const agentCopyOf = (s: SanPlan): string => path.join(s.dir, 'baton', 'steps', 'fence', path.basename(SCSI_PR_AGENT));
/** baton's built modules, the tree the agent is in (scriptPath: dist/ also when the lab is driven from the sources, the tests). */
const BATON_DIST = path.resolve(path.dirname(SCSI_PR_AGENT), '..', '..');

async function copyAgent(s: SanPlan): Promise<void> {
  await cp(BATON_DIST, path.join(s.dir, 'baton'), { recursive: true, filter: (src) => !src.endsWith('.map') });
}
