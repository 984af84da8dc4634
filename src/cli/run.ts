import path from 'node:path';
import os from 'node:os';
import { createInterface } from 'node:readline/promises';
import { execute, expandSelection } from '../engine/execute.js';
import { lockNamesOf, type ExpandedPlay } from '../engine/expand.js';
import { findInterrupted } from '../engine/resume.js';
import { Journal, newRunId } from '../engine/journal.js';
import { acquireRunLocks, type HeldLocks } from '../engine/locks/index.js';
import { RecapCollector, type EngineEvent } from '../engine/events.js';
import { Redactor } from '../engine/redact.js';
import { connectionFor } from '../inventory/connection.js';
import { TransportPool } from '../transport/index.js';
import { BatonError, ExitCode } from '../util/errors.js';
import type { Reporter, RunSummary } from '../report/reporter.js';
import { loadInputs, type CommonOptions, type Inputs } from './inputs.js';
import { renderPlan } from './plan.js';

export interface RunOptions extends CommonOptions {
  check?: boolean;
  diff?: boolean;
  detailedExitcode?: boolean;
  yes?: boolean;
  step?: boolean;
  force?: boolean;
  acceptNew?: boolean;
}

export async function makeReporter(o: { json?: boolean; diff?: boolean; redact?: (s: string) => string }): Promise<Reporter> {
  if (o.json) return new (await import('../report/json.js')).JsonReporter();
  // The tree has no room for before/after states: --diff prints lines, also on a terminal.
  if (process.stdout.isTTY && !process.env.CI && !o.diff) return new (await import('../report/tty.js')).TtyReporter();
  return new (await import('../report/lines.js')).LineReporter(undefined, o.diff, o.redact);
}

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim().toLowerCase();
  } finally {
    rl.close();
  }
}

/** Every host any play (any item) touches (delegates included), to connect them all before the first change. */
function hostsToReach(expanded: ExpandedPlay[]): string[] {
  const all = new Set<string>();
  for (const { play, hosts } of expanded) {
    for (const h of hosts) all.add(h);
    for (const s of play.steps) if (s.delegateTo && !s.delegateTo.includes('{{')) all.add(s.delegateTo);
  }
  return [...all];
}

export function secretsOf(inputs: Inputs): Redactor {
  const r = new Redactor();
  r.addVars(inputs.extraVars);
  r.addInventory(inputs.inventory);
  for (const p of inputs.playbook.plays) r.addVars(p.vars);
  return r;
}

export async function runCommand(playbookFile: string, o: RunOptions & { junit?: string }): Promise<number> {
  const t0 = Date.now();
  const inputs = loadInputs(playbookFile, o);
  await inputs.registry.ensureLoaded();
  const check = Boolean(o.check);
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);

  if (!check && !o.yes) {
    if (!interactive) {
      throw new BatonError(
        'refusing to change anything without --yes when not on a terminal (nothing was touched). ' +
          'Look first with `baton plan` or `baton run --check`, then add --yes.',
        ExitCode.INVALID,
      );
    }
    process.stdout.write(renderPlan(inputs, o) + '\n');
    const answer = await ask('Apply these changes? Type "yes" to go on: ');
    if (answer !== 'yes') {
      process.stderr.write('Nothing was changed.\n');
      return ExitCode.OK;
    }
  }
  if (o.step && !interactive) throw new BatonError('--step needs a terminal to ask on', ExitCode.INVALID);

  const redactor = secretsOf(inputs);
  const reporter = await makeReporter({ ...o, redact: (s) => redactor.redact(s) });
  const junit = o.junit ? new (await import('../report/junit.js')).JunitCollector({ redactor }) : undefined;
  try {
    const r = await runPlaybook(inputs, o, { t0, reporter, redactor, onEvent: junit && ((e) => junit.onEvent(e)), confirm: o.step ? (q) => (reporter.ask ? reporter.ask(q) : ask(q)) : undefined });
    return r.exitCode;
  } catch (e) {
    junit?.addError(path.basename(inputs.playbookFile), (e as Error).message, (e as Error).name);
    throw e;
  } finally {
    if (junit && o.junit) (await import('../report/junit.js')).writeJunit(o.junit, junit.suites, path.basename(inputs.playbookFile));
  }
}

export interface RunHooks {
  /** When the command started (the recap's duration counts from it). */
  t0?: number;
  reporter: Reporter;
  redactor?: Redactor;
  /** Every engine event, after the recap and the reporter saw it (JUnit, a drill's timeline). */
  onEvent?: (e: EngineEvent) => void;
  /** `--step`: how to ask the operator. */
  confirm?: (question: string) => Promise<string>;
}

export interface RunPlaybookResult {
  exitCode: number;
  summary: RunSummary;
}

/**
 * A loaded playbook, run as `baton run` does once it may go ahead: locks, connect every host
 * first, journal, execute (with rollback), recap. `run` and `drill` share it. Throws BatonError
 * (unreachable 4, locked 5) when it stops before the first step.
 */
export async function runPlaybook(inputs: Inputs, o: RunOptions, hooks: RunHooks): Promise<RunPlaybookResult> {
  const t0 = hooks.t0 ?? Date.now();
  const check = Boolean(o.check);
  const reporter = hooks.reporter;
  const ask = hooks.confirm;
  const runId = newRunId();
  const redactor = hooks.redactor ?? secretsOf(inputs);
  const recap = new RecapCollector();
  const onEvent = (e: EngineEvent) => {
    recap.onEvent(e);
    reporter.onEvent(e);
    hooks.onEvent?.(e);
  };
  const notes: string[] = [];
  let held: HeldLocks | undefined;
  let journal: Journal | undefined;
  const pool = new TransportPool((name) => connectionFor(inputs.inventory.hosts.get(name)!, path.dirname(inputs.inventory.file)), {
    acceptNewHostKeys: o.acceptNew,
  });

  const interrupt = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write('\nInterrupted: finishing the steps in flight, then rolling back. Press Ctrl-C again to leave at once (then `baton undo`).\n');
      interrupt.abort();
    } else {
      process.exit(ExitCode.FAILED_NOT_ROLLED_BACK);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    // An empty selection is invalid input: said before any lock, connection or change.
    // Items of looped plays too: each item's hosts and each item's lock are known before anything starts.
    const expanded = expandSelection(inputs.playbook, inputs.inventory, inputs.extraVars, o.limit, inputs.playbookFile);
    const lockNames = lockNamesOf(expanded);
    const hosts = hostsToReach(expanded);
    const { failed: unreachable } = await pool.connectAll(hosts);
    if (unreachable.length) {
      const lines = unreachable.map((u) => `  ${u.host}: ${redactor.redact(u.error.message)}`);
      throw new BatonError(`cannot reach ${unreachable.length} host(s); nothing was changed:\n${lines.join('\n')}`, ExitCode.UNREACHABLE);
    }
    if (!check) {
      held = await acquireRunLocks({ names: lockNames, runId, pool, hosts, inventory: inputs.inventory, note: (m) => notes.push(m) });
      notes.push(...held.notes);
    }

    let resume: ReturnType<typeof findInterrupted>;
    if (!check) {
      const journaledExtraVars = redactor.maskArgs(inputs.extraVars, Object.keys(inputs.extraVars).filter((k) => redactor.redact(String(inputs.extraVars[k])) !== String(inputs.extraVars[k]))) as Record<string, unknown>;
      const lock = lockNames.join(',');
      // We hold the lock: a run of the same playbook that never ended is dead, and may owe steps.
      resume = findInterrupted(inputs.playbookFile, lock, journaledExtraVars);
      if (resume) notes.push(`note: run ${resume.runId} of this playbook was interrupted or left changes in place; this run finishes it (its changes count as changed, so the steps it owed run)`);
      journal = new Journal(runId, undefined, (line) => redactor.redact(line));
      journal.append({
        t: 'run',
        runId,
        mode: 'run',
        playbook: inputs.playbookFile,
        inventory: inputs.inventoryFile,
        inventories: inputs.inventorySources,
        extraVars: journaledExtraVars,
        ...(resume ? { resumes: resume.runId } : {}),
        lock,
        controller: os.hostname(),
        pid: process.pid,
        argv: process.argv.slice(2).map((a) => redactor.redact(a)),
      });
    }

    const result = await execute({
      playbook: inputs.playbook,
      inventory: inputs.inventory,
      extraVars: inputs.extraVars,
      registry: inputs.registry,
      pool: held ? held.guard(pool) : pool,
      runId,
      journal,
      redactor,
      check,
      force: o.force,
      filter: { tags: o.tags, skipTags: o.skipTags },
      limit: o.limit,
      onEvent,
      verbose: o.verbose,
      signal: interrupt.signal,
      resume,
      confirmStep: o.step && ask
        ? async (ref, summary) => {
            const a = await ask(`${ref.host}: ${ref.item ? `[${ref.item}] ` : ''}${summary} — run it? [y]es / [s]kip / [c]ontinue without asking: `);
            return a.startsWith('s') || a.startsWith('n') ? 'skip' : a.startsWith('c') ? 'continue' : 'yes';
          }
        : undefined,
    });

    const outcome = result.outcome;
    journal?.append({ t: 'end', outcome });
    let exitCode = result.exitCode;
    const wouldChange = [...recap.hosts.values()].some((r) => r.wouldChange > 0);
    if (check && o.detailedExitcode && exitCode === ExitCode.OK && wouldChange) exitCode = ExitCode.WOULD_CHANGE;
    const summary: RunSummary = {
      runId,
      mode: check ? 'check' : 'run',
      outcome,
      exitCode,
      recap: recap.hosts,
      failures: result.failures,
      journalPath: journal?.path,
      undoCommand: !check && result.changes.length ? `baton undo ${runId}` : undefined,
      durationMs: Date.now() - t0,
      notes,
      ...(result.items ? { items: result.items } : {}),
    };
    await reporter.finish(summary);
    return { exitCode, summary };
  } catch (e) {
    if (e instanceof BatonError) e.runId ??= runId;
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    journal?.close();
    await held?.release();
    await pool.closeAll();
  }
}
