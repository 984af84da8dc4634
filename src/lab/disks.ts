/**
 * The lab's SAN: ext4 image files that every node can attach with a loop mount. Loop devices are
 * global kernel objects, so the lab finds its own by backing file (`losetup -j`).
 */
import { mkdir, open } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { run, runRaw } from './exec.js';
import type { LabPlan } from './plan.js';

export async function makeDisks(plan: LabPlan): Promise<void> {
  await Promise.all(
    plan.disks.map(async (img, i) => {
      if (existsSync(img)) return;
      await mkdir(path.dirname(img), { recursive: true });
      const tmp = `${img}.new`;
      const fh = await open(tmp, 'w');
      await fh.truncate(plan.spec.diskMiB * 1024 * 1024);
      await fh.close();
      await run(['mkfs.ext4', '-q', '-F', '-L', `disk${i + 1}`, tmp], {
        where: `disk ${img}`,
        onFailure: 'stopped building the lab',
      });
      // Renamed only when formatted: a crash never leaves a half-made disk under the real name.
      await run(['mv', '-f', tmp, img]);
    }),
  );
}

export interface LoopDevice {
  device: string;
  backingFile: string;
}

/** Loop devices whose backing file is under `dir`. */
export async function loopsUnder(dir: string): Promise<LoopDevice[]> {
  const r = await runRaw(['losetup', '--list', '--noheadings', '--output', 'NAME,BACK-FILE']);
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const out: LoopDevice[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    // The kernel appends " (deleted)" to a backing file removed while attached.
    const back = m[2]!.replace(/ \(deleted\)$/, '');
    if (back.startsWith(prefix)) out.push({ device: m[1]!, backingFile: back });
  }
  return out;
}
