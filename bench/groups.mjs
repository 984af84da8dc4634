#!/usr/bin/env node
// Moving k = 1, 2, 4, 8 service groups in one run: `baton run playbooks/node-evacuate.yml`
// (Node start, the placement read, the locks, the moves and the statd play included) on a
// 2-node lab with 8 groups (`lab up --groups 8`), every group allowed on both nodes, so an
// evacuation of n1 sends each group it holds to n2 and back. The k groups to move run on the
// node evacuated; the others are stopped (service-stop, outside the timing), so each run moves
// exactly k. Rounds interleave the four k (1, 2, 4, 8, then 8, 4, 2, 1, ...): a slow spell of
// the machine hits them alike. Prints the median (and spread) of each k and k=8 / k=1.
// Target: k=8 ≤ 1.3 × k=1.
// Root; runs from dist/ (`npm run build` first).
// Usage: node bench/groups.mjs [rounds]   (BATON_TRACE_EXEC=DIR: one exec trace per timed run, DIR/kK-rR.trace)
// BENCH_GROUPS_KS=1,8 times only those k; BENCH_COMPARE_AGENT=1 also times each k with one SSH
// channel per command (BATON_SSH_AGENT=0), interleaved with the default, to see what the node's
// command agent gives (docs/speed.md).
// The lab's name and /24 are its own (BENCH_GROUPS_LAB, BENCH_GROUPS_SUBNET to change them).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cli, labBench, load, median, root, stats } from './common.mjs';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const { labUp, labDown } = await labBench('groups');

const rounds = Number(process.argv[2] ?? 5);
const KS = (process.env.BENCH_GROUPS_KS ?? '1,2,4,8').split(',').map(Number);
const VARIANTS = process.env.BENCH_COMPARE_AGENT === '1' ? ['agent', 'channels'] : ['agent'];
const variantEnv = (v) => (v === 'channels' ? { BATON_SSH_AGENT: '0' } : {});
const spec = { name: process.env.BENCH_GROUPS_LAB ?? 'benchgroups', subnet: process.env.BENCH_GROUPS_SUBNET ?? '198.18.207.0/24', nodes: 2, clients: 1, disks: 8, diskMiB: 32, groups: 8 };
const traceDir = process.env.BATON_TRACE_EXEC;
if (traceDir) mkdirSync(traceDir, { recursive: true });
const work = mkdtempSync(path.join(os.tmpdir(), 'baton-bench-groups-'));
const env = { ...process.env, BATON_STATE_DIR: path.join(work, 'state'), CI: 'true' };
delete env.BATON_TRACE_EXEC;


async function baton(args, extraEnv = {}) {
  try {
    const r = await execFileP('node', [cli, ...args], { env: { ...env, ...extraEnv }, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    return { code: e.code, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}
async function ok(args, what, extraEnv) {
  const r = await baton(args, extraEnv);
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.out}`);
  return r;
}

try {
  const up = await labUp(spec);
  const inv = up.inventoryPath;
  const groups = up.plan.groups.map((g) => g.name);
  if (groups.length !== 8) throw new Error(`the lab wrote ${groups.length} groups, not 8`);
  const run = (pb, vars, ...more) => ['run', '--yes', ...more, '-i', inv, path.join(root, 'playbooks', pb), '-e', JSON.stringify(vars)];

  /** Where each group runs now, from `baton status --json`. */
  async function where() {
    const r = await baton(['status', '-i', inv, '--json']);
    const doc = JSON.parse(r.out.slice(r.out.indexOf('{')));
    return Object.fromEntries(doc.groups.map((g) => [g.name, g.state === 'running' ? g.nodes[0] : g.state]));
  }

  /** Exactly the first k groups running, all on `node`; the others stopped. Not timed. */
  async function arrange(k, node) {
    const now = await where();
    const want = new Set(groups.slice(0, k));
    // Stops first (no statd involved, each its own lock: at once); then the starts one after
    // another (each restarts the node's statd).
    await Promise.all(groups.filter((g) => !want.has(g) && now[g] !== 'stopped').map((g) => ok(run('service-stop.yml', { service: g }), `service-stop ${g}`)));
    for (const g of want) {
      if (now[g] === node) continue;
      if (now[g] !== 'stopped') throw new Error(`${g} runs on ${now[g]}, expected stopped or ${node}`);
      await ok(run('service-start.yml', { service: g, on: node }), `service-start ${g} on ${node}`);
    }
  }

  let node = 'n1';
  const times = Object.fromEntries(KS.flatMap((k) => VARIANTS.map((v) => [`${k}/${v}`, []])));
  console.log(`bench/groups: ${rounds} rounds of k = ${KS.join(', ')} on lab ${spec.name} (2 nodes, 8 groups); load ${load()}`);
  for (let r = 0; r < rounds; r++) {
    const order = KS.flatMap((k) => VARIANTS.map((v) => [k, v]));
    for (const [k, v] of r % 2 ? order.reverse() : order) {
      await arrange(k, node);
      const extraEnv = { ...variantEnv(v), ...(traceDir ? { BATON_TRACE_EXEC: path.join(traceDir, `k${k}-${v}-r${r}.trace`) } : {}) };
      const t0 = performance.now();
      const res = await ok(run('node-evacuate.yml', { node }, '--json'), `node-evacuate ${node} (k=${k})`, extraEnv);
      const ms = performance.now() - t0;
      const summary = res.out.split('\n').filter((l) => l.includes('"type":"summary"')).map((l) => JSON.parse(l))[0];
      const moved = (summary?.items ?? []).filter((i) => i.play === 0 && i.outcome === 'succeeded').length;
      if (moved !== k) throw new Error(`node-evacuate ${node} moved ${moved} groups, expected ${k}:\n${res.out}`);
      times[`${k}/${v}`].push(ms);
      console.log(`  round ${r + 1} k=${k}${VARIANTS.length > 1 ? ` ${v}` : ''}: ${ms.toFixed(0)} ms (${node} -> ${node === 'n1' ? 'n2' : 'n1'}; load ${load()})`);
      node = node === 'n1' ? 'n2' : 'n1';
    }
  }
  console.log('');
  for (const v of VARIANTS) {
    const tag = VARIANTS.length > 1 ? ` ${v}` : '';
    for (const k of KS) console.log(`k=${k}${tag}: ${stats(times[`${k}/${v}`])}`);
    if (times[`8/${v}`] && times[`1/${v}`]) {
      const ratio = median(times[`8/${v}`]) / median(times[`1/${v}`]);
      console.log(`k=8 / k=1${tag} = ${ratio.toFixed(2)} (target ≤ 1.30: ${ratio <= 1.3 ? 'met' : 'NOT met'})`);
    }
  }
} finally {
  await labDown(spec.name).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
