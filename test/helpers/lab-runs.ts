/**
 * Running small playbooks against a lab, as the step-level lab tests do: write the YAML to the
 * test's work dir, run the real CLI with the test's own state dir, and read which nodes hold an
 * address from their namespaces (not through baton).
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseIpAddr } from '../../src/facts/net.js';
import { runRaw } from '../../src/lab/exec.js';
import type { Lab } from './lab.js';

const execFileP = promisify(execFile);
export const CLI = path.resolve('dist/cli/main.js');

export interface LabRuns {
  /** The real CLI; stdout and stderr together, never throws. */
  baton(args: string[]): Promise<{ code: number; out: string }>;
  /** Write a playbook into the work dir; its path. */
  playbook(yamlText: string): string;
  /** `baton run --yes [flags] -i LAB PLAYBOOK`. */
  runPb(yamlText: string, ...flags: string[]): Promise<{ code: number; out: string }>;
  /** Which lab nodes hold `address` on eth0, probed in each node's namespace. */
  holders(address: string): Promise<string[]>;
}

/** `lab` and `work` are read at call time (both are set in beforeAll). */
export function labRuns(lab: () => Lab, work: () => string): LabRuns {
  let count = 0;
  const r: LabRuns = {
    async baton(args) {
      try {
        const x = await execFileP('node', [CLI, ...args], { env: { ...process.env, BATON_STATE_DIR: path.join(work(), 'state'), CI: 'true' }, timeout: 60_000 });
        return { code: 0, out: x.stdout + x.stderr };
      } catch (e) {
        const err = e as { code: number; stdout: string; stderr: string };
        return { code: err.code, out: err.stdout + err.stderr };
      }
    },
    playbook(yamlText) {
      const file = path.join(work(), `pb${++count}.yml`);
      writeFileSync(file, yamlText);
      return file;
    },
    runPb: (yamlText, ...flags) => r.baton(['run', '--yes', ...flags, '-i', lab().inventoryPath, r.playbook(yamlText)]),
    async holders(address) {
      const out: string[] = [];
      for (const n of lab().nodes) {
        const a = await runRaw(['ip', '-n', n.netns, '-o', 'addr', 'show', 'dev', 'eth0']);
        if (parseIpAddr(a.stdout).some((x) => x.address === address)) out.push(n.name);
      }
      return out;
    },
  };
  return r;
}

/** A `--json` run of the real CLI, read back as its events. */
export interface JsonRun {
  code: number | null;
  events: any[];
  summary: any;
  stderr: string;
  ms: number;
}

/** Run the real CLI with `--json` and the state dir `stateDir`; never throws on a failed run. */
export async function batonJson(args: string[], stateDir: string): Promise<JsonRun> {
  const t0 = Date.now();
  const r = await runRaw(['node', CLI, ...args, '--json'], { timeoutMs: 120_000, env: { ...process.env, BATON_STATE_DIR: stateDir } });
  const events = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  return { code: r.code, events, summary: events.find((e) => e.type === 'summary'), stderr: r.stderr, ms: Date.now() - t0 };
}
