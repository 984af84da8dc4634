import type { Inventory } from '../inventory/model.js';
import { isOneShot, type StepKind } from '../steps/contract.js';
import type { StepRegistry } from '../steps/registry.js';
import { makeStepContext, type TransportSource } from './context.js';
import type { EngineEvent, StepRef } from './events.js';
import type { Journal } from './journal.js';
import { describeError } from './errors.js';
import { checkTakeover, resourceOf, RunSafety, takeoverOfRevert } from './safety.js';
import { stepTimeoutMs } from './timeouts.js';

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
  /** The step's become, for the revert's commands. */
  become?: { user?: string } | false;
  /** The item of a looped play it belongs to. */
  item?: { index: number; label: string };
}

export interface RevertOptions {
  registry: StepRegistry;
  inventory: Inventory;
  pool: TransportSource;
  journal?: Journal;
  /** A coordinator's fencing check before each revert (see ExecuteOptions.beforeChange). */
  beforeChange?: () => Promise<void>;
  onEvent: (e: EngineEvent) => void;
  timeoutMs?: number;
  /** The run's safety state (fenced hosts, releases); a fresh one, without --force, when absent. */
  safety?: RunSafety;
  /** Masks secrets in errors and notes (a revert's stderr may echo a password). */
  redact?: (text: string) => string;
}


/** Whether a node is back as `before` showed it, in the sense its kind says matters. */
export function isBack(kind: StepKind, before: unknown, now: unknown, args: unknown): boolean {
  return kind.restored ? kind.restored(before, now, args) : kind.satisfied(now, args) === kind.satisfied(before, args);
}

/**
 * Put changes back, newest first. Each revert is journaled (intent, then done) like any
 * change, and verified by probing: the node must look as it did before the step. A failed
 * revert does not stop the others — leaving more in place would only make things worse —
 * but the rollback is then reported incomplete.
 */
export async function revertChanges(changes: AppliedChange[], o: RevertOptions): Promise<boolean> {
  // Inverse kinds too: a revert of a release runs the takeover kind's checks.
  await o.registry.ensureLoaded();
  const safety = o.safety ?? new RunSafety(false);
  const redact = o.redact ?? ((t: string) => t);
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
    if (kind.role === 'fence' && !complete) {
      // Powering a fenced node on while what was taken over from it may still be held elsewhere
      // (an earlier revert failed) invites a split brain: it stays fenced, its change in place
      // for `baton undo` once the rest is back.
      complete = false;
      o.onEvent({ type: 'revert-end', step: c.ref, ok: false, durationMs: 0, error: `left fenced: an earlier revert failed, so what was taken over from ${c.ref.host} may still be held elsewhere; \`baton undo\` unfences it once the rest is put back` });
      continue;
    }
    const resource = resourceOf(kind, c.args);
    let seq: number | undefined;
    const notes: string[] = [];
    const timeoutMs = o.timeoutMs ?? Math.max(stepTimeoutMs(kind, c.args), DEFAULT_REVERT_TIMEOUT_MS);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      // Inside the try: a journal that cannot take the intent fails this revert (nothing done), not the rollback.
      seq = o.journal?.append({
        t: 'intent',
        instance: c.ref.instance,
        stepId: c.ref.stepId,
        name: `revert: ${c.ref.name}`,
        kind: c.kind,
        host: c.ref.host,
        on: c.ref.on ?? c.ref.host,
        args: c.journaledArgs,
        before: c.before,
        ...(resource ? { resource } : {}),
        reverts: { runId: c.runId, seq: c.seq },
        ...(c.item ? { item: c.item } : {}),
      });
      await o.journal?.durable();
      await o.beforeChange?.();
      const host = o.inventory.hosts.get(c.ref.host);
      if (!host) throw new Error(`host ${c.ref.host} is no longer in the inventory`);
      const transport = await o.pool.get(c.ref.on ?? c.ref.host);
      const ctx = makeStepContext({
        host,
        transport,
        inventory: o.inventory,
        pool: o.pool,
        vars: {},
        force: safety.force,
        become: c.become,
        // A hung command must not hang the rollback: every revert is bounded.
        timeoutMs,
        signal: abort.signal,
        log: (m) => notes.push(m),
        // Only a fence marks a node fenced; any step that powers one back on (unfence, a reboot) clears it.
          onMarkDown: (name, reason) => (reason === null ? safety.clearFenced(name) : kind.role === 'fence' ? void safety.fenced.add(name) : undefined),
      });
      const bounded = <T>(p: Promise<T>): Promise<T> =>
        Promise.race([
          p,
          new Promise<never>((_, reject) => abort.signal.addEventListener('abort', () => reject(new Error(`revert timed out after ${timeoutMs / 1000} s; its commands were killed`)), { once: true })),
        ]);
      const oneShot = isOneShot(kind, c.args) || Boolean(kind.readOnly);
      const back = (now: unknown) => isBack(kind, c.before, now, c.args);
      // Already as before (a step that failed before changing anything, a revert done by hand):
      // nothing to put back, and no takeover to check.
      const already = !oneShot && back(await bounded(kind.probe(ctx, c.args)));
      // Putting back what a release gave up is a takeover: the same checks as a forward takeover.
      const takeover = already ? undefined : takeoverOfRevert(kind, o.registry);
      if (takeover) {
        await bounded(
          checkTakeover({
            kind: takeover,
            args: kind.revertAs ? kind.revertAs(c.args, c.before) : c.args,
            host,
            inventory: o.inventory,
            pool: o.pool,
            safety,
            ctx,
            timeoutMs,
            become: c.become,
            warn: (m) => notes.push(m),
          }),
        );
      }
      if (!already) await bounded(kind.revert(ctx, c.args, c.before));
      if (!oneShot && !already) {
        const now = await bounded(kind.probe(ctx, c.args));
        if (!back(now)) {
          throw new Error(
            `revert ran but ${c.ref.host} is not back as before: was ${JSON.stringify(c.before)}, now ${JSON.stringify(now)}`,
          );
        }
      }
      if (kind.role === 'takeover' && resource) safety.noteReleased(resource, c.ref.host);
      if (seq !== undefined) o.journal?.append({ t: 'done', seq, status: 'reverted' });
      o.onEvent({ type: 'revert-end', step: c.ref, ok: true, durationMs: Date.now() - t0, note: redact(notes.join('; ')) || undefined });
    } catch (err) {
      complete = false;
      const error = redact(describeError(err) + (notes.length ? ` (${notes.join('; ')})` : ''));
      if (seq !== undefined) o.journal?.append({ t: 'done', seq, status: 'revert-failed', error });
      o.onEvent({ type: 'revert-end', step: c.ref, ok: false, durationMs: Date.now() - t0, error });
    } finally {
      clearTimeout(timer);
    }
  }
  return complete;
}
