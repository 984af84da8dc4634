/**
 * The service-group lab tests' view of a lab, as an operator has it: `baton status --json` read
 * back as "group → where", the shipped playbooks run with JSON extra vars through the real CLI,
 * and a client's bytes written and read through a group's VIP from its own namespace.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ServiceGroup } from '../../src/inventory/services.js';
import type { Lab, LabClient } from './lab.js';
import { baton, type BatonResult } from './nfs-service.js';

const execFileP = promisify(execFile);

export interface StatusDoc {
  groups: Array<{ name: string; state: string; nodes: string[]; summary: string }>;
  nodes: Array<{ name: string; reachable: boolean; power: string }>;
  exitCode: number;
}

export interface GroupRuns {
  /** `baton status --json`: its exit code, each group's one-line summary, the document. */
  status(): Promise<{ code: number; where: Record<string, string>; doc: StatusDoc }>;
  /** `baton run --yes PLAYBOOK -e JSON [more]`, its wall time printed for the record. */
  run(playbook: string, vars: Record<string, unknown>, ...more: string[]): Promise<BatonResult>;
  /** Any other baton command, with the test's state dir. */
  baton(args: string[]): Promise<BatonResult>;
}

export function groupRuns(lab: () => Lab, stateDir: () => string): GroupRuns {
  const r: GroupRuns = {
    baton: (args) => baton(args, stateDir()),
    async status() {
      const x = await r.baton(['status', '-i', lab().inventoryPath, '--json']);
      let doc: StatusDoc;
      try {
        doc = JSON.parse(x.stdout) as StatusDoc;
      } catch {
        throw new Error(`baton status --json printed no JSON (exit ${x.code}):\n${x.stdout}\n${x.stderr}`);
      }
      return { code: x.code, where: Object.fromEntries(doc.groups.map((g) => [g.name, g.summary])), doc };
    },
    async run(playbook, vars, ...more) {
      const t0 = performance.now();
      const x = await r.baton(['run', '--yes', ...more, '-i', lab().inventoryPath, path.resolve(playbook), '-e', JSON.stringify(vars)]);
      console.log(`${path.basename(playbook)} ${JSON.stringify(vars)}: exit ${x.code} in ${(performance.now() - t0).toFixed(0)} ms`);
      return x;
    },
  };
  return r;
}

export function ok(r: BatonResult, what: string): BatonResult {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Random bytes written by the client through the group's VIP (NFSv3 path); their sha256. */
export async function clientWriteTo(client: LabClient, g: ServiceGroup, name: string, bytes: number): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-client-'));
  try {
    const local = path.join(dir, 'payload');
    writeFileSync(local, randomBytes(bytes));
    await execFileP('ip', ['netns', 'exec', client.netns, 'nfs-cp', local, `nfs://${g.vip.address}${g.nfsExports[0]!.path}/${name}?version=3`], { timeout: 30_000 });
    return createHash('sha256').update(readFileSync(local)).digest('hex');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The argv a client reads the file with through the group's VIP (NFSv4, under its pseudo path). */
export function clientReadArgv(client: LabClient, g: ServiceGroup, name: string): string[] {
  return ['ip', 'netns', 'exec', client.netns, 'nfs-cat', `nfs://${g.vip.address}${g.nfsExports[0]!.pseudo}/${name}?version=4`];
}

/** sha256 of what the client reads through the group's VIP. */
export async function clientReadFrom(client: LabClient, g: ServiceGroup, name: string): Promise<string> {
  const [cmd, ...args] = clientReadArgv(client, g, name);
  const r = await execFileP(cmd!, args, { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: 15_000 });
  return createHash('sha256').update(r.stdout).digest('hex');
}
