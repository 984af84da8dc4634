/**
 * How `baton check` tells its result: the Nagios plugin convention on stdout (first line
 * `BATON CHECK STATUS - summary | perfdata`, details after, exit 0/1/2/3), one JSON document,
 * or a Prometheus textfile for node_exporter's textfile collector.
 */
import path from 'node:path';
import { writeFileAtomic as writeAtomic } from '../util/write-atomic.js';
import { EXIT_CODE, REACH_KIND, worstStatus, type CheckResult, type CheckStatus } from '../engine/check.js';

/** The version of the `--json` document's shape (schemas/events.json); bumped on a breaking change. */
export const CHECK_JSON_VERSION = 1;

export interface CheckReport {
  playbook: string;
  status: CheckStatus;
  exitCode: number;
  durationMs: number;
  /** Seconds since the epoch when the check started. */
  startedAt: number;
  results: CheckResult[];
  /** Why nothing could be checked (invalid input, nothing selected): the status is then UNKNOWN. */
  problem?: string;
  /** The detail of `problem` (every validation error), shown below the first line. */
  detail?: string;
}

/** Milliseconds to 0.1 ms and seconds to 0.1 ms: no float noise like 0.013800000000000002. */
export const roundMs = (ms: number): number => Math.round(ms * 10) / 10;
export const msToSeconds = (ms: number): number => Math.round(ms * 10) / 10_000;

/**
 * The report of a finished check. No result at all (a `-l`/`-t` that matched nothing) is
 * UNKNOWN: "nothing was checked" must never read as OK to cron or Nagios.
 */
export function makeReport(playbook: string, results: CheckResult[], durationMs: number, startedAt: number, selection?: string): CheckReport {
  if (results.length === 0) {
    const problem = `no check selected${selection ? ` by ${selection}` : ''}: nothing was checked`;
    return invalidReport(playbook, problem, undefined, durationMs, startedAt);
  }
  const status = worstStatus(results.map((r) => r.status));
  return { playbook, status, exitCode: EXIT_CODE[status], durationMs: roundMs(durationMs), startedAt, results };
}

/** A check that could not start (bad input, nothing selected): UNKNOWN, exit 3, no results. */
export function invalidReport(playbook: string, problem: string, detail: string | undefined, durationMs: number, startedAt: number): CheckReport {
  return { playbook, status: 'UNKNOWN', exitCode: EXIT_CODE.UNKNOWN, durationMs: roundMs(durationMs), startedAt, results: [], problem, ...(detail ? { detail } : {}) };
}

/** Nagios reads one line: no line breaks, and `|` starts the perfdata. */
function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' / ').replace(/\|/g, '/');
}

/** The check's label in the summary: its name, qualified by host when it ran on several. */
function label(r: CheckResult, multiHost: boolean): string {
  return r.kind === REACH_KIND ? r.host : multiHost ? `${r.label}@${r.host}` : r.label;
}

const ORDER: CheckStatus[] = ['CRITICAL', 'UNKNOWN', 'WARNING'];

/**
 * The first line stays under this many characters (Nagios shows it in lists and
 * notifications, many of which cut it); the full detail follows on the next lines.
 */
export const FIRST_LINE_MAX = 199;

/** Kinds whose OK message says where the service is (who holds the VIP): worth the first line. */
const HEADLINE_KINDS = new Set(['vip_holder']);

/**
 * The largest length cap such that the texts, each cut to it, and the `; ` between them fit
 * in `room` (short texts keep their length and leave their spare room to the long ones).
 */
function shareCap(lengths: number[], room: number): number {
  const budget = room - 2 * (lengths.length - 1);
  const sorted = [...lengths].sort((a, b) => a - b);
  let used = 0;
  for (let i = 0; i < sorted.length; i++) {
    const cap = Math.floor((budget - used) / (sorted.length - i));
    if (sorted[i]! <= cap) used += sorted[i]!;
    else return cap;
  }
  return Infinity;
}

/** Cut to `max` characters with an ellipsis. */
function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, Math.max(0, max - 1))}…`;
}

/**
 * Nagios' performance data label: in single quotes, a quote doubled; `=` is not allowed in a
 * label at all (it separates the value), so it becomes `_`.
 */
export function perfLabel(s: string): string {
  return `'${s.replace(/=/g, '_').replace(/'/g, "''").replace(/[\r\n|]/g, ' ')}'`;
}

/**
 * One perfdata pair per check: its status (0..3, warning at 1, critical at 2) and its duration
 * in seconds. A label may repeat (two loop items of one unnamed step): those get ` #2`.
 */
function perCheckPerf(rep: CheckReport, multi: (r: CheckResult) => boolean): string[] {
  const seen = new Map<string, number>();
  return rep.results.map((r) => {
    let l = label(r, multi(r));
    const n = (seen.get(l) ?? 0) + 1;
    seen.set(l, n);
    if (n > 1) l = `${l} #${n}`;
    return `${perfLabel(l)}=${STATUS_VALUE[r.status]};1;2;0;3 ${perfLabel(`${l} time`)}=${msToSeconds(r.durationMs)}s;;;0`;
  });
}

/**
 * Nagios plugin output (plugin API 3):
 *   BATON CHECK CRITICAL - vip_holder: 198.18.80.200 held by n1 and n2 (split brain); 7 OK | checks=9 critical=1 warning=0 unknown=0 duration=0.183s
 *   CRITICAL n1 vip_holder [vip_holder]: 198.18.80.200 held by n1 and n2 (split brain) (12 ms)
 *   | 'vip_holder'=2;1;2;0;3 'vip_holder time'=0.012s;;;0
 *   'ganesha@n1'=0;1;2;0;3 …
 * The first line is under 200 characters (problems beyond that are counted, not listed); one
 * line per non-OK check follows (every check with `verbose`), worst first; the per-check
 * perfdata comes last, after a `|`, where Nagios reads the rest of the performance data.
 */
export function formatNagios(rep: CheckReport, verbose = false): string {
  const by = (s: CheckStatus) => rep.results.filter((r) => r.status === s);
  const hostsPerStep = new Map<string, Set<string>>();
  for (const r of rep.results) (hostsPerStep.get(r.stepId) ?? hostsPerStep.set(r.stepId, new Set()).get(r.stepId)!).add(r.host);
  const multi = (r: CheckResult) => (hostsPerStep.get(r.stepId)?.size ?? 0) > 1;
  const bad = ORDER.flatMap(by);
  const ok = by('OK');
  const perf = [
    `checks=${rep.results.length}`,
    `critical=${by('CRITICAL').length}`,
    `warning=${by('WARNING').length}`,
    `unknown=${by('UNKNOWN').length}`,
    `duration=${(rep.durationMs / 1000).toFixed(3)}s`,
  ].join(' ');
  const head = `BATON CHECK ${rep.status} - `;
  const tail = ` | ${perf}`;
  const room = FIRST_LINE_MAX - head.length - tail.length;

  let summary: string;
  if (rep.problem) summary = clip(oneLine(rep.problem), room);
  else {
    const okPart = ok.length ? `${ok.length} OK` : '';
    const where = [...new Set(ok.filter((r) => HEADLINE_KINDS.has(r.kind)).map((r) => oneLine(r.message)))];
    // Problems first, worst first: as many as fit, each cut to an equal share of the room if
    // they do not all fit whole (no share under 40 characters: then fewer problems and
    // "+N more"), the OK count last, and who holds the VIP when that leaves the problems whole.
    // The detail lines below carry everything.
    const texts = bad.map((r) => `${label(r, multi(r))}: ${oneLine(r.summary ?? r.message)}`);
    const fit = (okText: string): { line: string; whole: boolean } => {
      const join = (shown: string[]) => {
        const rest = texts.length - shown.length;
        return [...shown, rest ? `+${rest} more` : '', okText].filter(Boolean).join('; ');
      };
      for (let k = texts.length; k >= 1; k--) {
        const tail = join(texts.slice(0, k)).length - texts.slice(0, k).join('; ').length;
        const cap = shareCap(texts.slice(0, k).map((t) => t.length), room - tail);
        if (cap < 40 && k > 1) continue;
        return { line: join(texts.slice(0, k).map((t) => clip(t, Math.max(10, cap)))), whole: k === texts.length && cap === Infinity };
      }
      return { line: join([]), whole: true };
    };
    const withWhere = fit([okPart, ...where].filter(Boolean).join('; '));
    summary = withWhere.whole || where.length === 0 ? withWhere.line : fit(okPart).line;
  }
  const lines = [clip(`${head}${summary}`, FIRST_LINE_MAX - tail.length) + tail];
  if (rep.detail) lines.push(...rep.detail.split('\n').map(oneLine));
  for (const r of [...bad, ...(verbose ? ok : [])]) {
    lines.push(`${r.status} ${r.host}${r.on ? ` (on ${r.on})` : ''} ${r.name} [${r.kind}]: ${oneLine(r.message)} (${Math.round(r.durationMs)} ms)`);
  }
  const checkPerf = perCheckPerf(rep, multi);
  if (checkPerf.length) lines.push(`| ${checkPerf[0]}`, ...checkPerf.slice(1));
  return lines.join('\n') + '\n';
}

/** `--json`: one document, versioned (`v`), described by schemas/events.json (`check` record). */
export function formatJson(rep: CheckReport): string {
  return (
    JSON.stringify({
      v: CHECK_JSON_VERSION,
      type: 'check',
      playbook: rep.playbook,
      status: rep.status,
      exitCode: rep.exitCode,
      durationMs: rep.durationMs,
      startedAt: rep.startedAt,
      ...(rep.problem ? { problem: rep.problem } : {}),
      ...(rep.detail ? { detail: rep.detail } : {}),
      checks: rep.results.map((r) => ({
        host: r.host,
        ...(r.on ? { on: r.on } : {}),
        kind: r.kind,
        name: r.name,
        step: r.instance,
        status: r.status,
        severity: r.severity,
        observed: r.observed,
        message: r.message,
        durationMs: roundMs(r.durationMs),
      })),
    }) + '\n'
  );
}

// ---------------------------------------------------------------- Prometheus text format

/** Label values escape backslash, double quote and line feed (the text exposition format). */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes backslash and line feed only. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labels(l: Record<string, string>): string {
  return `{${Object.entries(l)
    .map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
    .join(',')}}`;
}

/** The playbook label: its file name without directory or extension (`nfs-health`). */
export function playbookLabel(file: string): string {
  return path.basename(file).replace(/\.ya?ml$/i, '');
}

export const STATUS_VALUE: Record<CheckStatus, number> = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };

/** Numbers as Prometheus writes them (no exponent surprises for ordinary values). */
function num(n: number): string {
  return Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';
}

export function formatProm(rep: CheckReport): string {
  const pb = playbookLabel(rep.playbook);
  const out: string[] = [];
  const family = (name: string, help: string) => out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} gauge`);

  // Two loop items of one unnamed step could render the same name: keep every series distinct.
  const seen = new Map<string, number>();
  const series = rep.results.map((r) => {
    const l = { playbook: pb, host: r.host, check: r.kind, name: r.name };
    const key = JSON.stringify(l);
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (n > 1) l.name = `${r.name} #${n}`;
    return { r, l };
  });

  // No per-check family at all when nothing was checked (invalid input): no empty families.
  if (series.length) {
    family('baton_check_status', 'Result of one baton check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.');
    for (const { r, l } of series) out.push(`baton_check_status${labels(l)} ${STATUS_VALUE[r.status]}`);
    family('baton_check_step_duration_seconds', 'Time one baton check took, probe and judgement.');
    for (const { r, l } of series) out.push(`baton_check_step_duration_seconds${labels(l)} ${num(msToSeconds(r.durationMs))}`);
  }
  family('baton_check_overall_status', 'Worst status of the run (the exit code): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.');
  out.push(`baton_check_overall_status${labels({ playbook: pb })} ${STATUS_VALUE[rep.status]}`);
  family('baton_check_duration_seconds', 'Wall time of the whole baton check run, connections included.');
  out.push(`baton_check_duration_seconds${labels({ playbook: pb })} ${num(msToSeconds(rep.durationMs))}`);
  family('baton_check_last_run_timestamp_seconds', 'When the baton check run started, in seconds since the epoch.');
  out.push(`baton_check_last_run_timestamp_seconds${labels({ playbook: pb })} ${num(Math.round(rep.startedAt * 1000) / 1000)}`);
  return out.join('\n') + '\n';
}

/**
 * The textfile for node_exporter, never seen half written; its directory must exist (a mistyped
 * `--prom` directory is an error, not a new directory no collector reads).
 */
export function writeFileAtomic(file: string, content: string): void {
  writeAtomic(file, content, { createDir: false });
}
