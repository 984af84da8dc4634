import path from 'node:path';
import os from 'node:os';
import type { Inventory } from '../inventory/model.js';
import type { Playbook } from '../playbook/model.js';
import type { StepRegistry } from '../steps/registry.js';
import { connectionFor } from '../inventory/connection.js';
import { TransportPool } from '../transport/index.js';
import { BatonError, ExitCode } from '../util/errors.js';
import type { TransportSource } from './context.js';
import { RecapCollector, type EngineEvent, type StepRef } from './events.js';
import { execute, expandSelection } from './execute.js';
import { lockNamesOf, type ExpandedPlay } from './expand.js';
import { Journal, newRunId, type RunRecord } from './journal.js';
import { acquireRunLocks, type HeldLocks } from './locks/index.js';
import { coordinatorSpec, openCoordinator, type Coordinator } from './coordinator.js';
import { hasPlacement, resolvePlaybookPlacement } from './placement.js';
import { LocalTransport } from '../transport/index.js';
import { bmcPowerFromController } from './safety.js';
import { Redactor } from './redact.js';
import { findInterrupted, mergeResumes, owedCheck, owedOfItems } from './resume.js';
import type { RunReporter, RunSummary } from './summary.js';

/**
 * A run's one home: its connections, its locks, its journal and its recap, opened in that
 * order and closed in reverse whatever happens (the node locks need the connections to be let
 * go). `run`, `drill` and `undo` all go through it.
 */
export class Session {
  readonly pool: TransportPool;
  readonly recap = new RecapCollector();
  /** What the operator hears at the end: stale locks taken over, nodes skipped, a torn journal. */
  readonly notes: string[] = [];
  private held?: HeldLocks;
  journal?: Journal;

  constructor(
    private readonly o: {
      inventory: Inventory;
      reporter: RunReporter;
      acceptNew?: boolean;
      /** Every event after the recap and the reporter saw it (JUnit, a drill's timeline). */
      onEvent?: (e: EngineEvent) => void;
      /** What the reporter is shown of an event (undo masks secrets in log lines). */
      shown?: (e: EngineEvent) => EngineEvent;
      /** A host the pool is asked for that the inventory lacks (default: connectionFor's own error). */
      missingHost?: (name: string) => Error;
      /** Connections already open (the placement read's): the session goes on over them, and closes them. */
      pool?: TransportPool;
      /** Where the run lock and the journal's copy live (default: embedded, this controller's). */
      coordinator?: Coordinator;
    },
  ) {
    const inventory = o.inventory;
    this.pool =
      o.pool ??
      new TransportPool(
        (name) => {
          const h = inventory.hosts.get(name);
          if (!h && o.missingHost) throw o.missingHost(name);
          return connectionFor(h!, path.dirname(inventory.file));
        },
        { acceptNewHostKeys: o.acceptNew },
      );
  }

  readonly onEvent = (e: EngineEvent): void => {
    this.recap.onEvent(e);
    this.o.reporter.onEvent(this.o.shown ? this.o.shown(e) : e);
    this.o.onEvent?.(e);
  };

  /** Connect every host at once, before the first change; those that could not be reached, with why. */
  async connect(hosts: string[]): Promise<Array<{ host: string; error: Error }>> {
    return (await this.pool.connectAll(hosts)).failed;
  }

  /** Take the run's locks (all or none; exit 5 naming the holder), on the connections already open. */
  async lock(names: string[], runId: string, hosts: string[]): Promise<void> {
    this.held = await acquireRunLocks({ names, runId, pool: this.pool, hosts, inventory: this.o.inventory, note: (m) => this.notes.push(m) }, this.o.coordinator?.lockServices());
    this.notes.push(...this.held.notes);
  }

  /** The pool as steps should use it: refused once a lock was lost. */
  get guardedPool(): TransportSource {
    return this.held ? this.held.guard(this.pool) : this.pool;
  }

  /** The coordinator's check before each change (fencing), when it has one. */
  get beforeChange(): (() => Promise<void>) | undefined {
    const held = this.held;
    return held?.beforeChange ? () => held.beforeChange!() : undefined;
  }

  /** Open the journal with its run record; `redact` is applied to every line written. */
  openJournal(runId: string, head: Omit<RunRecord, 'at' | 't' | 'runId' | 'controller' | 'pid'>, redact: (line: string) => string): Journal {
    const held = this.held;
    this.journal = new Journal(runId, undefined, redact, held?.mirror ? (index, line) => held.mirror!(runId, index, line) : undefined);
    this.journal.append({ t: 'run', runId, ...head, controller: os.hostname(), pid: process.pid });
    return this.journal;
  }

  async close(): Promise<void> {
    this.journal?.close();
    // Releasing the node entries needs the connections: before closing them.
    await this.held?.release();
    await this.pool.closeAll();
  }
}

/** What a run needs once its inputs are loaded and validated (cli/inputs.ts's Inputs fits). */
export interface RunInputs {
  playbookFile: string;
  inventoryFile?: string;
  inventorySources: string[];
  playbook: Playbook;
  inventory: Inventory;
  extraVars: Record<string, unknown>;
  registry: StepRegistry;
}

export interface RunSettings {
  check?: boolean;
  detailedExitcode?: boolean;
  step?: boolean;
  force?: boolean;
  acceptNew?: boolean;
  limit?: string;
  tags?: string[];
  skipTags?: string[];
  verbose?: boolean;
  /** `--coordinator`: etcd://… or embedded (default: BATON_COORDINATOR, then the inventory's baton_coordinator). */
  coordinator?: string;
}

export interface RunHooks {
  /** When the command started (the recap's duration counts from it). */
  t0?: number;
  /**
   * The connections the placement read opened (cli/placement-inputs.ts): the run reuses them
   * rather than opening each node's SSH connection a second time; the session closes them.
   */
  pool?: TransportPool;
  reporter: RunReporter;
  redactor?: Redactor;
  /** Every engine event, after the recap and the reporter saw it (JUnit, a drill's timeline). */
  onEvent?: (e: EngineEvent) => void;
  /** `--step`: how to ask the operator. */
  confirm?: (question: string) => Promise<string>;
  /**
   * What SIGINT/SIGTERM does: `rollback` (a person's run: finish the steps in flight, roll back; a
   * second signal leaves at once) or `finish` (the watcher's failover: rolling it back would power
   * the failed node on and leave its groups nowhere, so the run goes on to its end; a second
   * signal leaves at once, and the run is an orphan the next leading watcher finishes).
   */
  onInterrupt?: 'rollback' | 'finish';
}

export interface RunResult {
  exitCode: number;
  summary: RunSummary;
}

/** The extra vars as the journal keeps them: the values of secret ones masked. */
export function journaledVars(extraVars: Record<string, unknown>, redactor: Redactor): Record<string, unknown> {
  return redactor.maskArgs(extraVars, Object.keys(extraVars).filter((k) => redactor.redact(String(extraVars[k])) !== String(extraVars[k]))) as Record<string, unknown>;
}

/** Every secret the run's inputs hold: -e, the inventory's, the plays' vars. */
export function secretsOf(inputs: Pick<RunInputs, 'extraVars' | 'inventory' | 'playbook'>): Redactor {
  const r = new Redactor();
  r.addVars(inputs.extraVars);
  r.addInventory(inputs.inventory);
  for (const p of inputs.playbook.plays) r.addVars(p.vars);
  return r;
}

/**
 * The hosts a run connects before its first change: every host any play (any item) touches,
 * delegates included, must answer — but of a play whose every step is `run_once` (node-failover's
 * fence), one host is enough: its steps run on the first of its hosts that answers, as Ansible's
 * run_once takes the first host that is up. A second node down must not stop the failover of the
 * first one.
 */
export function hostsToReach(expanded: ExpandedPlay[]): { needed: string[]; anyOf: Array<{ title: string; hosts: string[] }> } {
  const needed = new Set<string>();
  const anyOf: Array<{ title: string; hosts: string[] }> = [];
  for (const { play, title, units } of expanded) {
    for (const s of play.steps) if (s.delegateTo && !s.delegateTo.includes('{{')) needed.add(s.delegateTo);
    const once = play.steps.length > 0 && play.steps.every((s) => s.runOnce && !s.delegateTo);
    for (const u of units) {
      if (once && u.hosts.length > 1) anyOf.push({ title: u.title || title, hosts: u.hosts });
      else for (const h of u.hosts) needed.add(h);
    }
  }
  return { needed: [...needed], anyOf };
}

/**
 * Which failed connections stop the run: a needed host's, and those of a run_once play none of
 * whose hosts answered. The others are notes: their play runs on another of its hosts.
 */
export function judgeReach(
  reach: ReturnType<typeof hostsToReach>,
  failed: Array<{ host: string; error: Error }>,
): { fatal: Array<{ host: string; error: Error }>; notes: string[]; down: Set<string> } {
  const down = new Set(failed.map((f) => f.host));
  const needed = new Set(reach.needed);
  const stranded = new Set(reach.anyOf.filter((g) => g.hosts.every((h) => down.has(h))).flatMap((g) => g.hosts));
  const fatal = failed.filter((f) => needed.has(f.host) || stranded.has(f.host));
  const notes = fatal.length
    ? []
    : reach.anyOf.flatMap((g) => {
        const missing = g.hosts.filter((h) => down.has(h));
        const on = g.hosts.find((h) => !down.has(h));
        return missing.length ? [`note: ${missing.join(', ')} could not be reached; "${g.title}" runs its steps once, on ${on} (the first of its hosts that answered)`] : [];
      });
  return { fatal, notes, down };
}

/**
 * A loaded playbook, run as `baton run` does once it may go ahead: connect every host first,
 * locks, journal, execute (with rollback), recap. `run` and `drill` share it. Throws BatonError
 * (unreachable 4, locked 5) when it stops before the first step.
 */
export async function runSession(inputs: RunInputs, o: RunSettings, hooks: RunHooks): Promise<RunResult> {
  const t0 = hooks.t0 ?? Date.now();
  const check = Boolean(o.check);
  const reporter = hooks.reporter;
  const ask = hooks.confirm;
  const runId = newRunId();
  const redactor = hooks.redactor ?? secretsOf(inputs);
  const coordinator = openCoordinator(coordinatorSpec(o.coordinator, inputs.inventory), inputs.inventory);
  const session = new Session({ inventory: inputs.inventory, reporter, acceptNew: o.acceptNew, onEvent: hooks.onEvent, ...(hooks.pool ? { pool: hooks.pool } : {}), coordinator });

  const interrupt = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts === 1 && hooks.onInterrupt === 'finish') {
      process.stderr.write(`\nInterrupted: run ${runId} goes on to its end, not rolled back (a failover half put back leaves its groups nowhere). Signal again to leave at once: the next leading watcher finishes it.\n`);
    } else if (interrupts === 1) {
      process.stderr.write('\nInterrupted: finishing the steps in flight, then rolling back. Press Ctrl-C again to leave at once (then `baton undo`).\n');
      interrupt.abort();
    } else {
      process.exit(ExitCode.FAILED_NOT_ROLLED_BACK);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    // An empty selection is invalid input: said before any lock, connection or change. Items of
    // looped plays too: each item's hosts and each item's lock are known before anything starts.
    // A placement play's items are the moves what runs where now asks for (cli resolves them
    // first to show the plan; a drill's inputs arrive unresolved).
    // etcd unreachable, or its certificate not trusted: said before any node is read.
    if (!check) await coordinator.check();
    const journaledExtraVars = journaledVars(inputs.extraVars, redactor);
    // Other controllers' runs a group playbook may have to finish (placement asks who left what owed).
    if (hasPlacement(inputs.playbook)) session.notes.push(...(await coordinator.syncJournals()));
    const placed = await resolvePlaybookPlacement(inputs.playbook, inputs.inventory, inputs.extraVars, {
      transportOf: (n) => session.pool.get(n),
      bmcRunner: new LocalTransport('controller'),
      // Its lock entry and the steps' peer checks do not wait out the same connection attempt.
      onPoweredOff: (n) => session.pool.markDown(n, 'its BMC says it is powered off'),
      owed: owedCheck(inputs.playbookFile, journaledExtraVars),
    });
    session.notes.push(...placed.notes);
    inputs = { ...inputs, playbook: placed.playbook };
    const expanded = expandSelection(inputs.playbook, inputs.inventory, inputs.extraVars, o.limit, inputs.playbookFile);
    const lockNames = lockNamesOf(expanded);
    const reach = hostsToReach(expanded);
    const toReach = [...new Set([...reach.needed, ...reach.anyOf.flatMap((g) => g.hosts)])];
    const reached = judgeReach(reach, await session.connect(toReach));
    if (reached.fatal.length) {
      const lines = reached.fatal.map((u) => `  ${u.host}: ${redactor.redact(u.error.message)}`);
      throw new BatonError(`cannot reach ${reached.fatal.length} host(s); nothing was changed:\n${lines.join('\n')}`, ExitCode.UNREACHABLE);
    }
    session.notes.push(...reached.notes.map((n) => redactor.redact(n)));
    const hosts = toReach.filter((h) => !reached.down.has(h));
    if (!check) await session.lock(lockNames, runId, hosts);

    let resume: ReturnType<typeof findInterrupted>;
    // Another controller's interrupted run of this playbook is finished here like our own.
    if (!check) session.notes.push(...(await coordinator.syncJournals()));
    if (!check) {
      const lock = lockNames.join(',');
      // We hold the lock: a run of the same playbook that never ended is dead, and may owe steps.
      // So is the last run of each group this run has an item for (its lock is ours now).
      resume = mergeResumes(findInterrupted(inputs.playbookFile, lock, journaledExtraVars), owedOfItems(expanded, inputs.playbookFile, journaledExtraVars));
      const takesOver = resume ? (resume.resumes ?? [resume.runId]) : [];
      if (resume) {
        const ids = resume.runId.split(',');
        const own = ids.every((id) => takesOver.includes(id)) ? ' of this playbook' : '';
        session.notes.push(`note: run ${ids.join(', ')}${own} was interrupted or left changes in place; this run finishes it (its changes count as changed, so the steps it owed run)`);
      }
      session.openJournal(
        runId,
        {
          mode: 'run',
          playbook: inputs.playbookFile,
          inventory: inputs.inventoryFile,
          inventories: inputs.inventorySources,
          extraVars: journaledExtraVars,
          ...(takesOver.length ? { resumes: takesOver.join(',') } : {}),
          ...(resume ? { carries: resume.runId } : {}),
          lock,
          argv: process.argv.slice(2).map((a) => redactor.redact(a)),
        },
        (line) => redactor.redact(line),
      );
    }

    const result = await execute({
      playbook: inputs.playbook,
      inventory: inputs.inventory,
      extraVars: inputs.extraVars,
      registry: inputs.registry,
      pool: session.guardedPool,
      runId,
      journal: session.journal,
      redactor,
      check,
      force: o.force,
      unreachable: reached.down,
      peerPower: bmcPowerFromController(),
      filter: { tags: o.tags, skipTags: o.skipTags },
      limit: o.limit,
      onEvent: session.onEvent,
      verbose: o.verbose,
      signal: interrupt.signal,
      resume,
      beforeChange: session.beforeChange,
      confirmStep: o.step && ask
        ? async (ref: StepRef, summary: string) => {
            const a = await ask(`${ref.host}: ${ref.item ? `[${ref.item}] ` : ''}${summary} — run it? [y]es / [s]kip / [c]ontinue without asking: `);
            return a.startsWith('s') || a.startsWith('n') ? 'skip' : a.startsWith('c') ? 'continue' : 'yes';
          }
        : undefined,
    });

    const outcome = result.outcome;
    session.journal?.append({ t: 'end', outcome, ...(result.items ? { items: result.items.map((i) => ({ label: i.label, outcome: i.outcome })) } : {}) });
    // Its last records lost (disk full): what they would have closed reads as pending, for undo to judge.
    if (session.journal?.writeError) session.notes.push(`${session.journal.writeError.message}; the records after that point are not in it`);
    let exitCode = result.exitCode;
    const wouldChange = [...session.recap.hosts.values()].some((r) => r.wouldChange > 0);
    if (check && o.detailedExitcode && exitCode === ExitCode.OK && wouldChange) exitCode = ExitCode.WOULD_CHANGE;
    const summary: RunSummary = {
      runId,
      mode: check ? 'check' : 'run',
      outcome,
      exitCode,
      recap: session.recap.hosts,
      failures: result.failures,
      journalPath: session.journal?.path,
      undoCommand: !check && result.changes.length ? `baton undo ${runId}` : undefined,
      durationMs: Date.now() - t0,
      notes: session.notes,
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
    await session.close();
  }
}
