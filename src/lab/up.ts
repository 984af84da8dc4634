/**
 * `baton lab up`: switch, nodes (booted, each with sshd, dbus, rpcbind, statd and an
 * export-less Ganesha), clients, shared disks, one BMC per node, then the inventory.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { LabError, run, runRaw } from './exec.js';
import { labNetns, linkExists, makeSwitch, plugFailoverNics, plugNetns, setAddressUp } from './netns.js';
import { knownHostsLine, nodeFiles, nodePower, prepareNode, waitBooted } from './node.js';
import { bmcPid, prepareBmc, startBmc } from './bmc.js';
import { makeDisks } from './disks.js';
import { writeInventory } from './inventory.js';
import { labsRoot, parseSubnet, planLab, type LabPlan, type LabSpec } from './plan.js';
import { loadSpec, sameSpec, saveSpec } from './state.js';
import { teardown } from './down.js';
import { preflight } from './preflight.js';
import { makeSan, sanOf, sanPid } from './san.js';
import { BatonError, ExitCode } from '../util/errors.js';

export interface UpResult {
  plan: LabPlan;
  inventoryPath: string;
  /** The lab was already running as asked: nothing was changed. */
  reused: boolean;
  /** Remains of an earlier lab of that name that were cleared first. */
  cleared: boolean;
  ms: number;
}

/** Is every part `up` makes still there? (A powered-off node is a state of the lab, not damage.) */
export async function labIntact(plan: LabPlan): Promise<boolean> {
  const ns = new Set(await labNetns(plan.prefix));
  if (!ns.has(plan.switchNetns)) return false;
  for (const m of [...plan.nodes, ...plan.clients]) if (!ns.has(m.netns)) return false;
  if (!(await linkExists(plan.controllerIf))) return false;
  for (const n of plan.nodes) if (!(await bmcPid(n))) return false;
  for (const d of plan.disks) if (!existsSync(d)) return false;
  if (plan.spec.san && !(ns.has(sanOf(plan).netns) && (await sanPid(sanOf(plan))))) return false;
  return existsSync(plan.inventoryFile) && existsSync(plan.knownHostsFile);
}

/** Refuse a /24 that another lab or a host interface already uses: traffic would cross. */
async function checkSubnetFree(plan: LabPlan): Promise<void> {
  let others: string[] = [];
  try {
    others = await readdir(labsRoot());
  } catch {
    /* no labs yet */
  }
  for (const other of others) {
    if (other === plan.spec.name) continue;
    const spec = await loadSpec(other);
    if (spec?.subnet === plan.spec.subnet) {
      throw new BatonError(
        `lab up ${plan.spec.name}: subnet ${plan.spec.subnet} is used by lab "${other}"; pick another /24 of 198.18.0.0/15 with --subnet, or \`baton lab down --name ${other}\`; nothing was made`,
        ExitCode.INVALID,
      );
    }
  }
  const { second, third } = parseSubnet(plan.spec.subnet);
  const r = await runRaw(['ip', '-o', '-4', 'addr', 'show']);
  for (const line of r.stdout.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet\s+(\d+)\.(\d+)\.(\d+)\./.exec(line);
    if (!m || m[1] === plan.controllerIf) continue;
    if (m[2] === '198' && Number(m[3]) === second && Number(m[4]) === third) {
      throw new BatonError(
        `lab up ${plan.spec.name}: host interface ${m[1]} already has an address in ${plan.spec.subnet}; pick another /24 with --subnet; nothing was made`,
        ExitCode.INVALID,
      );
    }
  }
}

async function makeKeyPair(plan: LabPlan): Promise<void> {
  if (existsSync(plan.keyFile)) return;
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `baton-lab-${plan.spec.name}`, '-f', plan.keyFile], {
    where: 'lab key pair',
    onFailure: 'stopped building the lab',
  });
}

async function build(plan: LabPlan): Promise<void> {
  await saveSpec(plan);
  await makeKeyPair(plan);
  await makeSwitch(plan);
  await Promise.all([
    makeDisks(plan),
    ...plan.nodes.map(async (n) => {
      await mkdir(n.dir, { recursive: true });
      await Promise.all([plugNetns(plan, n, `node ${n.name}`).then(() => plugFailoverNics(plan, n)), prepareNode(plan, n), prepareBmc(n)]);
    }),
    ...(plan.spec.san ? [makeSan(plan)] : []),
    ...plan.clients.map(async (c) => {
      await mkdir(c.dir, { recursive: true });
      await plugNetns(plan, c, `client ${c.name}`);
      await setAddressUp(c.netns, c.address, plan.prefixLength, `client ${c.name}`);
    }),
  ]);
  const known = await Promise.all(plan.nodes.map(knownHostsLine));
  await writeFile(plan.knownHostsFile, `${known.join('\n')}\n`);
  await Promise.all(
    plan.nodes.map(async (n) => {
      await nodePower(n, 'on');
      await startBmc(n);
    }),
  );
  await Promise.all(
    plan.nodes.map(async (n) => {
      if (!(await waitBooted(n))) {
        throw new LabError(
          `node ${n.name}: sshd on ${n.address}:22 did not answer within 20 s of power on; see ${nodeFiles(n).console}, ${nodeFiles(n).sshdLog} and ${nodeFiles(n).ganeshaLog}\nbaton: stopped; run \`baton lab down --name ${plan.spec.name}\` to clear it`,
        );
      }
    }),
  );
  await writeInventory(plan);
}

export async function labUp(spec: LabSpec): Promise<UpResult> {
  const t0 = performance.now();
  preflight('up');
  const plan = planLab(spec);
  const saved = await loadSpec(spec.name);
  if (saved) {
    if (!sameSpec(saved, spec) && (await labIntact(planLab(saved)))) {
      throw new BatonError(
        `lab up: lab "${spec.name}" is running with ${JSON.stringify(saved)}, not ${JSON.stringify(spec)}; run \`baton lab down --name ${spec.name}\` first; nothing was changed`,
        ExitCode.INVALID,
      );
    }
    if (sameSpec(saved, spec) && (await labIntact(plan))) {
      return { plan, inventoryPath: plan.inventoryFile, reused: true, cleared: false, ms: performance.now() - t0 };
    }
  }
  await checkSubnetFree(plan);
  const remains = saved !== undefined || existsSync(plan.dir) || (await labNetns(plan.prefix)).length > 0 || (await linkExists(plan.controllerIf));
  if (remains) {
    const r = await teardown(spec.name);
    if (r.problems.length > 0) {
      throw new LabError(`lab up ${spec.name}: could not clear the remains of an earlier lab of that name:\n  ${r.problems.join('\n  ')}\nbaton: made nothing new`);
    }
  }
  await mkdir(path.dirname(plan.dir), { recursive: true, mode: 0o700 });
  await build(plan);
  return { plan, inventoryPath: plan.inventoryFile, reused: false, cleared: remains, ms: performance.now() - t0 };
}
