// How fast `baton validate` refuses each file of the bad-input corpus (test/unit/bad-input/),
// plus the generated ones (a 50 MB playbook, a 7 MB single line), Node start included, each
// run with a 256 MB heap cap as in the test. The target is < 1 s and bounded memory for every
// file; test/unit/bad-input.test.ts checks the outcome (exit 2, place, message), this only measures.
//
// Wall time on a shared machine says more about the neighbours than about baton, so each run
// also reports, from inside the child (a preloaded module writing to fd 3 at exit), its CPU
// time (user + system) and its peak resident memory.
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

const probe = path.join(dir, 'usage.mjs');
writeFileSync(
  probe,
  "import { writeSync } from 'node:fs';\n" +
    "process.on('exit', () => { const c = process.cpuUsage(); writeSync(3, JSON.stringify({ cpuMs: (c.user + c.system) / 1000, rssKiB: process.resourceUsage().maxRSS })); });\n",
);

const files = [
  ...readdirSync(corpus).filter((f) => f.endsWith('.yml')).map((f) => path.join(corpus, f)),
  big,
  huge,
];

/** Wall time (ms), CPU time (ms) and peak RSS (KiB) of one refusal. */
function timed(file) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--max-old-space-size=256', '--import', probe, cli, 'validate', file, '-i', inventory, '-e', 'marker=/nonexistent/marker'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 2) throw new Error(`${path.basename(file)}: exit ${r.status}, expected 2\n${r.stderr}`);
  const usage = JSON.parse(r.output[3]);
  return { ms, cpuMs: usage.cpuMs, rssKiB: usage.rssKiB };
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
  const cpu = [];
  let rss = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0']);
    const b = Number(process.hrtime.bigint() - t0) / 1e6;
    bare.push(b);
    const t = timed(file);
    times.push(t.ms);
    own.push(t.ms - b);
    cpu.push(t.cpuMs);
    rss = Math.max(rss, t.rssKiB);
  }
  rows.push([path.basename(file), median(times), Math.max(...times), median(own), median(cpu), rss]);
}
rmSync(dir, { recursive: true, force: true });

const width = Math.max(...rows.map((r) => r[0].length));
console.log(`baton validate on bad input, ${runs} runs each (Node start included):`);
console.log(`  ${'file'.padEnd(width)}  wall median    max  minus bare node  CPU median  peak RSS`);
for (const [name, med, max, own, cpu, rss] of rows) {
  console.log(
    `  ${name.padEnd(width)}  ${med.toFixed(0).padStart(8)} ms ${max.toFixed(0).padStart(6)} ms ${own.toFixed(0).padStart(12)} ms ${cpu.toFixed(0).padStart(8)} ms ${(rss / 1024).toFixed(0).padStart(6)} MiB`,
  );
}
const worst = rows.reduce((a, b) => (b[1] > a[1] ? b : a));
console.log(`slowest median: ${worst[0]} ${worst[1].toFixed(0)} ms; bare \`node -e 0\` median ${median(bare).toFixed(0)} ms`);
console.log(`over 1 s (median wall): ${rows.filter((r) => r[1] > 1000).map((r) => r[0]).join(', ') || 'none'}`);
console.log(`largest peak RSS: ${(Math.max(...rows.map((r) => r[5])) / 1024).toFixed(0)} MiB`);
