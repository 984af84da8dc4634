import { coordinatorSpec, openCoordinator } from '../engine/coordinator.js';
import { newRunId } from '../engine/journal.js';
import { loadInventory } from '../inventory/load.js';
import { Session } from '../engine/session.js';
import { Redactor } from '../engine/redact.js';
import { changesToRevert, executeUndo, loadUndoInventory, planUndo, resolveRunId } from '../engine/undo.js';
import { bmcPowerFromController } from '../engine/safety.js';
import { defaultRegistry } from '../steps/registry.js';
import { BatonError, ExitCode } from '../util/errors.js';
import { makeReporter } from '../report/make.js';
import { inventorySources, vaultSecrets } from './inputs.js';

export { resolveRunId };

export interface UndoOptions {
  inventory?: string[];
  vaultPasswordFile?: string[];
  vaultId?: string[];
  yes?: boolean;
  json?: boolean;
  acceptNew?: boolean;
  force?: boolean;
  coordinator?: string;
}

export async function undoCommand(idOrPrefix: string, o: UndoOptions): Promise<number> {
  const t0 = Date.now();
  // With etcd: a run another controller journaled is copied here first, its undos too. With -i,
  // the inventory's baton_coordinator and etcd TLS files count already (a watcher's undo).
  const given = inventorySources(o.inventory);
  const early = given.length ? loadInventory(given, { vault: vaultSecrets(o) }) : undefined;
  const synced = await openCoordinator(coordinatorSpec(o.coordinator, early), early).syncJournals();
  for (const n of synced) process.stderr.write(`${n}\n`);
  const runId = resolveRunId(idOrPrefix);
  let plan = planUndo(runId);
  const { run, pending } = plan;
  if (pending.length === 0) {
    process.stdout.write(`run ${runId}: nothing to undo (it changed nothing, or every change was already put back)\n`);
    return ExitCode.OK;
  }
  const { inventory, file: inventoryFile, sources } = loadUndoInventory(plan, inventorySources(o.inventory), vaultSecrets(o));
  const registry = defaultRegistry();
  // Every secret the run's inputs hold is masked in undo's output and journal, as in run's.
  const redactor = new Redactor();
  redactor.addVars(run.extraVars ?? {});
  redactor.addInventory(inventory);
  await registry.ensureLoaded();
  let changes = changesToRevert(plan, inventory, registry);
  // Secret arguments restored from the inventory are masked wherever they would show.
  for (const c of changes) redactor.maskArgs(c.args, registry.get(c.kind)?.secretArgs);

  if (!o.yes) {
    const lines = pending.map((p) => `  ${p.host}${p.on !== p.host ? `→${p.on}` : ''}: ${p.item ? `[${p.item.label}] ` : ''}revert ${p.name}`);
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
  const coordinator = openCoordinator(coordinatorSpec(o.coordinator, inventory), inventory);
  const reporter = await makeReporter(o);
  const session = new Session({
    inventory,
    reporter,
    acceptNew: o.acceptNew,
    shown: (e) => (e.type === 'log' ? { ...e, message: redactor.redact(e.message) } : e),
    missingHost: (name) => new BatonError(`host ${name} of run ${runId} is not in ${inventoryFile ?? 'the inventory'}`, ExitCode.INVALID),
    coordinator,
  });
  try {
    const notes = session.notes;
    notes.push(...plan.passedOver);
    if (plan.torn) notes.push(`note: the last line of run ${runId}'s journal was torn (the controller died while writing it); that record was never acted on`);
    await coordinator.check();
    const hosts = [...new Set(pending.map((p) => p.on))];
    const unreachable = await session.connect(hosts);
    if (unreachable.length) {
      throw new BatonError(
        `cannot reach ${unreachable.map((u) => `${u.host} (${redactor.redact(u.error.message)})`).join(', ')}; nothing was changed`,
        ExitCode.UNREACHABLE,
      );
    }
    await session.lock((run.lock ?? '').split(',').filter(Boolean), undoId, hosts);
    // Planned again under the lock: while the plan waited (at the prompt, or for the lock) another
    // undo of this run may have ended and a later run taken the group over; reverting the old
    // plan would then undo that run's work.
    for (const n of await coordinator.syncJournals()) notes.push(n);
    const fresh = planUndo(runId);
    const key = (p: { pending: Array<{ seq: number }> }) => p.pending.map((c) => c.seq).join(',');
    if (key(fresh) !== key(plan)) {
      if (fresh.pending.length === 0) {
        process.stdout.write(`run ${runId}: nothing to undo any more (its changes were put back by another undo while this one waited); nothing was changed\n`);
        return ExitCode.OK;
      }
      if (!o.yes) {
        throw new BatonError(`run ${runId}'s changes to undo are not the ones shown (another undo or run ended while this one waited); nothing was changed: run \`baton undo ${runId}\` again to see what it would do now`, ExitCode.INVALID);
      }
      notes.push(`note: another undo or run ended while this undo waited for the lock: it reverts what is left (${fresh.pending.length} of ${plan.pending.length} changes)`);
    }
    plan = fresh;
    changes = changesToRevert(plan, inventory, registry);
    for (const c of changes) redactor.maskArgs(c.args, registry.get(c.kind)?.secretArgs);
    const redactLine = (line: string) => redactor.redact(line);
    const openJournal = () =>
      session.openJournal(undoId, { mode: 'undo', undoOf: runId, playbook: run.playbook, inventory: inventoryFile, inventories: sources, lock: run.lock, argv: process.argv.slice(2).map((a) => redactor.redact(a)) }, redactLine);
    const complete = await executeUndo({ plan, changes, inventory, registry, pool: session.guardedPool, openJournal, onEvent: session.onEvent, force: Boolean(o.force), peerPower: bmcPowerFromController(), redact: (t) => redactor.redact(t), beforeChange: session.beforeChange });
    const outcome = complete ? 'succeeded' : 'failed-not-rolled-back';
    session.journal!.append({ t: 'end', outcome });
    const exitCode = complete ? ExitCode.OK : ExitCode.FAILED_NOT_ROLLED_BACK;
    await reporter.finish({
      runId: undoId,
      mode: 'undo',
      outcome,
      exitCode,
      recap: session.recap.hosts,
      failures: complete ? [] : ['some changes could not be reverted: run `baton undo ' + runId + '` again once the cause is fixed'],
      journalPath: session.journal!.path,
      durationMs: Date.now() - t0,
      notes,
    });
    return exitCode;
  } finally {
    await session.close();
  }
}
