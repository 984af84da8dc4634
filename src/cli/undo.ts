import path from 'node:path';
import os from 'node:os';
import { existsSync } from 'node:fs';
import { Journal, journalPath, listRunIds, newRunId, pendingChanges, readJournal, type IntentRecord, type RunRecord } from '../engine/journal.js';
import { acquireRunLocks, type HeldLocks } from '../engine/locks/index.js';
import { RecapCollector, type EngineEvent } from '../engine/events.js';
import { hasMaskedArgs, Redactor, unmaskArgs } from '../engine/redact.js';
import { revertChanges, type AppliedChange } from '../engine/rollback.js';
import { loadInventory } from '../inventory/load.js';
import { connectionFor } from '../inventory/connection.js';
import { loadPlaybook } from '../playbook/load.js';
import { render } from '../playbook/template.js';
import { varsFor } from '../playbook/vars.js';
import { defaultRegistry } from '../steps/registry.js';
import { TransportPool } from '../transport/index.js';
import { BatonError, ExitCode } from '../util/errors.js';
import { makeReporter } from './run.js';

export interface UndoOptions {
  inventory?: string;
  yes?: boolean;
  json?: boolean;
  acceptNew?: boolean;
}

/** Find a run by id or unique prefix. */
export function resolveRunId(idOrPrefix: string): string {
  if (existsSync(journalPath(idOrPrefix))) return idOrPrefix;
  const matches = listRunIds().filter((id) => id.startsWith(idOrPrefix));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new BatonError(`no run ${idOrPrefix} in ${journalPath('')}: see \`baton runs\``, ExitCode.INVALID);
  throw new BatonError(`"${idOrPrefix}" matches ${matches.length} runs (${matches.slice(0, 5).join(', ')}…): give more of the id`, ExitCode.INVALID);
}

/** Seqs of the run's intents already put back by earlier undos. */
function revertedByUndos(runId: string): Set<number> {
  const done = new Set<number>();
  for (const id of listRunIds()) {
    const recs = readJournal(journalPath(id));
    const head = recs[0];
    if (head?.t !== 'run' || head.mode !== 'undo' || head.undoOf !== runId) continue;
    const reverted = new Set(recs.filter((r) => r.t === 'done' && r.status === 'reverted').map((r) => (r as { seq: number }).seq));
    for (const r of recs) if (r.t === 'intent' && r.reverts && reverted.has(r.seq)) done.add(r.reverts.seq);
  }
  return done;
}

/**
 * Secrets are never journaled, so a change whose arguments held one gets them back from the
 * playbook and inventory the run used, rendered again for the same host and loop item.
 */
function restoreSecrets(intent: IntentRecord, run: RunRecord, inventoryFile: string | undefined): unknown {
  if (!hasMaskedArgs(intent.args)) return intent.args;
  if (!run.playbook) throw new BatonError(`cannot restore the secret arguments of ${intent.name}: the journal names no playbook`);
  const inventory = loadInventory(inventoryFile);
  const playbook = loadPlaybook(run.playbook, { inventory, extraVars: run.extraVars ?? {}, registry: defaultRegistry() });
  for (const play of playbook.plays) {
    const step = play.steps.find((s: { id: string }) => s.id === intent.stepId);
    const host = inventory.hosts.get(intent.host);
    if (!step || !host) continue;
    const varsInput = { host, inventory, play, step, extraVars: run.extraVars ?? {}, registered: {}, playHosts: [] };
    let vars = varsFor(varsInput);
    const m = /\[(\d+)\]$/.exec(intent.instance);
    if (m && step.loop !== undefined) {
      const items = render(step.loop, vars) as unknown[];
      vars = varsFor({ ...varsInput, loop: { var: step.loopVar, value: items[Number(m[1])] } });
    }
    return unmaskArgs(intent.args, render(step.args, vars));
  }
  throw new BatonError(`cannot restore the secret arguments of ${intent.name}: step ${intent.stepId} is no longer in ${run.playbook}`);
}

export async function undoCommand(idOrPrefix: string, o: UndoOptions): Promise<number> {
  const t0 = Date.now();
  const runId = resolveRunId(idOrPrefix);
  const records = readJournal(journalPath(runId));
  const run = records[0];
  if (run?.t !== 'run') throw new BatonError(`journal of ${runId} has no run record: it is damaged`, ExitCode.INVALID);
  const pending = pendingChanges(records, revertedByUndos(runId));
  if (pending.length === 0) {
    process.stdout.write(`run ${runId}: nothing to undo (it changed nothing, or every change was already put back)\n`);
    return ExitCode.OK;
  }
  const inventoryFile = o.inventory ?? run.inventory;
  const inventory = loadInventory(inventoryFile);
  const registry = defaultRegistry();

  if (!o.yes) {
    const lines = pending.map((p) => `  ${p.host}${p.on !== p.host ? `→${p.on}` : ''}: revert ${p.name}`);
    if (!(process.stdin.isTTY && process.stdout.isTTY)) {
      throw new BatonError(`refusing to undo without --yes when not on a terminal (nothing was touched). It would revert:\n${lines.join('\n')}`, ExitCode.INVALID);
    }
    process.stdout.write(`Undo run ${runId} (${run.playbook ?? ''}): revert, newest first:\n${lines.join('\n')}\n`);
    const { createInterface } = await import('node:readline/promises');
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    const answer = (await rl.question('Type "yes" to go on: ')).trim();
    rl.close();
    if (answer !== 'yes') return ExitCode.OK;
  }

  const undoId = newRunId();
  let held: HeldLocks | undefined;
  const pool = new TransportPool((name) => {
    const h = inventory.hosts.get(name);
    if (!h) throw new BatonError(`host ${name} of run ${runId} is not in ${inventoryFile ?? 'the inventory'}`, ExitCode.INVALID);
    return connectionFor(h, path.dirname(inventory.file));
  }, { acceptNewHostKeys: o.acceptNew });
  const reporter = await makeReporter(o);
  const recap = new RecapCollector();
  const journal = new Journal(undoId);
  try {
    const notes: string[] = [];
    const changes: AppliedChange[] = pending.map((p) => ({
      ref: { play: 0, playName: 'undo', stepId: p.stepId, instance: p.instance, name: p.name, kind: p.kind, host: p.host, on: p.on === p.host ? undefined : p.on, tags: [] },
      kind: p.kind,
      args: restoreSecrets(p, run, inventoryFile),
      before: p.before,
      seq: p.seq,
      runId,
      journaledArgs: p.args,
    }));
    const hosts = [...new Set(pending.map((p) => p.on))];
    const { failed: unreachable } = await pool.connectAll(hosts);
    if (unreachable.length) {
      throw new BatonError(
        `cannot reach ${unreachable.map((u) => `${u.host} (${u.error.message})`).join(', ')}; nothing was changed`,
        ExitCode.UNREACHABLE,
      );
    }
    held = await acquireRunLocks({ names: (run.lock ?? '').split(',').filter(Boolean), runId: undoId, pool, hosts, inventory, note: (m) => notes.push(m) });
    notes.push(...held.notes);
    journal.append({ t: 'run', runId: undoId, mode: 'undo', undoOf: runId, playbook: run.playbook, inventory: inventoryFile, lock: run.lock, controller: os.hostname(), pid: process.pid, argv: process.argv.slice(2) });
    const onEvent = (e: EngineEvent) => {
      recap.onEvent(e);
      reporter.onEvent(e);
    };
    onEvent({ type: 'rollback-start', reason: `undo of run ${runId} was asked for`, count: changes.length });
    const complete = await revertChanges(changes, { registry, inventory, pool: held.guard(pool), journal, onEvent });
    onEvent({ type: 'rollback-end', complete });
    const outcome = complete ? 'succeeded' : 'failed-not-rolled-back';
    journal.append({ t: 'end', outcome });
    const redactor = new Redactor();
    for (const h of inventory.hosts.values()) redactor.addVars(h.vars);
    const exitCode = complete ? ExitCode.OK : ExitCode.FAILED_NOT_ROLLED_BACK;
    await reporter.finish({
      runId: undoId,
      mode: 'undo',
      outcome,
      exitCode,
      recap: recap.hosts,
      failures: complete ? [] : ['some changes could not be reverted: run `baton undo ' + runId + '` again once the cause is fixed'],
      journalPath: journal.path,
      durationMs: Date.now() - t0,
      notes,
    });
    return exitCode;
  } finally {
    journal.close();
    await held?.release();
    await pool.closeAll();
  }
}
