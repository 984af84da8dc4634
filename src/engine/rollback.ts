import { isDeepStrictEqual } from 'node:util';
import type { Inventory } from '../inventory/model.js';
import type { StepKind } from '../steps/contract.js';
import type { StepRegistry } from '../steps/registry.js';
import { makeStepContext, type TransportSource } from './context.js';
import type { EngineEvent, StepRef } from './events.js';
import type { Journal } from './journal.js';
import { describeError } from './errors.js';

/** Per command of a revert, when the caller sets no bound (a step's own timeout is for its apply). */
export const DEFAULT_REVERT_TIMEOUT_MS = 120_000;

/** A change that was (or may have been) made: what reverting it needs. */
export interface AppliedChange {
  ref: StepRef;
  kind: string;
  args: unknown;
  before: unknown;
  /** Seq of its intent record in the run's journal. */
  seq: number;
  runId: string;
  /** Journal copy of args (secrets masked). */
  journaledArgs: unknown;
}

export interface RevertOptions {
  registry: StepRegistry;
  inventory: Inventory;
  pool: TransportSource;
  journal?: Journal;
  onEvent: (e: EngineEvent) => void;
  timeoutMs?: number;
}

function isOneShot(kind: StepKind, args: unknown): boolean {
  return typeof kind.oneShot === 'function' ? kind.oneShot(args) : Boolean(kind.oneShot);
}

/**
 * Put changes back, newest first. Each revert is journaled (intent, then done) like any
 * change, and verified by probing: the node must look as it did before the step. A failed
 * revert does not stop the others — leaving more in place would only make things worse —
 * but the rollback is then reported incomplete.
 */
export async function revertChanges(changes: AppliedChange[], o: RevertOptions): Promise<boolean> {
  await o.registry.ensureLoaded(new Set(changes.map((c) => c.kind)));
  let complete = true;
  const ordered = [...changes].sort((a, b) => b.seq - a.seq);
  for (const c of ordered) {
    const kind = o.registry.get(c.kind);
    const t0 = Date.now();
    o.onEvent({ type: 'revert-start', step: c.ref });
    if (!kind) {
      complete = false;
      o.onEvent({ type: 'revert-end', step: c.ref, ok: false, durationMs: 0, error: `unknown step kind ${c.kind}: this baton cannot revert it` });
      continue;
    }
    const seq = o.journal?.append({
      t: 'intent',
      instance: c.ref.instance,
      stepId: c.ref.stepId,
      name: `revert: ${c.ref.name}`,
      kind: c.kind,
      host: c.ref.host,
      on: c.ref.on ?? c.ref.host,
      args: c.journaledArgs,
      before: c.before,
      reverts: { runId: c.runId, seq: c.seq },
    });
    const notes: string[] = [];
    try {
      const host = o.inventory.hosts.get(c.ref.host);
      if (!host) throw new Error(`host ${c.ref.host} is no longer in the inventory`);
      const transport = await o.pool.get(c.ref.on ?? c.ref.host);
      const ctx = makeStepContext({
        host,
        transport,
        inventory: o.inventory,
        pool: o.pool,
        vars: {},
        force: true,
        // A hung command must not hang the rollback: every revert command gets a bound.
        timeoutMs: o.timeoutMs ?? DEFAULT_REVERT_TIMEOUT_MS,
        log: (m) => notes.push(m),
      });
      await kind.revert(ctx, c.args, c.before);
      if (!isOneShot(kind, c.args) && !kind.readOnly) {
        const now = await kind.probe(ctx, c.args);
        if (!isDeepStrictEqual(now, c.before)) {
          throw new Error(
            `revert ran but ${c.ref.host} does not look as before: was ${JSON.stringify(c.before)}, now ${JSON.stringify(now)}`,
          );
        }
      }
      if (seq !== undefined) o.journal?.append({ t: 'done', seq, status: 'reverted' });
      o.onEvent({ type: 'revert-end', step: c.ref, ok: true, durationMs: Date.now() - t0, note: notes.join('; ') || undefined });
    } catch (err) {
      complete = false;
      const error = describeError(err);
      if (seq !== undefined) o.journal?.append({ t: 'done', seq, status: 'revert-failed', error });
      o.onEvent({ type: 'revert-end', step: c.ref, ok: false, durationMs: Date.now() - t0, error });
    }
  }
  return complete;
}
