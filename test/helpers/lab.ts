/**
 * The lab for tests: `startLab()` builds a lab with baton's own lab code and returns handles to
 * reach its nodes (real OpenSSH, strict host key checking), its clients (`ip netns exec`) and its
 * BMCs (real ipmitool). Every lab test file calls `requireRoot()` in beforeAll and
 * `lab.down()` in afterAll; give each file its own lab name and /24 (files run in parallel).
 *
 *   198.18.10.0/24  test/lab/lab.test.ts   (198.18.11.0/24: its side-by-side second lab)
 *   198.18.20.0/24 … for later files
 */
import { labUp, type UpResult } from '../../src/lab/up.js';
import { BatonError, ExitCode } from '../../src/util/errors.js';
import { teardown, type DownReport } from '../../src/lab/down.js';

/** Tear the lab down; once more after half a second if something resisted (a process still exiting); then throw. */
async function downOrThrow(name: string): Promise<DownReport> {
  const first = await teardown(name);
  if (first.problems.length === 0) return first;
  await new Promise((r) => setTimeout(r, 500));
  const again = await teardown(name);
  if (again.problems.length === 0) return again;
  throw new Error(`lab ${name} was not removed whole (the test left something behind):\n  ${again.problems.join('\n  ')}\nfirst attempt:\n  ${first.problems.join('\n  ')}`);
}
import { labStatus, type LabStatus } from '../../src/lab/status.js';
import { ipmitoolArgv } from '../../src/lab/bmc.js';
import { runRaw, shq, waitFor, type RunResult } from '../../src/lab/exec.js';
import type { ClientPlan, LabPlan, NodePlan } from '../../src/lab/plan.js';
import { tcpOpen } from '../../src/lab/node.js';

export type { RunResult };

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('lab tests need root: run as root (CI does)');
}

export interface LabNode {
  name: string;
  address: string;
  mac: string;
  netns: string;
  bmc: { address: string; port: number; user: string; password: string };
}

export interface LabClient {
  name: string;
  address: string;
  netns: string;
}

export interface Lab {
  name: string;
  subnet: string;
  dir: string;
  inventoryPath: string;
  knownHostsFile: string;
  keyFile: string;
  /** An unused address of the lab's /24, for a VIP. */
  vip: string;
  /** Shared ext4 images; node mount points are /srv/disk1, /srv/disk2, … */
  disks: string[];
  nodes: LabNode[];
  clients: LabClient[];
  /** How long `up` took, in ms. */
  upMs: number;
  plan: LabPlan;
  node(name: string): LabNode;
  /** The OpenSSH argv (strict host key checking, the lab's key) to run argv on a node. */
  sshArgv(node: string | LabNode, argv: string[]): string[];
  /** Run argv on a node over SSH; never throws on a non-zero exit. */
  sshExec(node: string | LabNode, argv: string[], opts?: { timeoutMs?: number; input?: string }): Promise<RunResult>;
  /** Like sshExec, but throws (with the node, command and stderr) unless it exits 0; returns stdout. */
  sshOk(node: string | LabNode, argv: string[], opts?: { timeoutMs?: number; input?: string }): Promise<string>;
  /** Run argv in a client's network namespace. */
  clientExec(client: string | LabClient, argv: string[], opts?: { timeoutMs?: number }): Promise<RunResult>;
  /** The ipmitool argv for a node's BMC (password with -P, as a user would type it). */
  ipmitoolArgv(node: string | LabNode, command: string[]): string[];
  /** `chassis power on|off|status` through the node's BMC; `on` waits until SSH answers. */
  power(node: string | LabNode, action: 'on' | 'off' | 'status'): Promise<string>;
  /** Wait until the node's sshd answers (true) or the time is up (false). */
  waitSsh(node: string | LabNode, timeoutMs?: number): Promise<boolean>;
  status(): Promise<LabStatus>;
  /**
   * Remove the lab; safe to call twice. Throws, naming what is left, when a second teardown
   * still cannot remove everything (a process, mount, loop device or namespace left behind is a
   * test failure, not a note in a report nobody reads).
   */
  down(): Promise<DownReport>;
}

export interface StartLabOptions {
  name: string;
  subnet: string;
  nodes?: number;
  clients?: number;
  disks?: number;
  diskMiB?: number;
  /** `lab up --groups N`: N service groups in the inventory (baton_services). */
  groups?: number;
  /** `lab up --failover-nics N`: N spare interfaces per node; groups 1..N get a failover MAC. */
  failoverNics?: number;
  /** `lab up --san`: a SAN namespace serving one shared LUN (scsi_pr_* inventory vars). */
  san?: boolean;
  /** `lab up --iscsi-groups N`: N iSCSI service groups beside them. */
  iscsiGroups?: number;
}

function toNode(n: NodePlan): LabNode {
  return { name: n.name, address: n.address, mac: n.mac, netns: n.netns, bmc: { ...n.bmc } };
}

function toClient(c: ClientPlan): LabClient {
  return { name: c.name, address: c.address, netns: c.netns };
}

export async function startLab(opts: StartLabOptions): Promise<Lab & { up: UpResult }> {
  requireRoot();
  let up: UpResult;
  try {
    up = await labUp({
      name: opts.name,
      subnet: opts.subnet,
      nodes: opts.nodes ?? 2,
      clients: opts.clients ?? 1,
      disks: opts.disks ?? 2,
      diskMiB: opts.diskMiB ?? 64,
      ...(opts.groups ? { groups: opts.groups } : {}),
      ...(opts.failoverNics ? { failoverNics: opts.failoverNics } : {}),
      ...(opts.san ? { san: true } : {}),
      ...(opts.iscsiGroups ? { iscsiGroups: opts.iscsiGroups } : {}),
    });
  } catch (e) {
    // A refusal (subnet taken, a lab of that name running with another spec) made nothing, and
    // tearing down would destroy somebody else's running lab: only clear after a real failure.
    const refused = e instanceof BatonError && e.exitCode === ExitCode.INVALID;
    // The caller gets no handle to call down() on: clear what the failed up made here.
    if (!refused) await teardown(opts.name).catch(() => undefined);
    throw e;
  }
  const plan = up.plan;
  const nodes = plan.nodes.map(toNode);
  const clients = plan.clients.map(toClient);
  const nodeOf = (n: string | LabNode): LabNode => {
    if (typeof n !== 'string') return n;
    const found = nodes.find((x) => x.name === n);
    if (!found) throw new Error(`lab ${plan.spec.name} has no node ${n}`);
    return found;
  };
  const clientOf = (c: string | LabClient): LabClient => {
    if (typeof c !== 'string') return c;
    const found = clients.find((x) => x.name === c);
    if (!found) throw new Error(`lab ${plan.spec.name} has no client ${c}`);
    return found;
  };
  const sshArgv = (node: string | LabNode, argv: string[]) => [
    'ssh',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${plan.knownHostsFile}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'ConnectTimeout=3',
    '-o', 'LogLevel=ERROR',
    '-i', plan.keyFile,
    '-l', 'root',
    nodeOf(node).address,
    '--',
    // ssh hands the remote shell one string: quote each argument so it arrives as it was.
    argv.map(shq).join(' '),
  ];
  const sshExec: Lab['sshExec'] = (node, argv, o = {}) => runRaw(sshArgv(node, argv), { timeoutMs: o.timeoutMs ?? 30_000, input: o.input });
  const lab: Lab = {
    name: plan.spec.name,
    subnet: plan.spec.subnet,
    dir: plan.dir,
    inventoryPath: up.inventoryPath,
    knownHostsFile: plan.knownHostsFile,
    keyFile: plan.keyFile,
    vip: plan.vip,
    disks: plan.disks,
    nodes,
    clients,
    upMs: up.ms,
    plan,
    node: (name) => nodeOf(name),
    sshArgv,
    sshExec,
    async sshOk(node, argv, o) {
      const r = await sshExec(node, argv, o);
      if (r.code !== 0) throw new Error(`on ${nodeOf(node).name}: \`${argv.join(' ')}\` exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
      return r.stdout;
    },
    clientExec: (client, argv, o = {}) => runRaw(['ip', 'netns', 'exec', clientOf(client).netns, ...argv], { timeoutMs: o.timeoutMs ?? 30_000 }),
    ipmitoolArgv(node, command) {
      const n = nodeOf(node);
      return ipmitoolArgv(plan.nodes.find((p) => p.name === n.name)!, command).flatMap((a) => (a === '-E' ? ['-P', n.bmc.password] : [a]));
    },
    async power(node, action) {
      const n = nodeOf(node);
      const r = await runRaw(lab.ipmitoolArgv(n, ['chassis', 'power', action]), { timeoutMs: 20_000 });
      if (r.code !== 0) throw new Error(`BMC of ${n.name}: ipmitool chassis power ${action} exited ${r.code}: ${r.stderr.trim()}`);
      if (action === 'on' && !(await lab.waitSsh(n))) throw new Error(`${n.name}: powered on but sshd did not answer within 20 s`);
      return r.stdout.trim();
    },
    waitSsh: (node, timeoutMs = 20_000) => waitFor(() => tcpOpen(nodeOf(node).address, 22), timeoutMs, 50),
    status: () => labStatus(plan),
    down: () => downOrThrow(plan.spec.name),
  };
  return Object.assign(lab, { up });
}
