#!/usr/bin/env node
// Per-step overhead of the runner over one SSH connection: a play of N `command: [true]` steps
// on a lab node, run through the real CLI with --json; each step's own duration (probe/apply/
// journal, fsync included) comes from its step-end event. Prints the median and p95 per step,
// the whole run's wall time, and a bare exec of `true` over the same kind of connection for
// reference. Root (it builds a lab of its own); `npm run build` first.
//   node bench/step-overhead.mjs [N]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(root, 'dist/cli/main.js');
if (!existsSync(CLI)) {
  console.error('bench/step-overhead: run `npm run build` first');
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('bench/step-overhead: the lab needs root; run as root');
  process.exit(2);
}
const N = Number(process.argv[2] ?? 200);
const { labUp } = await import(path.join(root, 'dist/lab/up.js'));
const { labDown } = await import(path.join(root, 'dist/lab/down.js'));
const work = mkdtempSync(path.join(os.tmpdir(), 'baton-bench-steps-'));
const spec = { name: 'benchsteps', subnet: '198.18.251.0/24', nodes: 1, clients: 0, disks: 0, diskMiB: 16 };
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length - 1) * p))];

try {
  const up = await labUp(spec);
  const pb = path.join(work, 'steps.yml');
  const steps = Array.from({ length: N }, (_, i) => `    - name: step ${i}\n      command: [/bin/true]`).join('\n');
  writeFileSync(pb, `- name: ${N} steps of true\n  hosts: n1\n  steps:\n${steps}\n`);
  const t0 = performance.now();
  const r = spawnSync('node', [CLI, 'run', '--yes', '--json', '-i', up.inventoryPath, pb], {
    env: { ...process.env, BATON_STATE_DIR: path.join(work, 'state') },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`run failed (${r.status}): ${r.stderr}${r.stdout.split("\n").filter((l) => l.includes("failed")).slice(0, 3).join("\n")}`);
  const durations = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((e) => e.type === 'step-end')
    .map((e) => e.durationMs);
  if (durations.length !== N) throw new Error(`expected ${N} step-end events, got ${durations.length}`);

  // Reference: OpenSSH with a master connection, running `true` on the same node.
  const ctl = path.join(work, 'ctl');
  const ssh = ['-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${up.plan.knownHostsFile}`, '-i', up.plan.keyFile, '-o', `ControlPath=${ctl}`, `root@${up.plan.nodes[0].address}`];
  execFileSync('ssh', ['-o', 'ControlMaster=yes', '-o', 'ControlPersist=30', ...ssh, 'true']);
  const bare = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    execFileSync('ssh', ssh.concat('true'));
    bare.push(performance.now() - t);
  }
  execFileSync('ssh', ['-O', 'exit', ...ssh], { stdio: 'ignore' });

  console.log(`${N} steps of \`command: [true]\` on one lab node over one SSH connection`);
  console.log(`  per step: median ${pct(durations, 0.5).toFixed(1)} ms, p95 ${pct(durations, 0.95).toFixed(1)} ms`);
  console.log(`  whole run (node start, connect, ${N} steps, recap): ${(wall / 1000).toFixed(2)} s`);
  console.log(`  reference: OpenSSH ControlMaster \`ssh node true\`: median ${pct(bare, 0.5).toFixed(1)} ms`);
} finally {
  await labDown(spec.name).catch((e) => console.error(`lab down: ${e.message}`));
  rmSync(work, { recursive: true, force: true });
}
