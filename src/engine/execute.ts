import type { Host, Inventory } from '../inventory/model.js';
import type { Play, Playbook, StepSpec } from '../playbook/model.js';
import { isOneShot, StepRefusedError } from '../steps/contract.js';
import { BatonError } from '../util/errors.js';
import type { StepRegistry } from '../steps/registry.js';
import { render } from '../playbook/template.js';
import { varsFor } from '../playbook/vars.js';
import { evalCondition, parseCondition } from '../playbook/conditions.js';
import { selectHosts } from '../inventory/pattern.js';
import { ExitCode } from '../util/errors.js';
import { mapLimit, sleep } from '../util/limit.js';
import { checkRenderedArgs } from './args-check.js';
import { displayArgv } from '../util/argv.js';
import { becomeOf, makeStepContext, type TransportSource } from './context.js';
import { describeError } from './errors.js';
import type { EngineEvent, StepRef, StepStatus } from './events.js';
import type { Journal, RunOutcome } from './journal.js';
import type { Redactor } from './redact.js';
import { revertChanges, type AppliedChange } from './rollback.js';
import { tagSelected, type TagFilter } from './tags.js';
import { checkTakeover, resourceOf, RunSafety } from './safety.js';
import { stepTimeoutMs } from './timeouts.js';
import { withExtraVars } from './inventory-view.js';
import { Prefetches } from './prefetch.js';

/**
 * The engine. Plays run in order; within a play, each step runs on every host of the batch
 * (in parallel, up to `forks`) before the next step starts — Ansible's linear strategy, so a
 * failover's phases (release everywhere, then take over) happen in the order written.
 *
 * Per step and host:  probe → satisfied? ok
 *                     check mode? would change
 *                     journal intent → apply → probe → satisfied? changed : failed
 * On a failure (not ignored): stop scheduling, then revert every change of the run, newest
 * first (on_failure: rollback, the default) or leave things as they are (on_failure: stop).
 */
export interface ExecuteOptions {
  playbook: Playbook;
  inventory: Inventory;
  extraVars: Record<string, unknown>;
  registry: StepRegistry;
  pool: TransportSource;
  runId: string;
  /** Absent in check mode: nothing changes, so nothing is journaled. */
  journal?: Journal;
  redactor: Redactor;
  check?: boolean;
  force?: boolean;
  filter?: TagFilter;
  limit?: string;
  onEvent: (e: EngineEvent) => void;
  /** `--step`: asked before each change; 'skip' skips it, 'continue' stops asking. */
  confirmStep?: (ref: StepRef, summary: string) => Promise<'yes' | 'skip' | 'continue'>;
  /** Interrupt (Ctrl-C): stop after the steps in flight, then roll back. */
  signal?: AbortSignal;
  verbose?: boolean;
  /**
   * An interrupted run of the same playbook that this run finishes: step instances (`instance@host`)
   * it changed count as changed here too, so `when: x is changed` steps it still owed (garp,
   * statd) run although their trigger is now merely ok.
   */
  resume?: { runId: string; changed: Set<string> };
}

export interface ExecuteResult {
  outcome: RunOutcome;
  exitCode: number;
  /** Changes left in place (all of them after success; those a failed rollback could not revert). */
  changes: AppliedChange[];
  failures: string[];
}

/** Registered step outcomes per host, for `when: NAME is changed`. */
type Registered = Map<string, Record<string, { status: StepStatus; changed: boolean; failed: boolean; skipped: boolean; ok: boolean }>>;

class StepFailed extends Error {}

/** How long a timed-out step waits for its commands to be killed on the node. */
const KILL_WAIT_MS = 10_000;


function batchesOf(hosts: string[], serial?: number): string[][] {
  if (!serial || serial >= hosts.length) return [hosts];
  const out: string[][] = [];
  for (let i = 0; i < hosts.length; i += serial) out.push(hosts.slice(i, i + serial));
  return out;
}

/** A play's name with its templates rendered from its vars and the extra vars (as written, if that fails). */
export function playTitle(play: Play, extraVars: Record<string, unknown>): string {
  try {
    return String(render(play.name, { ...play.vars, ...extraVars }));
  } catch {
    return play.name;
  }
}

/** The hosts a play targets after `--limit`, its `hosts:` rendered with the extra vars. */
export function playHosts(play: Play, inventory: Inventory, extraVars: Record<string, unknown>, limit?: string): string[] {
  const pattern = String(render(play.hosts, { ...play.vars, ...extraVars }));
  return selectHosts(inventory, pattern, limit).hosts.map((h) => h.name);
}

/**
 * The hosts of every play, checked before anything runs: a `--limit` that matches no host, or a
 * play left with no host while others have some (a switchover limited to one side would release
 * the service and take nothing over), is invalid input, not a quiet success.
 */
export function checkSelection(playbook: Playbook, inventory: Inventory, extraVars: Record<string, unknown>, limit?: string): string[][] {
  if (limit !== undefined && limit.trim() !== '' && selectHosts(inventory, 'all', limit).hosts.length === 0) {
    throw new BatonError(`--limit ${JSON.stringify(limit)} matches no host of the inventory (${inventory.file}); nothing was run`, ExitCode.INVALID);
  }
  const selected = playbook.plays.map((play) => playHosts(play, inventory, extraVars, limit));
  const empty = playbook.plays.map((play, i) => ({ play, i })).filter(({ i }) => selected[i]!.length === 0);
  if (empty.length) {
    const names = empty.map(({ play, i }) => `play ${i + 1} "${playTitle(play, extraVars)}" (hosts: ${play.hosts}${limit ? `, --limit ${limit}` : ''})`);
    throw new BatonError(
      `no host selected for ${names.join(', ')}; nothing was run. Check the host names, -e values and --limit: a play that runs nowhere would leave its part of the job undone.`,
      ExitCode.INVALID,
    );
  }
  return selected;
}

export async function execute(o: ExecuteOptions): Promise<ExecuteResult> {
  await o.registry.ensureLoaded();
  const changes: AppliedChange[] = [];
  const failures: string[] = [];
  const registered: Registered = new Map();
  const filter = o.filter ?? {};
  let failedPlay: Play | undefined;
  let askEachStep = Boolean(o.confirmStep);

  const safety = new RunSafety(Boolean(o.force));
  // -e wins over inventory vars everywhere, hostvars[...] included (a -e bmc_password reaches the fence).
  const inventory = withExtraVars(o.inventory, o.extraVars);
  /** Failed step instances that fail the run: the one place the outcome is decided from. */
  let failedCount = 0;
  const emit = (e: EngineEvent) => {
    if (e.type === 'step-end' && e.status === 'failed' && !e.ignored) {
      failedCount++;
      failures.push(`${e.step.host}: ${e.step.name}: ${e.error ?? 'failed'}`);
    }
    o.onEvent(e);
  };

  async function runInstance(play: Play, playIndex: number, step: StepSpec, host: Host, vars: Record<string, unknown>, instance: string): Promise<StepStatus> {
    const kind = o.registry.get(step.kind)!;
    const on = step.delegateTo ? String(render(step.delegateTo, vars)) : host.name;
    const t0 = Date.now();
    let args: unknown;
    let ref: StepRef = {
      play: playIndex,
      playName: playTitle(play, o.extraVars),
      stepId: step.id,
      instance,
      name: step.name ?? step.kind,
      kind: step.kind,
      host: host.name,
      on: on === host.name ? undefined : on,
      tags: step.tags,
    };
    // Time spent waiting for the operator at the --step prompt is not the step's.
    let pausedMs = 0;
    const end = (status: StepStatus, extra: Partial<Extract<EngineEvent, { type: 'step-end' }>> = {}) => {
      emit({ type: 'step-end', step: ref, status, durationMs: Date.now() - t0 - pausedMs, ...(pausedMs ? { waitedMs: pausedMs } : {}), ...extra });
      return status;
    };
    /** Every failure ends here: it fails the run unless the step says ignore_errors. */
    const fail = (error: string): StepStatus => {
      end('failed', { error, ignored: step.ignoreErrors });
      if (step.ignoreErrors) return 'failed';
      throw new StepFailed(error);
    };

    try {
      args = render(step.args, vars);
    } catch (err) {
      emit({ type: 'step-start', step: ref, at: t0 });
      return fail(`arguments: ${describeError(err)}`);
    }
    let desc;
    try {
      desc = kind.describe(args);
      ref = { ...ref, name: step.name ? String(render(step.name, vars)) : desc.summary };
    } catch (err) {
      emit({ type: 'step-start', step: ref, at: t0 });
      return fail(`arguments: ${describeError(err)}`);
    }
    emit({ type: 'step-start', step: ref, at: t0 });

    const argsProblem = checkRenderedArgs(o.registry, step.kind, args);
    if (argsProblem) return fail(`arguments after templating: ${argsProblem}`);

    const oneShot = isOneShot(kind, args);
    const attempts = step.retries + 1;
    const become = becomeOf(play, step);
    let lastError = '';
    const timeoutMs = stepTimeoutMs(kind, args, step.timeoutS);
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const abort = new AbortController();
      const attemptStart = Date.now();
      let timer = setTimeout(() => abort.abort(), timeoutMs);
      const notes: string[] = [];
      let seq: number | undefined;
      let before: unknown;
      try {
        const transport = await o.pool.get(on);
        const ctx = makeStepContext({
          host,
          transport,
          inventory,
          pool: o.pool,
          vars,
          force: Boolean(o.force),
          timeoutMs,
          become,
          signal: abort.signal,
          onMarkDown: kind.role === 'fence' ? (name, reason) => (reason ? safety.fenced.add(name) : safety.fenced.delete(name)) : undefined,
          log: (m) => {
            notes.push(m);
            if (o.verbose) emit({ type: 'log', host: host.name, message: o.redactor.redact(m) });
          },
          onCommand: o.verbose
            ? (argv, r) => emit({ type: 'log', host: on, message: o.redactor.redact(`$ ${displayArgv(argv)}  → ${r.code ?? 'killed'} (${Math.round(r.durationMs)} ms)`) })
            : undefined,
        });
        // On timeout the abort signal kills the step's commands on the node; give the transport a
        // moment to finish doing so (and the step to notice) before the step is declared failed,
        // so nothing is left running when the run ends and the connection closes.
        const withTimeout = <T>(p: Promise<T>): Promise<T> =>
          Promise.race([
                p,
                new Promise<never>((_, reject) =>
                  abort.signal.addEventListener(
                    'abort',
                    () => {
                      const fail = () => reject(new Error(`timed out after ${timeoutMs / 1000} s${step.timeoutS ? '' : ` (the default bound of ${step.kind}; set timeout: to change it)`}; its commands were killed`));
                      const wait = new Promise<void>((r) => setTimeout(r, KILL_WAIT_MS).unref());
                      Promise.race([p.catch(() => undefined), wait]).then(fail, fail);
                    },
                    { once: true },
                  ),
                ),
              ]);

        before = oneShot ? {} : await withTimeout(kind.probe(ctx, args));
        if (!oneShot && kind.satisfied(before, args)) {
          // A release seen done in this run lets a later takeover go on without asking this node again.
          const resource = kind.role === 'release' ? resourceOf(kind, args) : undefined;
          if (resource) safety.noteReleased(resource, host.name);
          if (resource || kind.role === 'fence') prefetchAfter(playIndex, step.id, resource);
          return end('ok', { before });
        }
        if (o.check && kind.readOnly) {
          return end('skipped', { before, reason: 'does not hold now; in a real run it is checked after the changes before it' });
        }
        if (o.check) return end('would-change', { before, commands: desc.commands });
        if (askEachStep && !kind.readOnly) {
          // The step's bound stops while the operator thinks: only the step's own time counts.
          clearTimeout(timer);
          const asked = Date.now();
          const answer = await o.confirmStep!(ref, desc.summary);
          pausedMs += Date.now() - asked;
          timer = setTimeout(() => abort.abort(), Math.max(0, timeoutMs - (asked - attemptStart)));
          if (answer === 'skip') return end('skipped', { reason: 'skipped at the --step prompt' });
          if (answer === 'continue') askEachStep = false;
        }

        if (kind.readOnly) {
          await withTimeout(kind.apply(ctx, args, before));
          return end('ok', { before });
        }

        // Refusals come before the intent: a takeover that would be unsafe changes nothing.
        const prepared = kind.prepare && on === host.name ? prefetches.take(playIndex, instance, host.name, args) : undefined;
        await withTimeout(
          checkTakeover({ kind, args, host, inventory, pool: o.pool, safety, ctx, prepared, timeoutMs, become, warn: (m) => emit({ type: 'log', host: host.name, message: o.redactor.redact(m), level: 'warn' }) }),
        );

        const journaledArgs = o.redactor.maskArgs(args, kind.secretArgs);
        const reversible = kind.reversible?.(args) ?? true;
        const resource = resourceOf(kind, args);
        seq = o.journal?.append({
          t: 'intent',
          instance,
          stepId: step.id,
          name: ref.name,
          kind: step.kind,
          host: host.name,
          on,
          args: journaledArgs,
          before,
          ...(resource ? { resource } : {}),
          ...(become !== undefined ? { become } : {}),
          ...(reversible ? {} : { irreversible: true }),
        });
        // From here on the change may have started: it is a change to revert, whatever happens next.
        if (reversible) changes.push({ ref, kind: step.kind, args, before, seq: seq ?? changes.length + 1, runId: o.runId, journaledArgs, become });
        await withTimeout(kind.apply(ctx, args, before));
        const after = oneShot ? undefined : await withTimeout(kind.probe(ctx, args));
        if (!oneShot && !kind.satisfied(after, args)) {
          throw new Error(`the commands succeeded but ${on} is not in the wanted state afterwards: ${JSON.stringify(after)}`);
        }
        if (seq !== undefined) o.journal?.append({ t: 'done', seq, status: 'changed', after });
        if (kind.role === 'release' && resource) safety.noteReleased(resource, host.name);
        if ((kind.role === 'release' && resource) || kind.role === 'fence') prefetchAfter(playIndex, step.id, kind.role === 'fence' ? undefined : resource);
        return end('changed', { before, after, attempt });
      } catch (err) {
        lastError = o.redactor.redact(describeError(err));
        // A refusal comes before the step touches anything (the contract): nothing to revert.
        const refused = err instanceof StepRefusedError;
        if (refused) {
          const i = changes.findIndex((c) => c.ref.instance === instance && c.seq === seq);
          if (i >= 0) changes.splice(i, 1);
        }
        if (seq !== undefined) o.journal?.append({ t: 'done', seq, status: refused ? 'refused' : 'failed', error: lastError });
        if (attempt < attempts && !o.signal?.aborted) {
          emit({ type: 'log', host: host.name, message: `${ref.name}: attempt ${attempt}/${attempts} failed (${lastError}); retrying in ${step.delayS} s` });
          await sleep(step.delayS * 1000);
          continue;
        }
      } finally {
        clearTimeout(timer);
      }
    }
    return fail(lastError);
  }

  async function runStepOnHost(play: Play, playIndex: number, step: StepSpec, host: Host, playHostNames: string[]): Promise<void> {
    const reg = registered.get(host.name) ?? {};
    registered.set(host.name, reg);
    const varsInput = { host, inventory, play, step, extraVars: o.extraVars, registered: reg, playHosts: playHostNames };
    const base = varsFor(varsInput);
    const ref = (instance: string, name: string): StepRef => ({
      play: playIndex,
      playName: playTitle(play, o.extraVars),
      stepId: step.id,
      instance,
      name,
      kind: step.kind,
      host: host.name,
      tags: step.tags,
    });
    const skip = (reason: string) => {
      let name = step.name ?? step.kind;
      try {
        name = String(render(name, base));
      } catch {
        /* a skipped step's name may use vars that only its real run would have */
      }
      emit({ type: 'step-start', step: ref(step.id, name), at: Date.now() });
      emit({ type: 'step-end', step: ref(step.id, name), status: 'skipped', durationMs: 0, reason });
      if (step.register) reg[step.register] = { status: 'skipped', changed: false, failed: false, skipped: true, ok: false };
    };

    const record = (status: StepStatus, instance = step.id) => {
      if (status === 'ok' && o.resume?.changed.has(`${instance}@${host.name}`)) {
        emit({ type: 'log', host: host.name, message: `${step.name ?? step.kind}: changed by the interrupted run ${o.resume.runId}; what it still owed runs now`, level: 'warn' });
        status = 'changed';
      }
      if (step.register) {
        // In check mode a step that would change counts as changed, as in Ansible, so that
        // `when: x is changed` shows what the real run would do.
        reg[step.register] = { status, changed: status === 'changed' || status === 'would-change', failed: status === 'failed', skipped: status === 'skipped', ok: status === 'ok' || status === 'changed' };
      }
    };

    if (step.loop === undefined) {
      for (const cond of step.when) {
        if (!evalCondition(parseCondition(cond), base)) return skip(`when: ${cond} is false`);
      }
      try {
        record(await runInstance(play, playIndex, step, host, base, step.id));
      } catch (e) {
        record('failed');
        throw e;
      }
      return;
    }

    const items = render(step.loop, base);
    if (!Array.isArray(items)) {
      emit({ type: 'step-start', step: ref(step.id, step.name ?? step.kind), at: Date.now() });
      emit({ type: 'step-end', step: ref(step.id, step.name ?? step.kind), status: 'failed', durationMs: 0, error: `loop: expected a list, got ${JSON.stringify(items)}` });
      throw new StepFailed('loop is not a list');
    }
    let overall: StepStatus = 'skipped';
    for (let i = 0; i < items.length; i++) {
      const vars = varsFor({ ...varsInput, loop: { var: step.loopVar, value: items[i], index: i, length: items.length } });
      if (!step.when.every((c) => evalCondition(parseCondition(c), vars))) continue;
      try {
        let s = await runInstance(play, playIndex, step, host, vars, `${step.id}[${i}]`);
        if (s === 'ok' && o.resume?.changed.has(`${step.id}[${i}]@${host.name}`)) s = 'changed';
        if (s === 'changed' || s === 'would-change' || (s === 'ok' && overall === 'skipped')) overall = s;
      } catch (e) {
        record('failed');
        throw e;
      }
    }
    record(overall);
  }

  /** The step's title for a group of hosts: its name rendered for the first of them, else its kind. */
  function groupName(play: Play, step: StepSpec, first: string | undefined, playHostNames: string[]): string {
    if (!step.name) return step.kind;
    const host = first ? inventory.hosts.get(first) : undefined;
    if (!host) return step.name;
    try {
      return String(render(step.name, varsFor({ host, inventory, play, step, extraVars: o.extraVars, registered: registered.get(host.name) ?? {}, playHosts: playHostNames })));
    } catch {
      return step.name;
    }
  }

  const selected = checkSelection(o.playbook, o.inventory, o.extraVars, o.limit);
  // Read-only checks of later takeover steps, started as soon as they mean something (prefetch.ts).
  const prefetches = new Prefetches({ playbook: o.playbook, inventory, extraVars: o.extraVars, registry: o.registry, pool: o.pool, filter, selected, registered: (h) => registered.get(h) ?? {} });
  function prefetchAfter(playIndex: number, stepId: string, resource: string | undefined): void {
    if (!o.check) prefetches.trigger(playIndex, stepId, resource);
  }

  for (let p = 0; p < o.playbook.plays.length && !failedPlay; p++) {
    const play = o.playbook.plays[p]!;
    const hostNames = selected[p]!;
    emit({ type: 'play-start', play: p, name: playTitle(play, o.extraVars), hosts: hostNames });
    const steps = play.steps.filter((s) => tagSelected(s.tags, filter));
    for (const batch of batchesOf(hostNames, play.serial)) {
      for (const step of steps) {
        if (o.signal?.aborted) break;
        const targets = step.runOnce ? batch.slice(0, 1) : batch;
        emit({ type: 'step-group-start', play: p, stepId: step.id, name: groupName(play, step, targets[0], hostNames), kind: step.kind, hosts: targets });
        const failedBefore = failedCount;
        const results = await mapLimit(targets, play.forks ?? 10, async (name) => {
          try {
            await runStepOnHost(play, p, step, inventory.hosts.get(name)!, hostNames);
            return true;
          } catch (err) {
            if (!(err instanceof StepFailed)) {
              const msg = o.redactor.redact(describeError(err));
              failedCount++;
              failures.push(`${name}: ${step.id}: ${msg}`);
              emit({ type: 'log', host: name, message: msg, level: 'warn' });
            }
            return false;
          }
        });
        emit({ type: 'step-group-end', play: p, stepId: step.id });
        if (results.includes(false) || failedCount > failedBefore) {
          failedPlay = play;
          break;
        }
      }
      if (failedPlay || o.signal?.aborted) break;
    }
    emit({ type: 'play-end', play: p });
    if (o.signal?.aborted) break;
  }

  prefetches.stop();
  const interrupted = Boolean(o.signal?.aborted) && !failedPlay;
  if (!failedPlay && !interrupted && failedCount === 0) {
    return { outcome: 'succeeded', exitCode: ExitCode.OK, changes, failures };
  }
  if (interrupted) failures.push('interrupted by the operator');

  const onFailure = failedPlay?.onFailure ?? 'rollback';
  if (onFailure === 'stop' || changes.length === 0) {
    const nothingChanged = changes.length === 0;
    return {
      outcome: nothingChanged ? 'failed-rolled-back' : 'failed-not-rolled-back',
      exitCode: nothingChanged ? ExitCode.FAILED_ROLLED_BACK : ExitCode.FAILED_NOT_ROLLED_BACK,
      changes,
      failures,
    };
  }

  emit({ type: 'rollback-start', reason: failures[0] ?? 'a step failed', count: changes.length });
  const complete = await revertChanges(changes, {
    registry: o.registry,
    inventory,
    pool: o.pool,
    journal: o.journal,
    onEvent: emit,
    safety,
    redact: (t) => o.redactor.redact(t),
  });
  emit({ type: 'rollback-end', complete });
  return complete
    ? { outcome: 'failed-rolled-back', exitCode: ExitCode.FAILED_ROLLED_BACK, changes: [], failures }
    : { outcome: 'failed-not-rolled-back', exitCode: ExitCode.FAILED_NOT_ROLLED_BACK, changes, failures };
}
