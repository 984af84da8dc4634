import type { Host, Inventory } from '../inventory/model.js';
import type { Play, Playbook, StepSpec } from '../playbook/model.js';
import type { StepKind } from '../steps/contract.js';
import type { StepRegistry } from '../steps/registry.js';
import { isCheckKind, type Severity } from '../steps/check/common.js';
import { render } from '../playbook/template.js';
import { allHold } from '../playbook/conditions.js';
import { mapLimit } from '../util/limit.js';
import { expandPlays, type PlayItem } from './expand.js';
import { expandStep } from './instances.js';
import { checkRenderedArgs } from './args-check.js';
import { makeStepContext, type TransportSource } from './context.js';
import { UnreachableError, type Transport } from '../transport/transport.js';
import { describeError } from './errors.js';
import { tagSelected, type TagFilter } from './tags.js';

/**
 * `baton check`: every selected step on every host is probed and judged, and nothing else.
 * No apply, no lock, no journal: a health playbook can run from cron every minute beside a
 * failover in progress. Unlike `run`, steps do not wait for each other (nothing changes, so no
 * order matters): all checks start at once, bounded by `forks`, so the wall time is the
 * slowest check, not the sum.
 *
 * Status of one check: satisfied → OK; not satisfied → its severity (check kinds' `severity`
 * argument, default critical; ordinary kinds like `mount` in a health playbook → critical);
 * probe threw, timed out, or the host could not be reached → UNKNOWN (CRITICAL for an
 * unreachable host when the play sets `check_unreachable: critical`).
 */
export type CheckStatus = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN';

export interface CheckResult {
  play: number;
  host: string;
  /** Where it ran when delegated. */
  on?: string;
  kind: string;
  stepId: string;
  instance: string;
  /** The step's name rendered, else its summary. */
  name: string;
  /** Short label for the one-line summary: the step's name if it has one, else its kind. */
  label: string;
  status: CheckStatus;
  severity: Severity;
  observed?: unknown;
  message: string;
  /** A shorter message for one-line summaries, when `message` is long by nature. */
  summary?: string;
  durationMs: number;
}

export interface CheckOptions {
  playbook: Playbook;
  inventory: Inventory;
  extraVars: Record<string, unknown>;
  registry: StepRegistry;
  pool: TransportSource;
  filter?: TagFilter;
  limit?: string;
  /** Hosts that could not be connected up front, with why. */
  unreachable?: Map<string, string>;
  /** Bound of one check when the step sets no `timeout` (default 10 s). */
  defaultTimeoutMs?: number;
  /** Checks in flight at once (default 32). */
  concurrency?: number;
}

/** The pseudo check that stands for every check of a host that could not be reached. */
export const REACH_KIND = 'reach';

export const DEFAULT_CHECK_TIMEOUT_MS = 10_000;

/** Nagios severity order for the overall result: OK < WARNING < UNKNOWN < CRITICAL. */
const RANK: Record<CheckStatus, number> = { OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3 };

export function worstStatus(statuses: Iterable<CheckStatus>): CheckStatus {
  let worst: CheckStatus = 'OK';
  for (const s of statuses) if (RANK[s] > RANK[worst]) worst = s;
  return worst;
}

/** The Nagios plugin exit code of a status. */
export const EXIT_CODE: Record<CheckStatus, number> = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };

interface Job {
  play: Play;
  playIndex: number;
  step: StepSpec;
  host: Host;
  vars: Record<string, unknown>;
  instance: string;
  /** Could not decide whether to check at all (a `when` or `loop` that does not evaluate). */
  error?: string;
  /**
   * run_once: the same check planned on each host of the play, in order; it runs on the first
   * one that can be reached (this job is the first of them).
   */
  alternatives?: Job[];
}

/** `check_unreachable: critical` in the play's vars, or `-e check_unreachable=critical` (extra vars win). */
function unreachableStatus(play: Play, extraVars: Record<string, unknown> = {}): CheckStatus {
  return String(extraVars.check_unreachable ?? play.vars.check_unreachable ?? '').toLowerCase() === 'critical' ? 'CRITICAL' : 'UNKNOWN';
}

/** Every (step, host, loop item) to check, in playbook order; `when` false → not a check. */
function plan(o: CheckOptions, kinds: Set<string>): Job[] {
  const jobs: Job[] = [];
  for (const e of expandPlays(o.playbook, o.inventory, o.extraVars, o.limit)) {
    for (const unit of e.units) planUnit(e.play, e.index, unit.hosts, unit.item);
  }
  return jobs;

  function planUnit(play: Play, p: number, hostNames: string[], item: PlayItem | undefined): void {
    for (const step of play.steps) {
      if (!tagSelected(step.tags, o.filter ?? {})) continue;
      kinds.add(step.kind);
      // run_once: one instance, on the first host that can be reached (decided when it runs:
      // planned on every candidate, the later ones kept as alternatives of the first).
      const candidates = step.runOnce ? hostNames.filter((h) => !o.unreachable?.has(h)) : hostNames;
      const targets = step.runOnce && candidates.length === 0 ? hostNames.slice(0, 1) : candidates;
      const firstJob = jobs.length;
      for (const name of targets) {
        const host = o.inventory.hosts.get(name)!;
        const expansion = expandStep(play, step, host, item, { inventory: o.inventory, extraVars: o.extraVars, registered: {}, playHosts: hostNames });
        const add = (vars: Record<string, unknown>, instance: string) => {
          try {
            if (allHold(step.when, vars)) jobs.push({ play, playIndex: p, step, host, vars, instance });
          } catch (e) {
            jobs.push({ play, playIndex: p, step, host, vars, instance, error: `when: ${describeError(e)}` });
          }
        };
        if ('loopError' in expansion) {
          const { thrown, got } = expansion.loopError;
          const why = thrown !== undefined ? describeError(thrown) : `expected a list, got ${JSON.stringify(got)}`;
          jobs.push({ play, playIndex: p, step, host, vars: expansion.base, instance: expansion.id, error: `loop: ${why}` });
          continue;
        }
        for (const { vars, instance } of expansion.instances) add(vars, instance);
      }
      if (step.runOnce && jobs.length - firstJob > 1) {
        // Keep one job per instance (loop item) with the other hosts' versions as alternatives.
        const planned = jobs.splice(firstJob);
        const perHost = new Map<string, Job[]>();
        for (const j of planned) (perHost.get(j.host.name) ?? perHost.set(j.host.name, []).get(j.host.name)!).push(j);
        const [first, ...others] = [...perHost.values()];
        first!.forEach((j, i) => jobs.push({ ...j, alternatives: [j, ...others.map((js) => js[i]).filter((x): x is Job => !!x)] }));
      }
    }
  }
}

function nameOf(step: StepSpec, vars: Record<string, unknown>, kind: StepKind | undefined, args: unknown): string {
  if (step.name) {
    try {
      return String(render(step.name, vars));
    } catch {
      return step.name;
    }
  }
  try {
    return kind && args !== undefined ? kind.describe(args).summary : step.kind;
  } catch {
    return step.kind;
  }
}

/** The message of an unsatisfied ordinary kind: what was wanted, what was seen. */
function plainProblem(kind: StepKind, args: unknown, observed: unknown): string {
  const seen = JSON.stringify(observed);
  return `not as wanted (${kind.describe(args).summary}); seen: ${seen.length > 300 ? `${seen.slice(0, 300)}…` : seen}`;
}

async function checkOne(o: CheckOptions, job: Job): Promise<CheckResult> {
  const t0 = performance.now();
  const { step, host, vars } = job;
  const kind = o.registry.get(step.kind)!;
  let args: unknown;
  let on = host.name;
  const result = (status: CheckStatus, message: string, severity: Severity, observed?: unknown): CheckResult => ({
    play: job.playIndex,
    host: host.name,
    ...(on !== host.name ? { on } : {}),
    kind: step.kind,
    stepId: step.id,
    instance: job.instance,
    name: nameOf(step, vars, kind, args),
    label: step.name ? nameOf(step, vars, kind, args) : step.kind,
    status,
    severity,
    ...(observed !== undefined ? { observed } : {}),
    message,
    durationMs: Math.round((performance.now() - t0) * 10) / 10,
  });
  if (job.error) return result('UNKNOWN', job.error, 'critical');
  try {
    args = render(step.args, vars);
    if (step.delegateTo) on = String(render(step.delegateTo, vars));
  } catch (e) {
    return result('UNKNOWN', `arguments: ${describeError(e)}`, 'critical');
  }
  const severity: Severity = (args as { severity?: Severity } | null)?.severity ?? 'critical';
  const problem = checkRenderedArgs(o.registry, step.kind, args);
  if (problem) return result('UNKNOWN', `arguments after templating: ${problem}`, severity);
  const down = kind.fromController ? undefined : o.unreachable?.get(on);
  if (down !== undefined) return result(unreachableStatus(job.play, o.extraVars), `cannot reach ${on}: ${down}`, severity);

  const timeoutMs = step.timeoutS ? step.timeoutS * 1000 : (o.defaultTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS);
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    const transport = kind.fromController ? unusedConnection(on) : await o.pool.get(on);
    const ctx = makeStepContext({ host, transport, inventory: o.inventory, pool: o.pool, vars, force: false, timeoutMs, signal: abort.signal, log: () => undefined });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(new Error(`no answer within ${timeoutMs / 1000} s (the check's commands were killed)`));
      }, timeoutMs);
    });
    const observed = await Promise.race([kind.probe(ctx, args), timeout]);
    if (isCheckKind(kind)) {
      const why = kind.problem(observed, args as never);
      if (why === undefined) return result('OK', kind.healthy(observed, args as never), severity, observed);
      const sev = kind.severityOf?.(observed, args as never) ?? severity;
      return result(sev === 'warning' ? 'WARNING' : 'CRITICAL', why, sev, observed);
    }
    if (kind.satisfied(observed, args)) return result('OK', kind.describe(args).summary, 'critical', observed);
    return result('CRITICAL', plainProblem(kind, args, observed), 'critical', observed);
  } catch (e) {
    return result('UNKNOWN', describeError(e), severity);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/**
 * One result for a host that could not be reached, standing for all its checks: the operator
 * reads "n2 unreachable" once, not once per check, and the count of checks it hides.
 */
function reachResult(o: CheckOptions, host: string, jobs: Job[], why: string): CheckResult {
  const first = jobs[0]!;
  const n = jobs.length;
  return {
    play: first.playIndex,
    host,
    kind: REACH_KIND,
    stepId: REACH_KIND,
    instance: REACH_KIND,
    name: `reach ${host}`,
    label: REACH_KIND,
    status: unreachableStatus(first.play, o.extraVars),
    severity: 'critical',
    message: `unreachable, ${n} check${n === 1 ? '' : 's'} not run: ${why}`,
    summary: `unreachable, ${n} check${n === 1 ? '' : 's'} not run`,
    durationMs: 0,
  };
}

/** The host's connection for a check that asks from the controller: none is opened (a kind that used it anyway would fail as unreachable). */
function unusedConnection(host: string): Transport {
  const fail = () => Promise.reject(new UnreachableError(host, `${host} was not connected: this check asks from the controller`));
  return { host, kind: 'ssh', connect: fail, exec: fail, close: async () => undefined };
}

/**
 * Probe and judge every selected check. Never throws for a node's sake: that is an UNKNOWN.
 *
 * Checks do not wait for every connection: each waits only for its own host's, so a node that
 * does not answer costs its connect timeout once, alongside the other checks, not before them.
 * A check whose host cannot be reached is not run; all of a host's fold into one result.
 */
export async function check(o: CheckOptions): Promise<CheckResult[]> {
  const kinds = new Set<string>();
  const jobs = plan(o, kinds);
  // Only the kinds this playbook uses: a check from cron should not load the whole catalog.
  await o.registry.ensureLoaded(kinds);

  // Why a host cannot be reached (undefined: it can), one connection attempt per host.
  const reach = new Map<string, Promise<string | undefined>>();
  const downReason = (host: string): Promise<string | undefined> => {
    let p = reach.get(host);
    if (!p) {
      const known = o.unreachable?.get(host);
      p = known !== undefined ? Promise.resolve(known) : o.pool.get(host).then(() => undefined, (e: unknown) => (e instanceof Error ? e.message : String(e)));
      reach.set(host, p);
    }
    return p;
  };
  // A check asked from the controller (the VIP, as a client) needs no connection to its host.
  const fromController = (job: Job) => o.registry.get(job.step.kind)?.fromController === true;
  const folded = new Map<string, { jobs: Job[]; why: string }>();
  const fold = (job: Job, why: string) => (folded.get(job.host.name) ?? folded.set(job.host.name, { jobs: [], why }).get(job.host.name)!).jobs.push(job);

  const results = await mapLimit(jobs, o.concurrency ?? 32, async (job): Promise<CheckResult | undefined> => {
    let chosen = job;
    if (job.alternatives) {
      // The first host, in the play's order, that answers (a dead one costs its timeout once).
      chosen = job.alternatives[0]!;
      for (const alt of job.alternatives) {
        if (alt.step.delegateTo || fromController(alt) || (await downReason(alt.host.name)) === undefined) {
          chosen = alt;
          break;
        }
      }
    }
    if (!chosen.step.delegateTo && !fromController(chosen)) {
      const down = await downReason(chosen.host.name);
      if (down !== undefined) {
        fold(chosen, down);
        return undefined;
      }
    }
    return checkOne(o, chosen);
  });
  const reachResults = [...folded].map(([host, f]) => reachResult(o, host, f.jobs, f.why));
  return [...reachResults, ...results.filter((r): r is CheckResult => r !== undefined)];
}
