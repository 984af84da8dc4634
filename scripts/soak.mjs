#!/usr/bin/env node
// The randomized soak: `npm run soak -- --runs N --seed S [--stall-ms MS] [--out FILE] [--verbose]`.
// N fault cases (random playbook, direction, step, fault and moment from a seeded PRNG) on a lab
// of its own (`soak`, 198.18.150.0/24, or --lab/--subnet), built and torn down here. The cases reuse the fault
// suite's TypeScript harness (test/helpers/), run under vite-node, which vitest brings along.
// Exit: 0 no invariant broke, 1 some did, 2 bad arguments or not root, 3 the lab failed.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const usage = 'usage: npm run soak -- [--runs N] [--seed S] [--stall-ms MS] [--out FILE] [--lab NAME --subnet 198.18.X.0/24] [--verbose]';

let values;
try {
  ({ values } = parseArgs({
    options: {
      runs: { type: 'string', default: '20' },
      seed: { type: 'string' },
      'stall-ms': { type: 'string', default: '4000' },
      out: { type: 'string', default: path.join('test-results', 'soak.jsonl') },
      // Its own lab, so that a long soak and CI's short one (or two developers) never meet.
      lab: { type: 'string', default: 'soak' },
      subnet: { type: 'string', default: '198.18.150.0/24' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  }));
} catch (e) {
  console.error(`soak: ${e.message}\n${usage}`);
  process.exit(2);
}
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const int = (name, v, min) => {
  if (!/^\d+$/.test(v) || Number(v) < min) {
    console.error(`soak: --${name} wants a whole number ≥ ${min}, got "${v}"\n${usage}`);
    process.exit(2);
  }
  return Number(v);
};
const runs = int('runs', values.runs, 1);
// No seed given: one from the clock, printed so the run can be replayed.
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : int('seed', values.seed, 0);
const stallMs = int('stall-ms', values['stall-ms'], 0);
if (!existsSync(path.join(root, 'dist', 'cli', 'main.js'))) {
  console.error('soak: dist/cli/main.js is missing: run `npm run build` first (`npm run soak` does)');
  process.exit(2);
}

if (!/^[a-z][a-z0-9]{0,11}$/.test(values.lab)) {
  console.error(`soak: --lab wants a short lowercase name (letters and digits, ≤ 12), got "${values.lab}"\n${usage}`);
  process.exit(2);
}
if (!/^198\.1[89]\.\d{1,3}\.0\/24$/.test(values.subnet)) {
  console.error(`soak: --subnet wants a /24 inside 198.18.0.0/15 (e.g. 198.18.150.0/24), got "${values.subnet}"\n${usage}`);
  process.exit(2);
}
const options = { runs, seed, stallMs, out: path.resolve(values.out), lab: values.lab, subnet: values.subnet, verbose: values.verbose };
const viteNode = path.join(path.dirname(createRequire(import.meta.url).resolve('vite-node/package.json')), 'vite-node.mjs');
const child = spawn(process.execPath, [viteNode, path.join(root, 'test', 'helpers', 'soak-main.ts')], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, BATON_SOAK_OPTIONS: JSON.stringify(options) },
});
// Ctrl-C reaches the child too (same process group); wait for it to tear its lab down.
process.on('SIGINT', () => {});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 3 : 0)));
