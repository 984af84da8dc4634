#!/usr/bin/env node
// How long `baton lab up` takes for 2 nodes + 1 client + 2 disks (the target is under 10 s),
// over a few runs; prints each run and the median. Root; runs from dist/ (`npm run build` first).
// Usage: node bench/lab-up.mjs [runs]
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dist = new URL('../dist/lab/', import.meta.url);
if (!existsSync(fileURLToPath(new URL('up.js', dist)))) {
  console.error('bench/lab-up: dist/lab/up.js is missing; run `npm run build` first');
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('bench/lab-up: the lab needs root; run as root');
  process.exit(2);
}
const { labUp } = await import(new URL('up.js', dist).href);
const { labDown } = await import(new URL('down.js', dist).href);

const runs = Number(process.argv[2] ?? 5);
// A name and /24 of its own, so the bench never meets a test lab.
const spec = { name: 'benchup', subnet: '198.18.250.0/24', nodes: 2, clients: 1, disks: 2, diskMiB: 64 };
const times = [];
try {
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = await labUp(spec);
    const ms = performance.now() - t0;
    if (r.reused) throw new Error('lab was already up: the run measured nothing');
    times.push(ms);
    console.log(`run ${i + 1}: up ${(ms / 1000).toFixed(2)} s`);
    await labDown(spec.name);
  }
} finally {
  await labDown(spec.name).catch(() => undefined);
}
times.sort((a, b) => a - b);
const mid = times.length % 2 ? times[(times.length - 1) / 2] : (times[times.length / 2 - 1] + times[times.length / 2]) / 2;
console.log(`lab up (2 nodes, 1 client, 2 disks): median ${(mid / 1000).toFixed(2)} s over ${times.length} runs (min ${(times[0] / 1000).toFixed(2)} s, max ${(times.at(-1) / 1000).toFixed(2)} s)`);
