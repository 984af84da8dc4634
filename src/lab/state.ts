/** The spec `up` saved, so the other lab commands need only the lab's name. */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BatonError, ExitCode } from '../util/errors.js';
import { labsRoot, planLab, SPEC_FILE, type LabPlan, type LabSpec } from './plan.js';

export async function saveSpec(plan: LabPlan): Promise<void> {
  await mkdir(plan.dir, { recursive: true, mode: 0o700 });
  await writeFile(path.join(plan.dir, SPEC_FILE), `${JSON.stringify(plan.spec, null, 2)}\n`);
}

export async function loadSpec(name: string): Promise<LabSpec | undefined> {
  try {
    return JSON.parse(await readFile(path.join(labsRoot(), name, SPEC_FILE), 'utf8')) as LabSpec;
  } catch {
    return undefined;
  }
}

/** The plan of a lab that `up` made, or an error saying there is none. */
export async function loadPlan(name: string): Promise<LabPlan> {
  const spec = await loadSpec(name);
  if (!spec) {
    throw new BatonError(`lab: no lab named ${JSON.stringify(name)} (no ${path.join(labsRoot(), name, SPEC_FILE)}); start one with \`baton lab up --name ${name}\``, ExitCode.INVALID);
  }
  return planLab(spec);
}

export function sameSpec(a: LabSpec, b: LabSpec): boolean {
  return a.name === b.name && a.subnet === b.subnet && a.nodes === b.nodes && a.clients === b.clients && a.disks === b.disks && a.diskMiB === b.diskMiB && (a.groups ?? 0) === (b.groups ?? 0) && (a.failoverNics ?? 0) === (b.failoverNics ?? 0) && (a.san ?? false) === (b.san ?? false) && (a.iscsiGroups ?? 0) === (b.iscsiGroups ?? 0);
}
