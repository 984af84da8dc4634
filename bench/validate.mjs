// Time `baton validate` on a generated 200-step playbook, Node start included.
// Usage: npm run build && node bench/validate.mjs [runs]
//
// The machine is shared, so a bare `node -e 0` is timed alternately with each validate
// run: both see the same load, and the difference is what baton itself costs.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist/cli/main.js');
const runs = Number(process.argv[2] ?? 15);
const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-bench-'));

const steps = Array.from({ length: 200 }, (_, i) =>
  [
    `    - name: step ${i}`,
    `      command: { argv: [echo, "{{ msg }}", "${i}"], creates: /tmp/baton-bench-${i} }`,
    `      when: inventory_hostname is defined`,
    `      tags: [bench]`,
  ].join('\n'),
).join('\n');
writeFileSync(path.join(dir, 'inventory.yml'), 'all:\n  hosts:\n    n1: { ansible_connection: local }\n    n2: { ansible_connection: local }\n');
writeFileSync(path.join(dir, 'big.yml'), `- name: bench\n  hosts: all\n  vars: { msg: hello }\n  steps:\n${steps}\n`);

const args = [cli, 'validate', path.join(dir, 'big.yml'), '-i', path.join(dir, 'inventory.yml')];
const first = spawnSync(process.execPath, args, { encoding: 'utf8' });
if (first.status !== 0) {
  console.error(`validate failed (exit ${first.status}):\n${first.stdout}${first.stderr}`);
  process.exit(1);
}

function timed(argv) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, argv);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const baton = [];
const bare = [];
for (let i = 0; i < runs; i++) {
  bare.push(timed(['-e', '0']));
  baton.push(timed(args));
}
rmSync(dir, { recursive: true, force: true });

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const med = s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return `median ${med.toFixed(1)} ms (min ${s[0].toFixed(1)}, max ${s[s.length - 1].toFixed(1)})`;
};
console.log(`baton validate, 200 steps, ${runs} runs: ${stats(baton)}`);
console.log(`bare node -e 0, same ${runs} rounds:   ${stats(bare)}`);
// Per round, so that load shared by both runs of a round cancels out.
console.log(`baton's own share (validate - bare, per round): ${stats(baton.map((t, i) => t - bare[i]))}`);
