import path from 'node:path';
import { existsSync } from 'node:fs';
import type { Inventory } from '../inventory/model.js';
import { loadInventory } from '../inventory/load.js';
import type { VaultSecret } from '../inventory/vault.js';
import { loadPlaybook } from '../playbook/load.js';
import { render } from '../playbook/template.js';
import { playItems } from '../playbook/play-items.js';
import { isOneShot } from '../steps/contract.js';
import type { StepRegistry } from '../steps/registry.js';
import { BatonError, ExitCode } from '../util/errors.js';
import { makeStepContext, type TransportSource } from './context.js';
import { describeError } from './errors.js';
import type { EngineEvent } from './events.js';
import {
  inspectJournal,
  journalPath,
  JournalDamagedError,
  listRunIds,
  loadRunHeads,
  loadRuns,
  pendingChanges,
  type LoadedRun,
  type DoneRecord,
  type IntentRecord,
  type Journal,
  type JournalRecord,
  type RunRecord,
} from './journal.js';
import { hasMaskedArgs, unmaskArgs } from './redact.js';
import { expandStep } from './instances.js';
import { isBack, revertChanges, type AppliedChange } from './rollback.js';
import { RunSafety, type PeerPower } from './safety.js';

/**
 * `baton undo RUN`: revert what a run changed and has not put back, newest first — but only
 * from a whole journal, and only what is still as the run left it. Reverts go through the same
 * safety checks as a forward takeover (revertChanges), so an undo cannot make a split brain.
 */

/** Find a run by id or unique prefix. */
export function resolveRunId(idOrPrefix: string): string {
  if (existsSync(journalPath(idOrPrefix))) return idOrPrefix;
  const matches = listRunIds().filter((id) => id.startsWith(idOrPrefix));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new BatonError(`no run ${idOrPrefix} in ${journalPath('')}: see \`baton runs\``, ExitCode.INVALID);
  throw new BatonError(`"${idOrPrefix}" matches ${matches.length} runs (${matches.slice(0, 5).join(', ')}…): give more of the id`, ExitCode.INVALID);
}

/** A journal read whole, or a BatonError (invalid input, exit 2) naming the damaged line. */
export function readWhole(runId: string): { records: JournalRecord[]; torn: boolean } {
  try {
    const r = inspectJournal(journalPath(runId));
    return { records: r.records, torn: r.torn };
  } catch (e) {
    if (e instanceof JournalDamagedError) throw new BatonError(e.message, ExitCode.INVALID);
    throw e;
  }
}

/**
 * The run's intents its reverts touched, read from its own journal (its rollback) and its undos':
 * `reverted`, those an undo confirmed put back; `started`, every one a revert was begun for
 * (killed mid-revert, or failed, included: such a change may be back as before).
 */
function revertsOf(runId: string, own: JournalRecord[], runs: LoadedRun[]): { reverted: Set<number>; started: Set<number> } {
  const reverted = new Set<number>();
  const started = new Set<number>();
  const undos = runs.filter(({ head }) => head.mode === 'undo' && head.undoOf === runId).map((r) => r.records);
  for (const records of [own, ...undos]) {
    const done = new Set(records.filter((r): r is DoneRecord => r.t === 'done' && r.status === 'reverted').map((r) => r.seq));
    for (const r of records) {
      if (r.t !== 'intent' || !r.reverts || r.reverts.runId !== runId) continue;
      started.add(r.reverts.seq);
      // The run's own rollback's confirmed reverts are pendingChanges' to read from its records.
      if (records !== own && done.has(r.seq)) reverted.add(r.reverts.seq);
    }
  }
  return { reverted, started };
}

export interface UndoPlan {
  runId: string;
  run: RunRecord;
  records: JournalRecord[];
  /** Newest first. */
  pending: IntentRecord[];
  /** The run's last record was torn by a crash (said to the operator, not an error). */
  torn: boolean;
  /** Runs that started after it (its undos included), read once for the undo's questions. */
  later: LoadedRun[];
  /** Its changes a revert was begun for (undo.ts revertsOf): found back as before, not drift. */
  revertStarted: Set<number>;
  /** Notes on damaged journals of other runs, left aside. */
  passedOver: string[];
}

export function planUndo(runId: string): UndoPlan {
  const { records, torn } = readWhole(runId);
  const run = records[0] as RunRecord;
  if (run.t !== 'run') throw new BatonError(`journal of ${runId} does not start with its run record: it is damaged; nothing was changed`, ExitCode.INVALID);
  if (run.mode === 'undo') {
    throw new BatonError(`run ${runId} is itself an undo (of ${run.undoOf}); to go back to what that run did, run its playbook again`, ExitCode.INVALID);
  }
  // An undo of this run may have reverted part of it: every journal that is, or may be, one must
  // be whole. A damaged journal whose own first record names another run (an empty seal left by
  // a power loss, say) cannot change what this undo does: it is passed over, and said.
  const damaged: Array<{ id: string; e: Error }> = [];
  const runs = loadRuns((id, e) => damaged.push({ id, e }));
  const heads = damaged.length ? new Map(loadRunHeads().map((r) => [r.id, r.head])) : new Map<string, RunRecord>();
  const passedOver: string[] = [];
  for (const { id, e } of damaged) {
    const h = heads.get(id);
    if (!h && e instanceof JournalDamagedError && e.line === 1 && /^(the journal is empty|its only line is torn)$/.test(e.why)) {
      // No whole first line: its run died before its first record reached the disk (a power
      // loss), and a run changes nothing before its intent, which makes that line durable.
      passedOver.push(`note: the journal of run ${id} has no whole first line (${e.why}: its run stopped before writing anything to disk); it holds no change, so this undo goes on without it`);
      continue;
    }
    if (!h || (h.mode === 'undo' && h.undoOf === runId)) {
      throw new BatonError(e instanceof JournalDamagedError ? e.message : `journal of ${id} is damaged: ${e.message}`, ExitCode.INVALID);
    }
    passedOver.push(`note: the journal of run ${id} (${h.mode === 'undo' ? `an undo of ${h.undoOf}` : 'another run'}) is damaged (${e.message}); it is not this run's undo, so this undo goes on without it`);
  }
  const at = runs.findIndex((r) => r.id === runId);
  // An undo of this run may sort before it (ids carry one-second stamps): undos are looked up among all.
  const reverts = revertsOf(runId, records, runs);
  return { runId, run, records, pending: pendingChanges(records, reverts.reverted), torn, later: runs.slice(at + 1), revertStarted: reverts.started, passedOver };
}

/**
 * Secrets are never journaled, so a change whose arguments held one gets them back from the
 * playbook and inventory the run used, rendered again for the same host and loop item.
 */
export function restoreSecrets(intent: IntentRecord, run: RunRecord, inventory: Inventory, registry: StepRegistry): unknown {
  if (!hasMaskedArgs(intent.args)) return intent.args;
  if (!run.playbook) throw new BatonError(`cannot restore the secret arguments of ${intent.name}: the journal names no playbook`);
  const playbook = loadPlaybook(run.playbook, { inventory, extraVars: run.extraVars ?? {}, registry });
  for (const play of playbook.plays) {
    const step = play.steps.find((s) => s.id === intent.stepId);
    const host = inventory.hosts.get(intent.host);
    if (!step || !host) continue;
    const extraVars = run.extraVars ?? {};
    // A change of a looped play's item is rendered for that item again (found by its place in the loop).
    const item = intent.item && play.loop ? playItems(play, inventory, extraVars)[intent.item.index] : undefined;
    const expansion = expandStep(play, step, host, item, { inventory, extraVars, registered: {}, playHosts: [] });
    const m = /\[(\d+)\]$/.exec(intent.instance);
    const vars = (m && 'instances' in expansion ? expansion.instances[Number(m[1])]?.vars : undefined) ?? expansion.base;
    return unmaskArgs(intent.args, render(step.args, vars));
  }
  throw new BatonError(`cannot restore the secret arguments of ${intent.name}: step ${intent.stepId} is no longer in ${run.playbook}`);
}

/** The inventory the run used (every source, in order), or the operator's; vault secrets to open it. */
export function loadUndoInventory(plan: UndoPlan, override?: string[], vault: VaultSecret[] = []): { inventory: Inventory; file?: string; sources: string[] } {
  const sources = override?.length ? override : (plan.run.inventories ?? (plan.run.inventory ? [plan.run.inventory] : []));
  // The playbook's group_vars/ and host_vars/ as the run read them (its directory, when it still exists).
  const playbookDir = plan.run.playbook ? path.dirname(plan.run.playbook) : undefined;
  return { inventory: loadInventory(sources, { vault, ...(playbookDir ? { playbookDir } : {}) }), file: sources[0], sources };
}

export interface Drift {
  intent: IntentRecord;
  /** What is there now, in words. */
  now: string;
  /** A later run that touched the same resource, when the journals know one. */
  changedBy?: string;
}

/** The latest later run (not an undo of this one) that touched this resource. */
function laterRunTouching(plan: UndoPlan, intent: IntentRecord): string | undefined {
  if (!intent.resource) return undefined;
  const touching = plan.later.filter(
    ({ head, records }) => !(head.mode === 'undo' && head.undoOf === plan.runId) && records.some((r) => r.t === 'intent' && r.resource === intent.resource),
  );
  return touching.at(-1)?.id;
}

/**
 * Changes that are no longer as the run left them: probed now, judged by the kind's own
 * `satisfied`. Only changes the journal says completed are judged; a change whose outcome was
 * never written (a crash mid-step) may or may not have happened, and its revert is idempotent.
 * Likewise a change whose revert was started and never confirmed (an undo or a rollback killed
 * mid-revert) and that is now back as before: that revert took effect, and putting it back again
 * is a no-op, not a later move undone.
 */
export async function findDrift(
  plan: UndoPlan,
  changes: AppliedChange[],
  o: { registry: StepRegistry; inventory: Inventory; pool: TransportSource },
): Promise<Drift[]> {
  await o.registry.ensureLoaded(new Set(changes.map((c) => c.kind)));
  const completed = new Set(plan.records.filter((r): r is DoneRecord => r.t === 'done' && r.status === 'changed').map((r) => r.seq));
  const drift = await Promise.all(
    changes.map(async (c): Promise<Drift | null> => {
      const intent = plan.pending.find((p) => p.seq === c.seq)!;
      const kind = o.registry.get(c.kind);
      if (!kind || kind.readOnly || !completed.has(c.seq)) return null;
      if (isOneShot(kind, c.args)) return null;
      const host = o.inventory.hosts.get(c.ref.host);
      if (!host) return { intent, now: `host ${c.ref.host} is no longer in the inventory` };
      let now: unknown;
      try {
        const transport = await o.pool.get(c.ref.on ?? c.ref.host);
        const ctx = makeStepContext({ host, transport, inventory: o.inventory, pool: o.pool, vars: {}, force: false, timeoutMs: 30_000, become: c.become, log: () => undefined });
        now = await kind.probe(ctx, c.args);
      } catch (e) {
        return { intent, now: `cannot be probed: ${describeError(e)}` };
      }
      if (kind.satisfied(now, c.args)) return null;
      if (plan.revertStarted.has(c.seq) && isBack(kind, c.before, now, c.args)) return null;
      return { intent, now: JSON.stringify(now), changedBy: laterRunTouching(plan, intent) };
    }),
  );
  return drift.filter((d): d is Drift => d !== null);
}

export function driftMessage(runId: string, drift: Drift[]): string {
  const lines = drift.map(
    (d) =>
      `  ${d.intent.on}: ${d.intent.name}${d.intent.resource ? ` [${d.intent.resource}]` : ''}: now ${d.now}` +
      (d.changedBy ? `; changed since by run ${d.changedBy}` : '; changed since by something baton did not journal'),
  );
  return (
    `will not undo run ${runId}: ${drift.length} of its changes are no longer as it left them, so putting back what it found could ` +
    `undo a later move and leave the service on two nodes. Nothing was changed.\n${lines.join('\n')}\n` +
    `Undo the later run first (\`baton undo RUN\`), or move the service with a playbook; --force reverts anyway.`
  );
}

/** The run's pending changes as revertChanges wants them, secrets restored. */
export function changesToRevert(plan: UndoPlan, inventory: Inventory, registry: StepRegistry): AppliedChange[] {
  return plan.pending.map((p) => ({
    ref: { play: 0, playName: 'undo', stepId: p.stepId, instance: p.instance, name: p.name, kind: p.kind, host: p.host, on: p.on === p.host ? undefined : p.on, tags: [], ...(p.item ? { item: p.item.label } : {}) },
    kind: p.kind,
    args: restoreSecrets(p, plan.run, inventory, registry),
    before: p.before,
    seq: p.seq,
    runId: plan.runId,
    journaledArgs: p.args,
    become: p.become,
    ...(p.item ? { item: p.item } : {}),
  }));
}

export interface UndoExecution {
  plan: UndoPlan;
  changes: AppliedChange[];
  inventory: Inventory;
  registry: StepRegistry;
  pool: TransportSource;
  /** Opened only once the undo may go ahead: a refused undo leaves no journal behind. */
  openJournal: () => Journal;
  onEvent: (e: EngineEvent) => void;
  force: boolean;
  /** Asks an unreachable peer's BMC whether it is off (engine/safety.ts); absent: not asked. */
  peerPower?: PeerPower;
  redact?: (text: string) => string;
  /** A coordinator's fencing check before each revert. */
  beforeChange?: () => Promise<void>;
}

/** Check drift, then revert. Throws BatonError (exit 2) on drift, touching nothing. */
export async function executeUndo(u: UndoExecution): Promise<boolean> {
  const drift = await findDrift(u.plan, u.changes, u);
  if (drift.length && !u.force) throw new BatonError(driftMessage(u.plan.runId, drift), ExitCode.INVALID);
  const journal = u.openJournal();
  if (drift.length) {
    u.onEvent({ type: 'log', message: `--force: reverting although ${drift.length} change(s) drifted since the run`, level: 'warn' });
  }
  u.onEvent({ type: 'rollback-start', reason: `undo of run ${u.plan.runId} was asked for`, count: u.changes.length });
  const complete = await revertChanges(u.changes, {
    registry: u.registry,
    inventory: u.inventory,
    pool: u.pool,
    journal,
    onEvent: u.onEvent,
    safety: new RunSafety(u.force, u.peerPower),
    redact: u.redact,
    beforeChange: u.beforeChange,
  });
  u.onEvent({ type: 'rollback-end', complete });
  return complete;
}
