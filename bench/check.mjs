#!/usr/bin/env node
// Wall time of `baton check playbooks/nfs-health.yml -i INV` (Node start included), as cron
// pays it, against a lab serving NFS from n1; beside a bare `node -e 0`. Target: median
// ≤ 250 ms (an Ansible health check of the same size took 1.9 s here); with a node powered
// off, < 3 s (the connect timeout is 2 s). Two modes: fresh
// connections per run, and `--persist 60` (connections held by the keeper, after one warm-up
// run that starts it).
// Root; runs from dist/ (`npm run build` first). Usage: node bench/check.mjs [runs]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cli, labBench, root } from './common.mjs';

const { labUp, labDown } = await labBench('check');

const runs = Number(process.argv[2] ?? 15);
// A name and /24 of its own, so the bench never meets a test lab.
const spec = { name: 'benchcheck', subnet: '198.18.252.0/24', nodes: 2, clients: 1, disks: 2, diskMiB: 64 };
const state = mkdtempSync(path.join(os.tmpdir(), 'baton-bench-check-'));
const env = { ...process.env, BATON_STATE_DIR: state, CI: 'true' };

function timeOnce(argv) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, argv, { env, encoding: 'utf8' });
  return { ms: performance.now() - t0, code: r.status, out: r.stdout, err: r.stderr };
}

function median(times) {
  const s = [...times].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function stats(times) {
  const s = [...times].sort((a, b) => a - b);
  const mid = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return `median ${mid.toFixed(0)} ms, min ${s[0].toFixed(0)} ms, max ${s.at(-1).toFixed(0)} ms`;
}

try {
  const up = await labUp(spec);
  const inv = up.inventoryPath;
  execFileSync(process.execPath, [cli, 'run', '--yes', '-i', inv, path.join(root, 'playbooks/nfs-start.yml'), '-e', 'on=n1'], { env, stdio: 'ignore' });
  const argv = [cli, 'check', '-i', inv, path.join(root, 'playbooks/nfs-health.yml')];
  const first = timeOnce(argv);
  if (first.code !== 0) throw new Error(`the lab is not healthy, check exited ${first.code}:\n${first.out}${first.err}`);
  console.log(first.out.split('\n')[0]);
  const persistArgv = [cli, 'check', '--persist', '60', '-i', inv, path.join(root, 'playbooks/nfs-health.yml')];
  const warm = timeOnce(persistArgv);
  if (warm.code !== 0) throw new Error(`the warm-up run with --persist exited ${warm.code}:\n${warm.out}${warm.err}`);
  const check = [];
  const persisted = [];
  const bare = [];
  // Interleaved, so a slow spell of the machine hits both modes alike.
  for (let i = 0; i < runs; i++) {
    bare.push(timeOnce(['-e', '0']).ms);
    const r = timeOnce(argv);
    if (r.code !== 0) throw new Error(`run ${i + 1}: check exited ${r.code}: ${r.out.split('\n')[0]}`);
    check.push(r.ms);
    const p = timeOnce(persistArgv);
    if (p.code !== 0) throw new Error(`run ${i + 1}: check --persist exited ${p.code}: ${p.out.split('\n')[0]}`);
    persisted.push(p.ms);
  }
  console.log(`baton check nfs-health (8 checks, 2 nodes), fresh connections: ${stats(check)} over ${runs} runs`);
  console.log(`same with --persist 60 (keeper warm):                          ${stats(persisted)} over ${runs} runs`);
  console.log(`node -e 0 (baseline):                                          ${stats(bare)}`);
  console.log(`medians: fresh ${median(check).toFixed(0)} ms, persist ${median(persisted).toFixed(0)} ms (target ≤ 250 ms)`);
  // Where the time goes, from the check's own perfdata (connections and checks, Node start excluded).
  const inner = timeOnce(argv).out.match(/duration=([\d.]+)s/)?.[1];
  if (inner) console.log(`inside baton (inputs loaded → report): ${(Number(inner) * 1000).toFixed(0)} ms`);

  // A node powered off (through its BMC): the answer is bounded by the connect timeout
  // (2 s by default). Target: under 3 s, UNKNOWN (exit 3), one line for the dead node.
  execFileSync(process.execPath, [cli, 'lab', 'power', 'n2', 'off', '--name', spec.name], { env, stdio: 'ignore' });
  const off = [];
  for (let i = 0; i < Math.min(runs, 5); i++) {
    const r = timeOnce(argv);
    if (r.code !== 3) throw new Error(`n2 off: check exited ${r.code}, expected 3 (UNKNOWN): ${r.out.split('\n')[0]}`);
    off.push(r.ms);
  }
  console.log(`n2 powered off (connect timeout 2 s): ${stats(off)} over ${off.length} runs (target < 3000 ms, exit 3)`);
} finally {
  // The keeper outlives each run by design: stop it, by its pid file if `keeper stop` fails.
  spawnSync(process.execPath, [cli, 'keeper', 'stop'], { env, stdio: 'ignore' });
  try {
    process.kill(Number(readFileSync(path.join(state, 'keeper', 'keeper.pid'), 'utf8')), 'SIGKILL');
  } catch {
    // stopped, as it should be
  }
  await labDown(spec.name).catch(() => undefined);
  rmSync(state, { recursive: true, force: true });
}
