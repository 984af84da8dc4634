import type { Host, Inventory } from '../inventory/model.js';
import type { Play, Playbook, StepSpec } from '../playbook/model.js';
import { isOneShot, StepRefusedError, type StepContext } from '../steps/contract.js';
import { BatonError } from '../util/errors.js';
import type { StepRegistry } from '../steps/registry.js';
import { render } from '../playbook/template.js';
import { varsFor } from '../playbook/vars.js';
import { allHold, evalCondition, parseCondition } from '../playbook/conditions.js';
import { selectHosts } from '../inventory/pattern.js';
import { DEFAULT_ITEM_CONCURRENCY } from '../playbook/play-items.js';
import { expandPlays, playHosts, playTitle, type ExpandedPlay, type PlayItem } from './expand.js';
import { ExitCode } from '../util/errors.js';
import { mapLimit, sleep } from '../util/limit.js';
import { checkRenderedArgs } from './args-check.js';
import { displayArgv } from '../util/argv.js';
import { becomeOf, makeStepContext, type ContextOptions, type TransportSource } from './context.js';
import { describeError } from './errors.js';
import type { EngineEvent, ItemOutcome, StepRef, StepStatus } from './events.js';
import type { Journal, RunOutcome } from './journal.js';
import type { Redactor } from './redact.js';
import { revertChanges, type AppliedChange } from './rollback.js';
import { tagSelected, type TagFilter } from './tags.js';
import { checkTakeover, resourceOf, RunSafety, type PeerPower } from './safety.js';
import { stepTimeoutMs } from './timeouts.js';
import { withExtraVars } from './inventory-view.js';
import { expandStep } from './instances.js';
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
  /** Asks an unreachable peer's BMC whether it is off (a takeover's peer check); absent: not asked. */
  peerPower?: PeerPower;
  /**
   * Hosts that did not answer when the run connected, left out by the session because each is
   * only a host of a play whose steps all run once: those steps run on the first host that did.
   */
  unreachable?: ReadonlySet<string>;
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
  /**
   * Asked before every change (forward and rollback), once its intent is journaled and before
   * anything runs: a coordinator's fencing check. When it throws, the change is refused (nothing
   * ran; journaled so), never retried, and the run fails with that error.
   */
  beforeChange?: () => Promise<void>;
}

export interface ExecuteResult {
  outcome: RunOutcome;
  exitCode: number;
  /** Changes left in place (all of them after success; those a failed rollback could not revert). */
  changes: AppliedChange[];
  failures: string[];
  /** How each item of the run's looped plays ended, in play and item order (absent: no looped play ran). */
  items?: ItemSummary[];
}

/** One item of a looped play, for the recap. */
export interface ItemSummary {
  play: number;
  /** The play's title rendered for the item. */
  title: string;
  /** The play's loop_var (`group`), to say what the item is. */
  var: string;
  label: string;
  outcome: ItemOutcome;
  /** `mount /srv/b on n2: …`: where it failed, when it did. */
  failure?: string;
}

/**
 * A transaction: the run's own (every plain play), or one item of a looped play. Each has its
 * changes, its registered results and its failures; an item's failure is its own.
 */
interface Txn {
  item?: PlayItem;
  /** The item's hosts (absent for the run's own transaction). */
  hosts?: string[];
  changes: AppliedChange[];
  registered: Registered;
  failures: string[];
  /** Failed step instances that fail the transaction: the one place its outcome is decided from. */
  failedCount: number;
  /** The first failed step, for the item's line in the recap. */
  first?: { step: string; host: string; error: string };
  emit: (e: EngineEvent) => void;
  /** Stop before the next step: the operator interrupted, or another item failed under rollback_all. */
  halted: () => boolean;
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

export { playHosts, playTitle };

/**
 * The hosts of every play, checked before anything runs: a `--limit` that matches no host, or a
 * play left with no host while others have some (a switchover limited to one side would release
 * the service and take nothing over), is invalid input, not a quiet success.
 */
export function checkSelection(playbook: Playbook, inventory: Inventory, extraVars: Record<string, unknown>, limit?: string): string[][] {
  return expandSelection(playbook, inventory, extraVars, limit).map((e) => e.hosts);
}

/**
 * checkSelection with every play expanded (one unit per item of a looped play): an item that
 * selects no host is invalid input as a plain play is. A loop with no items is not: a node
 * evacuation of a node that runs nothing has nothing to do.
 */
export function expandSelection(playbook: Playbook, inventory: Inventory, extraVars: Record<string, unknown>, limit?: string, playbookFile?: string): ExpandedPlay[] {
  if (limit !== undefined && limit.trim() !== '' && selectHosts(inventory, 'all', limit).hosts.length === 0) {
    throw new BatonError(`--limit ${JSON.stringify(limit)} matches no host of the inventory (${inventory.file}); nothing was run`, ExitCode.INVALID);
  }
  const expanded = expandPlays(playbook, inventory, extraVars, limit, playbookFile);
  const empty = expanded.flatMap((e) =>
    e.units
      .filter((u) => u.hosts.length === 0)
      .map((u) => `play ${e.index + 1} "${u.item ? u.title : e.title}"${u.item ? ` (item ${u.item.label})` : ''} (hosts: ${e.play.hosts}${limit ? `, --limit ${limit}` : ''})`),
  );
  if (empty.length) {
    throw new BatonError(
      `no host selected for ${empty.join(', ')}; nothing was run. Check the host names, -e values and --limit: a play that runs nowhere would leave its part of the job undone.`,
      ExitCode.INVALID,
    );
  }
  return expanded;
}

export async function execute(o: ExecuteOptions): Promise<ExecuteResult> {
  await o.registry.ensureLoaded();
  const changes: AppliedChange[] = [];
  const failures: string[] = [];
  const filter = o.filter ?? {};
  let failedPlay: Play | undefined;
  let askEachStep = Boolean(o.confirmStep);
  // Items of a looped play may want to ask at once: one question at a time.
  let asking: Promise<unknown> = Promise.resolve();
  const confirm = (ref: StepRef, summary: string): Promise<'yes' | 'skip' | 'continue'> => {
    const answer = asking.then(() => (askEachStep ? o.confirmStep!(ref, summary) : ('yes' as const)));
    asking = answer.catch(() => undefined);
    return answer;
  };

  const safety = new RunSafety(Boolean(o.force), o.peerPower);
  // -e wins over inventory vars everywhere, hostvars[...] included (a -e bmc_password reaches the fence).
  const inventory = withExtraVars(o.inventory, o.extraVars);
  // A play's title, rendered once: a looped play's name needs its item, so each render failed
  // and threw (a stack trace per step instance) before falling back to the name as written.
  const titles = new Map<Play, string>();
  const titleOf = (play: Play) => titles.get(play) ?? titles.set(play, playTitle(play, o.extraVars)).get(play)!;
  const newTxn = (item: PlayItem | undefined, txnChanges: AppliedChange[], txnFailures: string[], halted: () => boolean): Txn => {
    const t: Txn = {
      item,
      changes: txnChanges,
      registered: new Map(),
      failures: txnFailures,
      failedCount: 0,
      halted,
      emit: (e) => {
        if (e.type === 'step-end' && e.status === 'failed' && !e.ignored) {
          t.failedCount++;
          t.failures.push(`${e.step.host}: ${e.step.name}: ${e.error ?? 'failed'}`);
          t.first ??= { step: e.step.name, host: e.step.host, error: e.error ?? 'failed' };
        }
        o.onEvent(e);
      },
    };
    return t;
  };
  const main = newTxn(undefined, changes, failures, () => Boolean(o.signal?.aborted));
  const emit = main.emit;
  const items: ItemSummary[] = [];
  /** The worst exit of a looped play's failed items, rolled back each on its own (rollback_item). */
  let itemsFailedAlone: number | undefined;

  async function runInstance(t: Txn, play: Play, playIndex: number, step: StepSpec, host: Host, vars: Record<string, unknown>, instance: string): Promise<StepStatus> {
    const kind = o.registry.get(step.kind)!;
    const on = step.delegateTo ? String(render(step.delegateTo, vars)) : host.name;
    const t0 = Date.now();
    let args: unknown;
    let ref: StepRef = {
      play: playIndex,
      playName: titleOf(play),
      stepId: step.id,
      instance,
      name: step.name ?? step.kind,
      kind: step.kind,
      host: host.name,
      on: on === host.name ? undefined : on,
      tags: step.tags,
      ...(t.item ? { item: t.item.label } : {}),
    };
    // Time spent waiting for the operator at the --step prompt is not the step's.
    let pausedMs = 0;
    const end = (status: StepStatus, extra: Partial<Extract<EngineEvent, { type: 'step-end' }>> = {}) => {
      t.emit({ type: 'step-end', step: ref, status, durationMs: Date.now() - t0 - pausedMs, ...(pausedMs ? { waitedMs: pausedMs } : {}), ...extra });
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
      t.emit({ type: 'step-start', step: ref, at: t0 });
      return fail(`arguments: ${describeError(err)}`);
    }
    let desc;
    try {
      desc = kind.describe(args);
      ref = { ...ref, name: step.name ? String(render(step.name, vars)) : desc.summary };
    } catch (err) {
      t.emit({ type: 'step-start', step: ref, at: t0 });
      return fail(`arguments: ${describeError(err)}`);
    }
    t.emit({ type: 'step-start', step: ref, at: t0 });

    const argsProblem = checkRenderedArgs(o.registry, step.kind, args);
    if (argsProblem) return fail(`arguments after templating: ${argsProblem}`);

    const oneShot = isOneShot(kind, args);
    const attempts = step.retries + 1;
    const become = becomeOf(play, step);
    let lastError = '';
    let guardRefused = false;
    const timeoutMs = stepTimeoutMs(kind, args, step.timeoutS);
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const abort = new AbortController();
      const attemptStart = Date.now();
      let timer = setTimeout(() => abort.abort(), timeoutMs);
      const notes: string[] = [];
      let seq: number | undefined;
      let before: unknown;
      // The refusals asked early (below): stopped, their commands killed, when the step ends
      // without using them, so that nothing is left running when the run ends.
      let early: Promise<void> | undefined;
      const earlyAbort = new AbortController();
      try {
        const transport = await o.pool.get(on);
        const ctxOptions: ContextOptions = {
          host,
          transport,
          inventory,
          pool: o.pool,
          vars,
          force: Boolean(o.force),
          timeoutMs,
          become,
          signal: abort.signal,
          // Only a fence marks a node fenced; any step that powers one back on (unfence, a reboot) clears it.
          onMarkDown: (name, reason) => (reason === null ? safety.clearFenced(name) : kind.role === 'fence' ? void safety.fenced.add(name) : undefined),
          log: (m) => {
            notes.push(m);
            if (o.verbose) t.emit({ type: 'log', host: host.name, message: o.redactor.redact(m) });
          },
          onCommand: o.verbose
            ? (argv, r) => t.emit({ type: 'log', host: on, message: o.redactor.redact(`$ ${displayArgv(argv)}  → ${r.code ?? 'killed'} (${Math.round(r.durationMs)} ms)`) })
            : undefined,
        };
        const ctx = makeStepContext(ctxOptions);
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

        // The refusals (the kind's preconditions, the peers' heldBy) are read-only and do not depend
        // on what the probe sees: ask them in the same round trip as the probe, and use the answer
        // only if the step turns out to change something. Not in check mode (nothing changes), nor
        // at the --step prompt (the operator may take minutes; the answer must be fresh).
        const prepared = !o.check && kind.prepare && on === host.name ? prefetches.take(playIndex, instance, host.name, args) : undefined;
        // Its warnings (a peer that did not answer) are shown only if the answer is used.
        const warnings: string[] = [];
        const showWarnings = () => warnings.splice(0).forEach((m) => t.emit({ type: 'log', host: host.name, message: o.redactor.redact(m), level: 'warn' }));
        const refusals = (c: StepContext, signal: AbortSignal) =>
          withTimeout(checkTakeover({ kind, args, host, inventory, pool: o.pool, safety, ctx: c, prepared, timeoutMs, become, signal, warn: (m) => warnings.push(m) }));
        if (!o.check && !kind.readOnly && !oneShot && !askEachStep) {
          abort.signal.addEventListener('abort', () => earlyAbort.abort(), { once: true });
          early = refusals(makeStepContext({ ...ctxOptions, signal: earlyAbort.signal }), earlyAbort.signal);
          early.catch(() => undefined); // read only if the step changes something
        }
        before = oneShot ? {} : await withTimeout(kind.probe(ctx, args));
        if (!oneShot && kind.satisfied(before, args)) {
          // A release seen done in this run lets a later takeover go on without asking this node again.
          const resource = kind.role === 'release' ? resourceOf(kind, args) : undefined;
          if (resource) safety.noteReleased(resource, host.name);
          if (resource || kind.role === 'fence') prefetchAfter(t, playIndex, step.id, resource);
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
          const answer = await confirm(ref, desc.summary);
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
        await (early ?? refusals(ctx, abort.signal)).finally(showWarnings);

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
          ...(t.item ? { item: { index: t.item.index, label: t.item.label } } : {}),
        });
        await o.journal?.durable();
        if (o.beforeChange) {
          try {
            await o.beforeChange();
          } catch (e) {
            guardRefused = true;
            throw e;
          }
        }
        // From here on the change may have started: it is a change to revert, whatever happens next.
        if (reversible) t.changes.push({ ref, kind: step.kind, args, before, seq: seq ?? t.changes.length + 1, runId: o.runId, journaledArgs, become, ...(t.item ? { item: { index: t.item.index, label: t.item.label } } : {}) });
        // A kind may read the node in the same exec as its change (after the change) and hand that
        // back: the same probe, one round trip less. Otherwise the engine probes again.
        const observed = await withTimeout(kind.apply(ctx, args, before));
        const after = oneShot ? undefined : observed !== undefined ? observed : await withTimeout(kind.probe(ctx, args));
        if (!oneShot && !kind.satisfied(after, args)) {
          throw new Error(`the commands succeeded but ${on} is not in the wanted state afterwards: ${JSON.stringify(after)}`);
        }
        if (seq !== undefined) o.journal?.append({ t: 'done', seq, status: 'changed', after });
        if (kind.role === 'release' && resource) safety.noteReleased(resource, host.name);
        if ((kind.role === 'release' && resource) || kind.role === 'fence') prefetchAfter(t, playIndex, step.id, kind.role === 'fence' ? undefined : resource);
        return end('changed', { before, after, attempt });
      } catch (err) {
        lastError = o.redactor.redact(describeError(err));
        // A refusal comes before the step touches anything (the contract): nothing to revert.
        const refused = err instanceof StepRefusedError || guardRefused;
        if (refused) {
          const i = t.changes.findIndex((c) => c.ref.instance === instance && c.seq === seq);
          if (i >= 0) t.changes.splice(i, 1);
        }
        if (seq !== undefined) o.journal?.append({ t: 'done', seq, status: refused ? 'refused' : 'failed', error: lastError });
        if (attempt < attempts && !o.signal?.aborted && !guardRefused) {
          t.emit({ type: 'log', host: host.name, message: `${ref.name}: attempt ${attempt}/${attempts} failed (${lastError}); retrying in ${step.delayS} s` });
          await sleep(step.delayS * 1000);
          continue;
        }
      } finally {
        clearTimeout(timer);
        if (early) {
          // Bounded: a command that does not die at once must not hold the step (nor the run) up;
          // the transport finishes killing it, and the run's end closes the connection anyway.
          earlyAbort.abort();
          await Promise.race([early.catch(() => undefined), new Promise<void>((r) => setTimeout(r, KILL_WAIT_MS).unref())]);
        }
      }
    }
    return fail(lastError);
  }

  async function runStepOnHost(t: Txn, play: Play, playIndex: number, step: StepSpec, host: Host, playHostNames: string[]): Promise<void> {
    const reg = t.registered.get(host.name) ?? {};
    t.registered.set(host.name, reg);
    // Rendered at the step's turn: its loop and vars may read what earlier steps registered.
    const expansion = expandStep(play, step, host, t.item, { inventory, extraVars: o.extraVars, registered: reg, playHosts: playHostNames });
    const { base, id } = expansion;
    const ref = (instance: string, name: string): StepRef => ({
      play: playIndex,
      playName: titleOf(play),
      stepId: step.id,
      instance,
      name,
      kind: step.kind,
      host: host.name,
      tags: step.tags,
      ...(t.item ? { item: t.item.label } : {}),
    });
    const skip = (reason: string) => {
      let name = step.name ?? step.kind;
      try {
        name = String(render(name, base));
      } catch {
        /* a skipped step's name may use vars that only its real run would have */
      }
      t.emit({ type: 'step-start', step: ref(id, name), at: Date.now() });
      t.emit({ type: 'step-end', step: ref(id, name), status: 'skipped', durationMs: 0, reason });
      if (step.register) reg[step.register] = { status: 'skipped', changed: false, failed: false, skipped: true, ok: false };
    };

    const record = (status: StepStatus, instance = id) => {
      if (status === 'ok' && o.resume?.changed.has(`${instance}@${host.name}`)) {
        t.emit({ type: 'log', host: host.name, message: `${step.name ?? step.kind}: changed by the interrupted run ${o.resume.runId}; what it still owed runs now`, level: 'warn' });
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
        record(await runInstance(t, play, playIndex, step, host, base, id));
      } catch (e) {
        record('failed');
        throw e;
      }
      return;
    }

    if ('loopError' in expansion) {
      if ('thrown' in expansion.loopError) throw expansion.loopError.thrown;
      t.emit({ type: 'step-start', step: ref(id, step.name ?? step.kind), at: Date.now() });
      t.emit({ type: 'step-end', step: ref(id, step.name ?? step.kind), status: 'failed', durationMs: 0, error: `loop: expected a list, got ${JSON.stringify(expansion.loopError.got)}` });
      throw new StepFailed('loop is not a list');
    }
    let overall: StepStatus = 'skipped';
    for (const { instance, vars } of expansion.instances) {
      if (!allHold(step.when, vars)) continue;
      try {
        let s = await runInstance(t, play, playIndex, step, host, vars, instance);
        if (s === 'ok' && o.resume?.changed.has(`${instance}@${host.name}`)) s = 'changed';
        if (s === 'changed' || s === 'would-change' || (s === 'ok' && overall === 'skipped')) overall = s;
      } catch (e) {
        record('failed');
        throw e;
      }
    }
    record(overall);
  }

  /** The step's title for a group of hosts: its name rendered for the first of them, else its kind. */
  function groupName(t: Txn, play: Play, step: StepSpec, first: string | undefined, playHostNames: string[]): string {
    if (!step.name) return step.kind;
    const host = first ? inventory.hosts.get(first) : undefined;
    if (!host) return step.name;
    try {
      return String(render(step.name, varsFor({ host, inventory, play, step, extraVars: o.extraVars, registered: t.registered.get(host.name) ?? {}, playHosts: playHostNames, ...(t.item ? { playItem: t.item } : {}) })));
    } catch {
      return step.name;
    }
  }

  /** A play's steps for one transaction, in order, each on every host of the batch. True when a step failed. */
  async function runSteps(t: Txn, play: Play, p: number, hostNames: string[]): Promise<boolean> {
    const steps = play.steps.filter((s) => tagSelected(s.tags, filter));
    const item = t.item ? { item: t.item.label } : {};
    for (const batch of batchesOf(hostNames, play.serial)) {
      for (const step of steps) {
        if (t.halted()) return false;
        const targets = step.runOnce ? batch.filter((h) => !o.unreachable?.has(h)).slice(0, 1) : batch;
        t.emit({ type: 'step-group-start', play: p, stepId: step.id, name: groupName(t, play, step, targets[0], hostNames), kind: step.kind, hosts: targets, ...item });
        const failedBefore = t.failedCount;
        const results = await mapLimit(targets, play.forks ?? 10, async (name) => {
          try {
            await runStepOnHost(t, play, p, step, inventory.hosts.get(name)!, hostNames);
            return true;
          } catch (err) {
            if (!(err instanceof StepFailed)) {
              const msg = o.redactor.redact(describeError(err));
              t.failedCount++;
              t.failures.push(`${name}: ${step.id}: ${msg}`);
              t.first ??= { step: step.name ?? step.kind, host: name, error: msg };
              t.emit({ type: 'log', host: name, message: msg, level: 'warn' });
            }
            return false;
          }
        });
        t.emit({ type: 'step-group-end', play: p, stepId: step.id, ...item });
        if (results.includes(false) || t.failedCount > failedBefore) return true;
      }
      if (t.halted()) return false;
    }
    return false;
  }

  /**
   * A looped play: every item its own transaction, up to `concurrency` at once. A failed item is
   * rolled back alone (rollback_item) while the others go on, or stops them all for the run's
   * rollback (rollback_all). True when an item failed.
   */
  async function runItems(e: ExpandedPlay, p: number): Promise<boolean> {
    const play = e.play;
    const loop = play.loop!;
    if (!e.units.length) {
      emit({ type: 'log', message: `${e.title}: the loop has no items; nothing to do`, level: 'warn' });
      return false;
    }
    let stopAll = false;
    const halted = () => stopAll || Boolean(o.signal?.aborted);
    const summaries = e.units.map((u): ItemSummary => ({ play: p, title: u.title, var: loop.var, label: u.item!.label, outcome: 'not-started' }));
    items.push(...summaries);
    let failed = false;
    await mapLimit(e.units, loop.concurrency ?? DEFAULT_ITEM_CONCURRENCY, async (u, i) => {
      const summary = summaries[i]!;
      if (halted()) return;
      const t = newTxn(u.item, [], [], halted);
      t.hosts = u.hosts;
      const label = u.item!.label;
      emit({ type: 'item-start', play: p, item: label, hosts: u.hosts });
      const itemFailed = await runSteps(t, play, p, u.hosts);
      if (!itemFailed) {
        summary.outcome = halted() ? 'stopped' : 'succeeded';
        changes.push(...t.changes);
        o.journal?.append({ t: 'item', play: p, label, outcome: summary.outcome });
        emit({ type: 'item-end', play: p, item: label, outcome: summary.outcome });
        return;
      }
      failed = true;
      const more = t.failures.length > 1 ? ` (and ${t.failures.length - 1} more)` : '';
      summary.failure = t.first ? `${t.first.step} on ${t.first.host}: ${t.first.error}${more}` : (t.failures[0] ?? 'failed');
      if (loop.onItemFailure === 'rollback_all') {
        // The run's rollback takes every item's changes, this one's with them.
        stopAll = true;
        changes.push(...t.changes);
        summary.outcome = 'stopped';
      } else if (play.onFailure === 'stop' || t.changes.length === 0) {
        changes.push(...t.changes);
        summary.outcome = t.changes.length ? 'left-in-place' : 'rolled-back';
      } else {
        emit({ type: 'rollback-start', reason: `${loop.var} ${label} failed at ${summary.failure}`, count: t.changes.length, item: label });
        const complete = await revertChanges(t.changes, { registry: o.registry, inventory, pool: o.pool, journal: o.journal, onEvent: emit, safety, redact: (x) => o.redactor.redact(x), beforeChange: o.beforeChange });
        emit({ type: 'rollback-end', complete, item: label });
        if (!complete) changes.push(...t.changes);
        summary.outcome = complete ? 'rolled-back' : 'rollback-incomplete';
      }
      o.journal?.append({ t: 'item', play: p, label, outcome: summary.outcome });
      emit({ type: 'item-end', play: p, item: label, outcome: summary.outcome, error: summary.failure });
    });
    if (failed && loop.onItemFailure === 'rollback_item') {
      const worst = summaries.some((s) => s.outcome === 'rollback-incomplete' || s.outcome === 'left-in-place') ? ExitCode.FAILED_NOT_ROLLED_BACK : ExitCode.FAILED_ROLLED_BACK;
      itemsFailedAlone = Math.max(itemsFailedAlone ?? 0, worst);
    }
    for (const s of summaries) if (s.failure) failures.push(itemFailureLine(s, loop.onItemFailure));
    return failed;
  }

  const expanded = expandSelection(o.playbook, o.inventory, o.extraVars, o.limit);
  const selected = expanded.map((e) => e.hosts);
  // Read-only checks of later takeover steps, started as soon as they mean something (prefetch.ts).
  const prefetches = new Prefetches({ playbook: o.playbook, inventory, extraVars: o.extraVars, registry: o.registry, pool: o.pool, filter, selected, registered: (h) => main.registered.get(h) ?? {} });
  function prefetchAfter(t: Txn, playIndex: number, stepId: string, resource: string | undefined): void {
    if (o.check) return;
    const from = t.item ? { item: t.item, hosts: t.hosts ?? [], registered: (h: string) => t.registered.get(h) ?? {} } : undefined;
    prefetches.trigger(playIndex, stepId, resource, from);
  }

  for (let p = 0; p < expanded.length && !failedPlay; p++) {
    const e = expanded[p]!;
    emit({ type: 'play-start', play: p, name: e.title, hosts: e.hosts });
    const failed = e.play.loop ? await runItems(e, p) : await runSteps(main, e.play, p, e.hosts);
    if (failed) failedPlay = e.play;
    emit({ type: 'play-end', play: p });
    if (o.signal?.aborted) break;
  }

  prefetches.stop();
  const itemResult = items.length ? { items } : {};
  const interrupted = Boolean(o.signal?.aborted) && !failedPlay;
  if (!failedPlay && !interrupted && main.failedCount === 0) {
    return { outcome: 'succeeded', exitCode: ExitCode.OK, changes, failures, ...itemResult };
  }
  if (interrupted) failures.push('interrupted by the operator');
  // Items that failed were each rolled back alone; the others' changes and the earlier plays' stay.
  if (itemsFailedAlone !== undefined && !o.signal?.aborted) {
    const nothingLeft = itemsFailedAlone === ExitCode.FAILED_ROLLED_BACK;
    return { outcome: nothingLeft ? 'failed-rolled-back' : 'failed-not-rolled-back', exitCode: itemsFailedAlone, changes, failures, ...itemResult };
  }

  const onFailure = failedPlay?.onFailure ?? 'rollback';
  if (onFailure === 'stop' || changes.length === 0) {
    const nothingChanged = changes.length === 0;
    return {
      outcome: nothingChanged ? 'failed-rolled-back' : 'failed-not-rolled-back',
      exitCode: nothingChanged ? ExitCode.FAILED_ROLLED_BACK : ExitCode.FAILED_NOT_ROLLED_BACK,
      changes,
      failures,
      ...itemResult,
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
    beforeChange: o.beforeChange,
  });
  emit({ type: 'rollback-end', complete });
  // Items that finished, or were stopped, went back with the run.
  for (const s of items) if (s.outcome === 'succeeded' || s.outcome === 'stopped') s.outcome = complete ? 'rolled-back' : 'rollback-incomplete';
  return complete
    ? { outcome: 'failed-rolled-back', exitCode: ExitCode.FAILED_ROLLED_BACK, changes: [], failures, ...itemResult }
    : { outcome: 'failed-not-rolled-back', exitCode: ExitCode.FAILED_NOT_ROLLED_BACK, changes, failures, ...itemResult };
}

/** `group nfs-b failed at mount /srv/b on n2: …; rolled back`: the line the recap and summary give a failed item. */
function itemFailureLine(s: ItemSummary, onItemFailure: string): string {
  const what: Record<ItemOutcome, string> = {
    'rolled-back': 'rolled back',
    'rollback-incomplete': 'ROLLBACK INCOMPLETE: its changes are still in place',
    'left-in-place': 'its changes were left in place (on_failure: stop)',
    stopped: `every item is rolled back with the run (on_item_failure: ${onItemFailure})`,
    'not-started': 'not started',
    succeeded: 'succeeded',
  };
  return `${s.var} ${s.label} failed at ${s.failure}; ${what[s.outcome]}`;
}
