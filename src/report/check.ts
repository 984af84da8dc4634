/**
 * How `baton check` tells its result: the Nagios plugin convention on stdout (first line
 * `BATON CHECK STATUS - summary | perfdata`, details after, exit 0/1/2/3), one JSON document,
 * or a Prometheus textfile for node_exporter's textfile collector.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { EXIT_CODE, worstStatus, type CheckResult, type CheckStatus } from '../engine/check.js';

export interface CheckReport {
  playbook: string;
  status: CheckStatus;
  exitCode: number;
  durationMs: number;
  /** Seconds since the epoch when the check started. */
  startedAt: number;
  results: CheckResult[];
}

export function makeReport(playbook: string, results: CheckResult[], durationMs: number, startedAt: number): CheckReport {
  const status = worstStatus(results.map((r) => r.status));
  return { playbook, status, exitCode: EXIT_CODE[status], durationMs, startedAt, results };
}

/** Nagios reads one line: no line breaks, and `|` starts the perfdata. */
function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' / ').replace(/\|/g, '/');
}

/** The check's label in the summary: its name, qualified by host when it ran on several. */
function label(r: CheckResult, multiHost: boolean): string {
  return multiHost ? `${r.label}@${r.host}` : r.label;
}

const ORDER: CheckStatus[] = ['CRITICAL', 'UNKNOWN', 'WARNING'];

/**
 * `BATON CHECK CRITICAL - vip_holder: 198.18.80.200 held by n1 and n2 (split brain); 7 OK | checks=9 critical=1 warning=0 unknown=0 duration=0.183s`
 * then one line per non-OK check (every check with `verbose`), worst first.
 */
export function formatNagios(rep: CheckReport, verbose = false): string {
  const by = (s: CheckStatus) => rep.results.filter((r) => r.status === s);
  const hostsPerStep = new Map<string, Set<string>>();
  for (const r of rep.results) (hostsPerStep.get(r.stepId) ?? hostsPerStep.set(r.stepId, new Set()).get(r.stepId)!).add(r.host);
  const multi = (r: CheckResult) => (hostsPerStep.get(r.stepId)?.size ?? 0) > 1;
  const bad = ORDER.flatMap(by);
  const ok = by('OK').length;
  const parts = bad.map((r) => `${label(r, multi(r))}: ${oneLine(r.message)}`);
  if (ok) parts.push(`${ok} OK`);
  const summary = rep.results.length === 0 ? 'no checks selected' : parts.join('; ');
  const perf = [
    `checks=${rep.results.length}`,
    `critical=${by('CRITICAL').length}`,
    `warning=${by('WARNING').length}`,
    `unknown=${by('UNKNOWN').length}`,
    `duration=${(rep.durationMs / 1000).toFixed(3)}s`,
  ].join(' ');
  const lines = [`BATON CHECK ${rep.status} - ${summary} | ${perf}`];
  for (const r of [...bad, ...(verbose ? by('OK') : [])]) {
    lines.push(`${r.status} ${r.host}${r.on ? ` (on ${r.on})` : ''} ${r.name} [${r.kind}]: ${oneLine(r.message)} (${Math.round(r.durationMs)} ms)`);
  }
  return lines.join('\n') + '\n';
}

export function formatJson(rep: CheckReport): string {
  return (
    JSON.stringify({
      playbook: rep.playbook,
      status: rep.status,
      exitCode: rep.exitCode,
      durationMs: rep.durationMs,
      startedAt: rep.startedAt,
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
        durationMs: r.durationMs,
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

  family('baton_check_status', 'Result of one baton check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.');
  for (const { r, l } of series) out.push(`baton_check_status${labels(l)} ${STATUS_VALUE[r.status]}`);
  family('baton_check_step_duration_seconds', 'Time one baton check took, probe and judgement.');
  for (const { r, l } of series) out.push(`baton_check_step_duration_seconds${labels(l)} ${num(r.durationMs / 1000)}`);
  family('baton_check_overall_status', 'Worst status of the run (the exit code): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.');
  out.push(`baton_check_overall_status${labels({ playbook: pb })} ${STATUS_VALUE[rep.status]}`);
  family('baton_check_duration_seconds', 'Wall time of the whole baton check run, connections included.');
  out.push(`baton_check_duration_seconds${labels({ playbook: pb })} ${num(rep.durationMs / 1000)}`);
  family('baton_check_last_run_timestamp_seconds', 'When the baton check run started, in seconds since the epoch.');
  out.push(`baton_check_last_run_timestamp_seconds${labels({ playbook: pb })} ${num(Math.round(rep.startedAt * 1000) / 1000)}`);
  return out.join('\n') + '\n';
}

/**
 * Write so that a reader (node_exporter's textfile collector) never sees half a file: a
 * temporary file in the same directory (rename is atomic only within one filesystem),
 * fsync'd, renamed over the target, then the directory fsync'd so the rename survives a crash.
 */
export function writeFileAtomic(file: string, content: string): void {
  const tmp = `${file}.tmp.${process.pid}`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  try {
    const dfd = openSync(path.dirname(path.resolve(file)), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is done.
  }
}
