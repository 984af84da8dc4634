// How fast `baton validate` refuses each file of the bad-input corpus (test/unit/bad-input/),
// plus the generated ones (a 50 MB playbook, a 7 MB single line), Node start included, each
// run with a 256 MB heap cap as in the test. The target is < 1 s for every file;
// test/unit/bad-input.test.ts checks the outcome (exit 2, place, message), this only measures.
// Usage: npm run build && node bench/bad-input.mjs [runs]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist/cli/main.js');
const corpus = path.join(root, 'test/unit/bad-input');
const runs = Number(process.argv[2] ?? 5);
const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-bench-bad-'));

const inventory = path.join(dir, 'inventory.yml');
writeFileSync(inventory, 'all:\n  hosts:\n    local:\n      ansible_connection: local\n');
const markerPlay = '- hosts: local\n  steps:\n    - command: { argv: [touch, "{{ marker }}"] }\n';
const big = path.join(dir, 'big-50MB.yml');
const body = `    v: "${'y'.repeat(1000)}"\n`;
writeFileSync(big, markerPlay + '  vars:\n' + body.repeat(Math.ceil((50 * 1024 * 1024) / body.length)));
const huge = path.join(dir, 'huge-line-7MB.yml');
writeFileSync(huge, `- { hosts: local, name: "${'x'.repeat(7 * 1024 * 1024)}", forkz: 1 }\n`);

const files = [
  ...readdirSync(corpus).filter((f) => f.endsWith('.yml')).map((f) => path.join(corpus, f)),
  big,
  huge,
];

/** Wall time (ms) of one refusal. */
function timed(file) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--max-old-space-size=256', cli, 'validate', file, '-i', inventory, '-e', 'marker=/nonexistent/marker'], {
    encoding: 'utf8',
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 2) throw new Error(`${path.basename(file)}: exit ${r.status}, expected 2\n${r.stderr}`);
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// The machine is shared: a bare `node -e 0` is timed in each round too, and baton's own share
// (round time minus bare start) is reported beside the wall time, as in bench/validate.mjs.
const bare = [];
const rows = [];
for (const file of files) {
  const times = [];
  const own = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0']);
    const b = Number(process.hrtime.bigint() - t0) / 1e6;
    bare.push(b);
    const t = timed(file);
    times.push(t);
    own.push(t - b);
  }
  rows.push([path.basename(file), median(times), Math.max(...times), median(own)]);
}
rmSync(dir, { recursive: true, force: true });

const width = Math.max(...rows.map((r) => r[0].length));
console.log(`baton validate on bad input, ${runs} runs each: median and max wall time (Node start included), median of baton's own share`);
for (const [name, med, max, own] of rows) {
  console.log(`  ${name.padEnd(width)}  ${med.toFixed(0).padStart(5)} ms  ${max.toFixed(0).padStart(5)} ms  own ${own.toFixed(0).padStart(5)} ms`);
}
const worst = rows.reduce((a, b) => (b[1] > a[1] ? b : a));
console.log(`slowest median: ${worst[0]} ${worst[1].toFixed(0)} ms; bare \`node -e 0\` median ${median(bare).toFixed(0)} ms`);
console.log(`over 1 s (median): ${rows.filter((r) => r[1] > 1000).map((r) => r[0]).join(', ') || 'none'}`);
