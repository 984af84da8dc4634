#!/usr/bin/env node
// Wall time of `baton status -i INV` (Node start included), the on-call's first command, on a
// 3-node lab with four service groups running on their homes (`lab up --groups 4`); beside a
// bare `node -e 0`, and with a node powered off (the connect timeout, 2 s, bounds it). Also the
// time inside baton (the --json document's durationMs: inputs loaded to verdict), and what one
// BMC question costs (ipmitool lanplus against the lab's ipmi_sim), since every run asks each
// node's BMC beside reading the node.
// Root; runs from dist/ (`npm run build` first). Usage: node bench/status.mjs [runs]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cli, labBench, root } from './common.mjs';

const { labUp, labDown } = await labBench('status');
const { loadInventory } = await import(new URL('../dist/inventory/load.js', import.meta.url).href);
const { loadServiceGroups } = await import(new URL('../dist/inventory/services.js', import.meta.url).href);

const runs = Number(process.argv[2] ?? 11);
// A name and /24 of its own (test/lab/status.test.ts uses grpst on 198.18.190.0/24).
const spec = { name: 'grpst2', subnet: '198.18.191.0/24', nodes: 3, clients: 1, disks: 4, diskMiB: 64, groups: 4 };
const state = mkdtempSync(path.join(os.tmpdir(), 'baton-bench-status-'));
const env = { ...process.env, BATON_STATE_DIR: state, CI: 'true' };

function timeOnce(argv) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, argv, { env, encoding: 'utf8' });
  return { ms: performance.now() - t0, code: r.status, out: r.stdout, err: r.stderr };
}

function stats(times) {
  const s = [...times].sort((a, b) => a - b);
  const mid = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return `median ${mid.toFixed(0)} ms, min ${s[0].toFixed(0)} ms, max ${s.at(-1).toFixed(0)} ms`;
}

try {
  const up = await labUp(spec);
  const inv = up.inventoryPath;
  // Each group on its home, with the shipped nfs-start and the group's own vars.
  for (const g of loadServiceGroups(loadInventory(inv))) {
    const e = g.nfsExports[0];
    const vars = { on: g.home, vip: g.vip.address, volume_image: g.volume.image, mount_point: g.mount.path, export_pseudo: e.pseudo, export_id: e.exportId, nfs_fsid: e.fsid };
    execFileSync(process.execPath, [cli, 'run', '--yes', '-i', inv, path.join(root, 'playbooks/nfs-start.yml'), '-e', JSON.stringify(vars)], { env, stdio: 'ignore' });
  }
  const argv = [cli, 'status', '-i', inv];
  const first = timeOnce(argv);
  if (first.code !== 0) throw new Error(`the groups are not all running, status exited ${first.code}:\n${first.out}${first.err}`);
  console.log(first.out.trimEnd());
  const status = [];
  const inside = [];
  const bare = [];
  for (let i = 0; i < runs; i++) {
    bare.push(timeOnce(['-e', '0']).ms);
    const r = timeOnce(argv);
    if (r.code !== 0) throw new Error(`run ${i + 1}: status exited ${r.code}`);
    status.push(r.ms);
    const j = timeOnce([...argv, '--json']);
    inside.push(JSON.parse(j.out).durationMs);
  }
  console.log(`baton status, 4 groups on 3 nodes, fresh connections: ${stats(status)} over ${runs} runs`);
  console.log(`inside baton (inputs loaded → verdict):              ${stats(inside)}`);
  console.log(`node -e 0 (baseline):                                ${stats(bare)}`);

  // One BMC question, as status asks it (ipmitool lanplus, password on stdin).
  const n1 = up.plan.nodes[0];
  const bmc = [];
  for (let i = 0; i < Math.min(runs, 5); i++) {
    const t0 = performance.now();
    spawnSync('ipmitool', ['-I', 'lanplus', '-H', n1.bmc.address, '-p', String(n1.bmc.port), '-U', n1.bmc.user, '-E', '-C', '3', '-N', '1', '-R', '1', 'chassis', 'power', 'status'], {
      env: { ...process.env, IPMI_PASSWORD: n1.bmc.password },
    });
    bmc.push(performance.now() - t0);
  }
  console.log(`one BMC power status (ipmitool lanplus):             ${stats(bmc)}`);

  execFileSync(process.execPath, [cli, 'lab', 'power', 'n3', 'off', '--name', spec.name], { env, stdio: 'ignore' });
  const off = [];
  for (let i = 0; i < Math.min(runs, 5); i++) {
    const r = timeOnce(argv);
    if (r.code !== 1) throw new Error(`n3 off: status exited ${r.code}, expected 1 (degraded)`);
    off.push(r.ms);
  }
  console.log(`n3 powered off (connect timeout 2 s):                ${stats(off)} over ${off.length} runs (exit 1)`);
} finally {
  await labDown(spec.name).catch(() => undefined);
  rmSync(state, { recursive: true, force: true });
}
