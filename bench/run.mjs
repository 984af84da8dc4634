#!/usr/bin/env node
// `npm run bench`: every benchmark in turn. They print figures; none is a pass/fail test.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
const benches = [['validate.mjs', '15'], ['bad-input.mjs', '5'], ['step-overhead.mjs', '200'], ['check.mjs', '15'], ['lab-up.mjs', '5'], ['switchover.mjs', '6'], ['status.mjs', '11']];
let failed = 0;
for (const [file, arg] of benches) {
  console.log(`\n## ${file}`);
  const r = spawnSync('node', [path.join(dir, file), arg], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
