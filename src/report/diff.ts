/**
 * `--diff`: what a step changed on a node, as a unified-style diff of the state its probe saw
 * before and after (YAML, keys sorted, so equal states print equal lines), secrets masked.
 * In check mode there is no "after": the state now and the commands that would change it.
 */
import yaml from 'js-yaml';
import { isSecretName, MASK } from '../engine/redact.js';
import { displayArgv } from '../util/argv.js';

/** Secret-named fields masked, deeply; then any known secret value, by the run's redactor. */
function mask(v: unknown, redact: (s: string) => string): unknown {
  if (typeof v === 'string') return redact(v);
  if (Array.isArray(v)) return v.map((x) => mask(x, redact));
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, isSecretName(k) && x !== undefined && x !== null && x !== '' ? MASK : mask(x, redact)]));
  }
  return v;
}

/** A probed state as YAML lines; `(nothing)` for an empty one so a diff never has zero lines on a side. */
export function stateLines(state: unknown, redact: (s: string) => string = (s) => s): string[] {
  if (state === undefined) return [];
  const text = yaml.dump(mask(state, redact), { sortKeys: true, lineWidth: -1, noRefs: true }).trimEnd();
  return text === '{}' || text === '[]' || text === '' ? ['(nothing)'] : text.split('\n');
}

type Op = { op: ' ' | '-' | '+'; line: string };

/** Line diff by longest common subsequence: probed states are small (tens of lines). */
export function diffLines(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push({ op: ' ', line: a[i]! });
      i++;
      j++;
    } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      // Removals before additions, as diff -u prints a replaced line.
      ops.push({ op: '-', line: a[i]! });
      i++;
    } else {
      ops.push({ op: '+', line: b[j]! });
      j++;
    }
  }
  return ops;
}

/**
 * The diff with `context` unchanged lines around each change, in hunks as `diff -u` prints
 * them (`@@ -l,n +l,n @@`); nothing when both sides are equal.
 */
export function unifiedDiff(a: string[], b: string[], labels: { from: string; to: string }, context = 3): string[] {
  const ops = diffLines(a, b);
  if (ops.every((o) => o.op === ' ')) return [];
  const out = [`--- ${labels.from}`, `+++ ${labels.to}`];
  const changed = ops.map((o, k) => (o.op !== ' ' ? k : -1)).filter((k) => k >= 0);
  // Group changes whose context windows touch into one hunk.
  const hunks: [number, number][] = [];
  for (const k of changed) {
    const lo = Math.max(0, k - context);
    const hi = Math.min(ops.length - 1, k + context);
    const last = hunks[hunks.length - 1];
    if (last && lo <= last[1] + 1) last[1] = hi;
    else hunks.push([lo, hi]);
  }
  for (const [lo, hi] of hunks) {
    // Line numbers of each side at the hunk's start.
    let aLine = 1;
    let bLine = 1;
    for (let k = 0; k < lo; k++) {
      if (ops[k]!.op !== '+') aLine++;
      if (ops[k]!.op !== '-') bLine++;
    }
    const slice = ops.slice(lo, hi + 1);
    const aCount = slice.filter((o) => o.op !== '+').length;
    const bCount = slice.filter((o) => o.op !== '-').length;
    out.push(`@@ -${aCount ? aLine : aLine - 1},${aCount} +${bCount ? bLine : bLine - 1},${bCount} @@`);
    for (const o of slice) out.push(`${o.op}${o.line}`);
  }
  return out;
}

export interface StepDiffInput {
  host: string;
  /** Where the commands ran (delegate_to), when not the host. */
  on?: string;
  status: string;
  before?: unknown;
  after?: unknown;
  commands?: string[][];
}

/**
 * The block `--diff` prints under a step: for a change, before → after; for a would-change
 * (`--check --diff`), the state now and the commands that would change it. Empty otherwise.
 */
export function renderStepDiff(e: StepDiffInput, redact: (s: string) => string = (s) => s): string[] {
  const where = e.on ?? e.host;
  if (e.status === 'changed') {
    if (e.after === undefined) return [`(one-shot step: nothing to compare on ${where})`];
    const d = unifiedDiff(stateLines(e.before, redact), stateLines(e.after, redact), { from: `${where} before`, to: `${where} after` });
    return d.length ? d : [`(the probe saw the same state before and after on ${where})`];
  }
  if (e.status === 'would-change') {
    const now = stateLines(e.before, redact);
    // The state the change would replace; what it becomes is what the commands make of it.
    const lines = [`--- ${where} now`, ...now.map((l) => ` ${l}`)];
    if (e.commands?.length) lines.push(`+++ would run on ${where}`, ...e.commands.map((c) => `+$ ${redact(displayArgv(c))}`));
    return lines;
  }
  return [];
}
