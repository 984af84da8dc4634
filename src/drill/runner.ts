/**
 * `baton drill`: run a playbook (and optionally a failback) as `run --yes` does, while probes
 * read through the service as a client would; then measure what the client saw.
 *
 * Exit codes (documented in `baton drill --help` and the README):
 *   0  passed: playbooks succeeded, every probe's outage within --max-outage, same bytes throughout
 *   1  failed: a limit was broken (outage, data) or a playbook failed and was rolled back
 *   2  invalid input (playbook, inventory, vars, --probe, --max-outage …): nothing was touched
 *   3  a playbook failed and its changes are still in place (see its journal; `baton undo`)
 *   4  a host could not be reached (nothing was changed by that playbook)
 *   5  the service's lock is held by another run
 */
import { drillNow } from './clock.js';
import path from 'node:path';
import { BatonError, ExitCode } from '../util/errors.js';
import type { EngineEvent } from '../engine/events.js';
import { loadInputs, type CommonOptions, type Inputs } from '../cli/inputs.js';
import { runSession, secretsOf } from '../engine/session.js';
import { makeReporter } from '../report/make.js';
import { JunitCollector, writeJunit, type JunitSuite } from '../report/junit.js';
import { writeFileAtomic } from '../util/write-atomic.js';
import { checkIntegrity } from './integrity.js';
import { notBackOf, outageWindows, parseDuration, totalOutageMs } from './outage.js';
import { ReadProbe, type Prober } from './probe.js';
import { formatDrillSummary, probePhases, probesSuite, type DrillPlaybookResult, type DrillProbeResult, type DrillReport } from './report.js';
import { nfsCatArgv, parseProbeSpec, type ProbeSpec } from './spec.js';
import { tcpProbe } from './tcp-probe.js';
import { iscsiProbe } from './iscsi-probe.js';
import { TimelineCollector } from './timeline.js';

export interface DrillOptions extends CommonOptions {
  then?: string;
  /** `--then-e`: vars for the --then playbook, over the -e ones. */
  thenExtraVars?: string[];
  /** `--then-after`: pause before --then, once the probes read well after the first playbook. */
  thenAfter?: string;
  probe?: string[];
  probeFrom?: string;
  interval?: string;
  maxOutage?: string;
  readTimeout?: string;
  warmup?: string;
  settle?: string;
  junit?: string;
  html?: string;
  force?: boolean;
  acceptNew?: boolean;
}

function duration(name: string, text: string | undefined, dflt: number): number {
  if (text === undefined) return dflt;
  const ms = parseDuration(text);
  if (ms === undefined) throw new BatonError(`${name} ${text}: not a duration (e.g. 50, 300ms, 5s)`, ExitCode.INVALID);
  return ms;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The network namespace of `--probe-from HOST`: the inventory's `lab_netns` var of that host. */
function probeNetns(inputs: Inputs, from: string | undefined): string | undefined {
  if (!from) return undefined;
  const host = inputs.inventory.hosts.get(from);
  if (!host) throw new BatonError(`--probe-from ${from}: no such host in the inventory`, ExitCode.INVALID);
  const ns = host.vars.lab_netns;
  if (typeof ns !== 'string' || !ns) {
    throw new BatonError(`--probe-from ${from}: the host has no lab_netns var (the network namespace to probe from; \`baton lab up\` sets it on lab clients)`, ExitCode.INVALID);
  }
  return ns;
}

function makeProber(spec: ProbeSpec, netns: string | undefined, intervalMs: number, timeoutMs: number): Prober {
  if (spec.kind === 'nfs') return new ReadProbe({ argv: nfsCatArgv(spec, netns), intervalMs, readTimeoutMs: timeoutMs });
  if (spec.kind === 'iscsi') return iscsiProbe({ ...spec, intervalMs, readTimeoutMs: timeoutMs, netns });
  return tcpProbe({ host: spec.host, port: spec.port, intervalMs, connectTimeoutMs: timeoutMs, netns });
}

/** Wait until every probe has `n` samples after `since` (and, with `good`, its last one is good); at most `maxMs`. */
async function waitForReads(probers: Prober[], since: number, n: number, maxMs: number, good: boolean): Promise<void> {
  const until = drillNow() + maxMs;
  while (drillNow() < until) {
    const ready = probers.every((p) => {
      const after = p.samples.filter((s) => s.t >= since);
      return after.length >= n && (!good || after[after.length - 1]!.ok);
    });
    if (ready) return;
    await sleep(25);
  }
}

/** Relative to where the drill was started when below it, else absolute. */
function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

function outcomeOfError(e: unknown): string {
  const code = (e as BatonError).exitCode;
  return code === ExitCode.UNREACHABLE ? 'unreachable' : code === ExitCode.LOCKED ? 'locked' : 'error';
}

export async function drillCommand(playbookFile: string, o: DrillOptions): Promise<number> {
  // Everything is checked before any probe starts or any node is touched: bad input is exit 2.
  const specs = (o.probe ?? []).map(parseProbeSpec);
  if (!specs.length) throw new BatonError('a drill needs at least one --probe (nfs://HOST/PATH?version=4, tcp://HOST:PORT or iscsi://HOST/IQN/LUN)', ExitCode.INVALID);
  const intervalMs = duration('--interval', o.interval, 50);
  if (intervalMs < 1) throw new BatonError('--interval must be at least 1 ms', ExitCode.INVALID);
  const readTimeoutMs = duration('--read-timeout', o.readTimeout, 300);
  const warmupMs = duration('--warmup', o.warmup, 1000);
  const settleMs = duration('--settle', o.settle, 10_000);
  const maxOutageMs = o.maxOutage === undefined ? undefined : duration('--max-outage', o.maxOutage, 0);
  const thenAfterMs = duration('--then-after', o.thenAfter, 2000);

  const main = loadInputs(playbookFile, o);
  const thenInputs = o.then ? loadInputs(o.then, { ...o, extraVars: [...(o.extraVars ?? []), ...(o.thenExtraVars ?? [])] }) : undefined;
  await main.registry.ensureLoaded();
  await thenInputs?.registry.ensureLoaded();
  const netns = probeNetns(main, o.probeFrom);

  const runs: { role: 'playbook' | 'then'; inputs: Inputs }[] = [{ role: 'playbook', inputs: main }];
  if (thenInputs) runs.push({ role: 'then', inputs: thenInputs });

  const redactors = runs.map((r) => secretsOf(r.inputs));
  const redactAll = (s: string) => redactors.reduce((t, r) => r.redact(t), s);
  const timeline = new TimelineCollector(drillNow, redactAll);
  const suites: JunitSuite[] = [];
  const results: DrillPlaybookResult[] = [];

  const startedAt = drillNow();
  const probers = specs.map((s) => makeProber(s, netns, intervalMs, readTimeoutMs));
  probers.forEach((p) => p.start());
  let report: DrillReport | undefined;
  try {
    // A baseline: every probe has read at least once, and well, before anything changes.
    await sleep(warmupMs);
    await waitForReads(probers, startedAt, 1, 5000, false);

    let stop = false;
    for (const [i, r] of runs.entries()) {
      const redactor = redactors[i]!;
      const label = `${path.basename(r.inputs.playbookFile)} (${r.role})`;
      const result: DrillPlaybookResult = {
        role: r.role,
        file: displayPath(r.inputs.playbookFile),
        extraVars: redactor.maskArgs(r.inputs.extraVars, Object.keys(r.inputs.extraVars).filter((k) => redactor.redact(String(r.inputs.extraVars[k])) !== String(r.inputs.extraVars[k]))) as Record<string, unknown>,
        outcome: 'not-run',
        exitCode: 0,
        start: drillNow(),
        end: drillNow(),
      };
      results.push(result);
      if (stop) continue;
      if (i > 0) {
        // Keep the failback's outage apart from the failover's: first let the client read well
        // again (at most --settle), then --then-after more, so each move is its own window.
        await waitForReads(probers, results[i - 1]!.end, 2, settleMs, true);
        await sleep(thenAfterMs);
        result.start = drillNow();
      }
      timeline.playbook = i;
      const junit = new JunitCollector({ redactor, suiteName: label });
      const onEvent = (e: EngineEvent) => {
        timeline.onEvent(e);
        junit.onEvent(e);
      };
      try {
        const run = await runSession(r.inputs, { ...o, check: false, step: false }, { reporter: await makeReporter({ json: o.json }), redactor, onEvent });
        result.outcome = run.summary.outcome;
        result.exitCode = run.exitCode;
        result.runId = run.summary.runId;
        if (run.summary.failures.length) result.error = redactor.redact(run.summary.failures.join('\n'));
      } catch (e) {
        if (!(e instanceof BatonError)) throw e;
        result.outcome = outcomeOfError(e);
        result.exitCode = e.exitCode;
        result.error = redactor.redact(e.message);
        junit.addError(label, result.error, e.name);
      }
      result.end = drillNow();
      suites.push(...junit.suites);
      // A failback after a failed move would test nothing and might make things worse.
      if (result.exitCode !== 0) stop = true;
    }

    const ran = results.filter((r) => r.outcome !== 'not-run');
    const playbooksStart = ran[0]?.start ?? drillNow();
    const playbooksEnd = ran[ran.length - 1]?.end ?? drillNow();
    // Let the client come back: until each probe has read well twice, at most --settle.
    await waitForReads(probers, playbooksEnd, 2, settleMs, true);
    await sleep(Math.min(500, settleMs));
    const all = await Promise.all(probers.map((p) => p.stop()));
    const endedAt = drillNow();

    const probes: DrillProbeResult[] = specs.map((spec, i) => {
      const samples = all[i]!;
      const windows = outageWindows(samples);
      const total = totalOutageMs(windows);
      return {
        label: spec.label,
        kind: spec.kind,
        ...(o.probeFrom ? { from: o.probeFrom } : {}),
        reads: samples.length,
        failed: samples.filter((s) => !s.ok).length,
        samples,
        windows,
        totalOutageMs: total,
        ...(spec.kind === 'nfs' || spec.kind === 'iscsi' ? { integrity: checkIntegrity(samples, playbooksStart, playbooksEnd) } : {}),
        outageOverLimit: maxOutageMs !== undefined && total > maxOutageMs,
        ...notBackOf(samples, windows, playbooksEnd),
        perPlaybook: probePhases(results, windows),
      };
    });

    const reasons: string[] = [];
    for (const r of results) if (r.exitCode !== 0) reasons.push(`${r.role} ${r.file}: ${r.outcome} (exit ${r.exitCode})`);
    for (const p of probes) {
      if (p.outageOverLimit) reasons.push(`${p.label}: outage ${p.totalOutageMs} ms exceeds --max-outage ${maxOutageMs} ms`);
      if (p.integrity && !p.integrity.ok) reasons.push(`${p.label}: data check failed: ${p.integrity.reason}`);
      if (p.notBack) reasons.push(`${p.label}: ${p.notBack}`);
    }
    const severe = results.find((r) => r.exitCode === ExitCode.FAILED_NOT_ROLLED_BACK || r.exitCode === ExitCode.UNREACHABLE || r.exitCode === ExitCode.LOCKED);
    const exitCode = severe ? severe.exitCode : reasons.length ? ExitCode.FAILED_ROLLED_BACK : ExitCode.OK;
    report = {
      type: 'drill',
      startedAt,
      endedAt,
      verdict: exitCode === 0 ? 'pass' : 'fail',
      exitCode,
      reasons,
      ...(maxOutageMs !== undefined ? { maxOutageMs } : {}),
      intervalMs,
      ...(thenInputs ? { thenAfterMs } : {}),
      playbooks: results,
      probes,
      bars: timeline.bars,
    };
  } finally {
    // On an unexpected error the probes must not outlive the drill (the tcp helper is a child process).
    if (!report) await Promise.all(probers.map((p) => p.stop()));
  }

  if (o.junit) writeJunit(o.junit, [...suites, probesSuite(report)], `baton drill ${path.basename(playbookFile)}`);
  if (o.html) {
    const { renderDrillHtml } = await import('../report/html.js');
    writeFileAtomic(o.html, renderDrillHtml(report));
  }
  if (o.json) process.stdout.write(JSON.stringify({ v: 1, ...report }) + '\n');
  else process.stdout.write(formatDrillSummary(report) + '\n');
  return report.exitCode;
}
