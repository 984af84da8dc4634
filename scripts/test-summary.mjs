#!/usr/bin/env node
// Prints "N passed, N failed[, N skipped]" from a JUnit XML report (vitest's junit reporter).
// Exits 1 when the report is missing, holds no test, or has failures.
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? 'test-results/junit.xml';
let xml;
try {
  xml = readFileSync(file, 'utf8');
} catch {
  console.log('0 passed, 1 failed');
  console.error(`no test report at ${file}: the test run did not finish`);
  process.exit(1);
}
let tests = 0, failed = 0, skipped = 0;
for (const m of xml.matchAll(/<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
  tests++;
  const body = m[2] ?? '';
  if (/<(failure|error)\b/.test(body)) failed++;
  else if (/<skipped\b/.test(body)) skipped++;
}
const passed = tests - failed - skipped;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(tests === 0 || failed > 0 ? 1 : 0);
