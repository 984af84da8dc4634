/**
 * What a drill found, in one JSON-serialisable shape: the `--json` closing line, the human
 * summary, the probes' JUnit suite and the HTML report are all made from it.
 */
import type { JunitSuite } from '../report/junit.js';
import type { IntegrityResult } from './integrity.js';
import type { OutageWindow } from './outage.js';
import type { ProbeSample } from './probe.js';
import type { StepBar } from './timeline.js';

export interface DrillPlaybookResult {
  /** `playbook` or `then`. */
  role: 'playbook' | 'then';
  file: string;
  extraVars: Record<string, unknown>;
  runId?: string;
  /** succeeded, failed-rolled-back, failed-not-rolled-back, unreachable, locked, not-run. */
  outcome: string;
  exitCode: number;
  start: number;
  end: number;
  error?: string;
}

export interface DrillProbeResult {
  label: string;
  kind: 'nfs' | 'tcp' | 'iscsi';
  /** Inventory host whose network namespace the probe ran in. */
  from?: string;
  reads: number;
  failed: number;
  samples: ProbeSample[];
  windows: OutageWindow[];
  totalOutageMs: number;
  /** Reads only: were the bytes the same throughout. */
  integrity?: IntegrityResult;
  /** Its total outage is over --max-outage. */
  outageOverLimit: boolean;
  /**
   * Why the client is not seen reading well at the end, when it is not: still failing when
   * probing stopped, or no read at all after the last playbook (the probe itself stopped). A
   * drill whose service did not come back fails, whatever --max-outage says.
   */
  notBack?: string;
  /** Its windows by the playbook during (or after) which each began: one entry per playbook that ran. */
  perPlaybook?: ProbePhase[];
}

/** A probe's outage during one playbook of the drill (the failover, or the --then failback). */
export interface ProbePhase {
  role: 'playbook' | 'then';
  /** What moved where, e.g. `n1 → n2`. */
  direction: string;
  /** Indexes into the probe's windows. */
  windows: number[];
  outageMs: number;
}

export interface DrillReport {
  type: 'drill';
  startedAt: number;
  endedAt: number;
  verdict: 'pass' | 'fail';
  exitCode: number;
  /** Why the verdict is fail, one line each. */
  reasons: string[];
  maxOutageMs?: number;
  intervalMs: number;
  /** --then-after: the pause between the first playbook (once the probes read well) and --then. */
  thenAfterMs?: number;
  playbooks: DrillPlaybookResult[];
  probes: DrillProbeResult[];
  bars: StepBar[];
}

const sec = (ms: number) => `${(ms / 1000).toFixed(3)} s`;

const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

/**
 * What a playbook moved, from its extra vars: `n1 → n2` for from/to (the shipped moves), `on n1`
 * for start/stop, else its vars as key=value; empty without vars.
 */
export function directionOf(p: Pick<DrillPlaybookResult, 'extraVars'>): string {
  const v = p.extraVars;
  if (v.from !== undefined && v.to !== undefined) return `${show(v.from)} → ${show(v.to)}`;
  if (v.on !== undefined) return `on ${show(v.on)}`;
  return Object.entries(v)
    .map(([k, x]) => `${k}=${show(x)}`)
    .join(' ');
}

/**
 * Which playbook each window belongs to: the last one that had started when the window opened
 * (a client notices a move while it runs or just after it ends). Windows opened before any
 * playbook started belong to none.
 */
export function probePhases(playbooks: DrillPlaybookResult[], windows: OutageWindow[]): ProbePhase[] {
  const ran = playbooks.filter((p) => p.outcome !== 'not-run');
  return ran.map((p, i) => {
    const next = ran[i + 1]?.start ?? Infinity;
    const mine = windows.flatMap((w, wi) => (w.start >= p.start && w.start < next ? [wi] : []));
    return { role: p.role, direction: directionOf(p), windows: mine, outageMs: mine.reduce((n, wi) => n + windows[wi]!.ms, 0) };
  });
}

/** `during playbook (n1 → n2)` for a window, or '' when it opened before any playbook. */
export function windowPhaseLabel(phases: ProbePhase[] | undefined, windowIndex: number): string {
  const ph = phases?.find((x) => x.windows.includes(windowIndex));
  return ph ? `${ph.role}${ph.direction ? ` (${ph.direction})` : ''}` : '';
}

export function formatDrillSummary(r: DrillReport): string {
  const lines: string[] = ['', 'DRILL'];
  for (const p of r.playbooks) {
    const dir = directionOf(p);
    // The vars the direction does not already say (from/to/on), e.g. a service group.
    const said = dir.includes('=') ? [] : ['from', 'to', 'on'];
    const vars = Object.entries(p.extraVars)
      .filter(([k]) => !said.includes(k))
      .map(([k, v]) => `${k}=${show(v)}`)
      .join(' ');
    lines.push(`  ${p.role.padEnd(8)} ${p.file}${dir ? ` ${dir}` : ''}${vars ? ` (${vars})` : ''}: ${p.outcome}, exit ${p.exitCode}` + (p.outcome === 'not-run' ? '' : `, ${sec(p.start - r.startedAt)} → ${sec(p.end - r.startedAt)}`));
    if (p.error) lines.push(`           ${p.error.split('\n').join('\n           ')}`);
  }
  for (const p of r.probes) {
    lines.push(`  probe    ${p.label}${p.from ? ` from ${p.from}` : ''}: ${p.reads} reads, ${p.failed} failed, outage ${p.totalOutageMs} ms in ${p.windows.length} window(s)` + (p.outageOverLimit ? ` — OVER the limit of ${r.maxOutageMs} ms` : ''));
    p.windows.forEach((w, wi) => {
      const during = windowPhaseLabel(p.perPlaybook, wi);
      lines.push(
        `           ${sec(w.start - r.startedAt)} → ${sec(w.end - r.startedAt)}  ${w.ms} ms, ${w.failedReads} failed read(s)${during ? `, during ${during}` : ''}${w.open ? ' (still failing when probing stopped)' : ''}`,
      );
    });
    if (p.integrity) {
      const i = p.integrity;
      lines.push(i.ok ? `           data: same bytes before, during and after (sha256 ${i.before?.slice(0, 16)}…)` : `           data: DIFFERS — ${i.reason}`);
    }
  }
  lines.push('', r.verdict === 'pass' ? `drill passed (${sec(r.endedAt - r.startedAt)}, exit 0)` : `drill FAILED (exit ${r.exitCode}):`);
  for (const why of r.reasons) lines.push(`  - ${why}`);
  return lines.join('\n');
}

/** The `probes` suite of a drill's JUnit: one test case per probe, failing on a broken limit or different data. */
export function probesSuite(r: DrillReport): JunitSuite {
  const props: Record<string, string | number> = { interval_ms: r.intervalMs };
  if (r.maxOutageMs !== undefined) props.max_outage_ms = r.maxOutageMs;
  r.probes.forEach((p, i) => {
    props[`probe.${i}.url`] = p.label;
    props[`probe.${i}.outage_ms`] = p.totalOutageMs;
    props[`probe.${i}.windows`] = p.windows.length;
    for (const ph of p.perPlaybook ?? []) {
      props[`probe.${i}.${ph.role}.outage_ms`] = ph.outageMs;
      props[`probe.${i}.${ph.role}.windows`] = ph.windows.length;
    }
  });
  if (r.thenAfterMs !== undefined) props.then_after_ms = r.thenAfterMs;
  props.outage_ms = Math.max(0, ...r.probes.map((p) => p.totalOutageMs));
  return {
    name: 'probes',
    timestamp: r.startedAt,
    timeMs: r.endedAt - r.startedAt,
    properties: props,
    cases: r.probes.map((p) => {
      const problems: string[] = [];
      if (p.outageOverLimit) problems.push(`outage ${p.totalOutageMs} ms exceeds --max-outage ${r.maxOutageMs} ms`);
      if (p.integrity && !p.integrity.ok) problems.push(`data differs: ${p.integrity.reason}`);
      if (p.notBack) problems.push(p.notBack);
      const out = [
        `${p.reads} reads, ${p.failed} failed, ${p.windows.length} window(s), total ${p.totalOutageMs} ms`,
        ...p.windows.map((w, wi) => {
          const during = windowPhaseLabel(p.perPlaybook, wi);
          return `window ${sec(w.start - r.startedAt)} → ${sec(w.end - r.startedAt)}: ${w.ms} ms${during ? `, during ${during}` : ''}${w.open ? ' (open)' : ''}`;
        }),
      ].join('\n');
      return {
        classname: `probes/${p.from ?? 'controller'}`,
        name: p.label,
        timeMs: p.totalOutageMs,
        systemOut: out,
        ...(problems.length ? { failure: { message: problems.join('; '), type: 'DrillLimit', body: problems.join('\n') + '\n' + out } } : {}),
      };
    }),
  };
}
