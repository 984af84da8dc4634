import os from 'node:os';
import { basename } from 'node:path';
import type { ExpandedPlay } from './expand.js';
import { inspectJournal, journalPath, loadRunHeads, type EndRecord, type IntentRecord, type JournalRecord } from './journal.js';
import type { OwedCheck } from './placement.js';

type RunHeads = ReturnType<typeof loadRunHeads>;

/**
 * Re-runs finish what a crash left. A run killed between `raise_vip` and `garp` leaves the VIP
 * up and the announcement owed; a plain re-run would find raise_vip ok and skip every
 * `when: vip_raised is changed` step, leaving clients on the old MAC. The same holds for a run
 * that failed and could not roll back (its SSH session to the new holder died at `garp`). So a
 * run that starts where the last run of the same playbook, lock and extra vars never ended, or
 * ended with changes in place, takes over its record: the step instances that run changed (or had
 * started changing) and did not put back count as changed in the re-run, and the one-shot steps
 * they trigger run exactly as in a clean run.
 *
 * Only the newest such run is considered, and only while nothing undid it: a later run that
 * ended, or an undo of it, means nothing is owed any more.
 */
export interface Interrupted {
  /** The run (or runs, comma-separated) whose changes count as changed here. */
  runId: string;
  /** `instance@host` of every step instance it changed or may have changed. */
  changed: Set<string>;
  /** The runs this one takes over, as the same request run again (absent: `runId`). */
  resumes?: string[];
}

/** The same extra vars, whatever order the `-e` flags (or a JSON object's keys) came in. */
export function sameVars(a: unknown, b: unknown): boolean {
  return canonical(a ?? {}) === canonical(b ?? {});
}

const canonical = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(canonical).join(',')}]`
    : v !== null && typeof v === 'object'
      ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`
      : JSON.stringify(v) ?? 'null';

/** The run's end record, if it ended. */
const endOf = (recs: JournalRecord[]): EndRecord | undefined => recs.find((r): r is EndRecord => r.t === 'end');

/**
 * A run that ended whole (succeeded, or rolled back completely) owes nothing; one that died, or
 * failed leaving changes in place (a rollback that could not reach a node), may.
 */
const endedWhole = (end: EndRecord | undefined): boolean => end !== undefined && end.outcome !== 'failed-not-rolled-back';

/** The intents a run changed (or had started changing) that its own rollback did not put back. */
function intentsInPlace(recs: JournalRecord[]): IntentRecord[] {
  const done = new Map<number, string>();
  for (const r of recs) if (r.t === 'done') done.set(r.seq, r.status);
  const reverted = new Set<number>();
  for (const r of recs) if (r.t === 'intent' && r.reverts && done.get(r.seq) === 'reverted') reverted.add(r.reverts.seq);
  return recs.filter((r): r is IntentRecord => {
    if (r.t !== 'intent' || r.reverts || reverted.has(r.seq)) return false;
    const status = done.get(r.seq);
    return status === undefined || status === 'changed' || status === 'failed';
  });
}

/** Journals read whole (null: damaged), by run id: one read however many groups ask. */
type JournalCache = Map<string, JournalRecord[] | null>;

/** A journal's records; null when it is damaged: never trusted, not even to say what is owed. */
function recordsOf(id: string, cache?: JournalCache): JournalRecord[] | null {
  if (cache?.has(id)) return cache.get(id)!;
  let recs: JournalRecord[] | null;
  try {
    recs = inspectJournal(journalPath(id)).records;
  } catch {
    recs = null;
  }
  cache?.set(id, recs);
  return recs;
}

/**
 * The runs a run took over that it may not have finished. A re-run that finishes an interrupted
 * run counts that run's changes as its own `changed` without owning them: if it then fails (its
 * rollback puts back only its own changes) or dies, what the interrupted run left is still owed,
 * and a third run must finish it. Only a run that succeeded settled what it took over.
 */
function passedOn(head: Carrier, settled: boolean, group: string | undefined): string[] {
  // The same request re-run takes over only runs of that request (`resumes`): their step numbering
  // is its own. For one group, every run whose debt it carried (`carries`), read for that group.
  const took = group === undefined ? head.resumes : (head.carries ?? head.resumes);
  return took && !settled ? took.split(',') : [];
}

type Carrier = { resumes?: string; carries?: string; mode?: string; undoOf?: string };

/** Each run an undo was run for, with those undos: what it left was put back, it owes nothing. */
function undosOf(heads: Map<string, Carrier>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [id, h] of heads) if (h.mode === 'undo' && h.undoOf) out.set(h.undoOf, [...(out.get(h.undoOf) ?? []), id]);
  return out;
}

/**
 * The intents still in place of a run and of the runs it took over without finishing them, with
 * the runs they belong to (oldest first). `keep` narrows the intents (a group's item).
 */
function debtOf(
  id: string,
  heads: Map<string, Carrier>,
  cache: JournalCache | undefined,
  group?: string,
  seen = new Set<string>(),
  undos = undosOf(heads),
): { runs: string[]; intents: IntentRecord[] } {
  // Undone (by an undo whose journal reads back whole: a damaged one undoes nothing).
  const undone = (undos.get(id) ?? []).some((u) => recordsOf(u, cache) !== null);
  const recs = seen.has(id) || undone ? null : recordsOf(id, cache);
  seen.add(id);
  if (!recs) return { runs: [], intents: [] };
  const end = endOf(recs);
  // For one group, its own item decides: ended whole (its rollback put back what it changed) or
  // succeeded (it also finished what it took over).
  const item = group === undefined ? undefined : itemOutcome(recs, end, group);
  const ownSettled = endedWhole(end) || (item !== undefined && ITEM_SETTLED.has(item));
  const own = ownSettled ? [] : intentsInPlace(recs).filter((r) => group === undefined || r.item?.label === group);
  const runs: string[] = [];
  const intents: IntentRecord[] = [];
  for (const earlier of passedOn(heads.get(id) ?? {}, end?.outcome === 'succeeded' || item === 'succeeded', group)) {
    const d = debtOf(earlier, heads, cache, group, seen, undos);
    runs.push(...d.runs);
    intents.push(...d.intents);
  }
  if (own.length) runs.push(id);
  return { runs, intents: [...intents, ...own] };
}

export function findInterrupted(playbook: string, lock: string, journaledExtraVars: Record<string, unknown>): Interrupted | undefined {
  // Newest first, from each journal's first line; only the journals that decide are read whole
  // (a state dir keeps every run: reading them all made each run slower than the last).
  const runs = loadRunHeads();
  const heads = new Map(runs.map((r) => [r.id, r.head]));
  const whole = (id: string): boolean => recordsOf(id) !== null;
  for (const { id, head } of runs.reverse()) {
    if (head.mode === 'undo') {
      // An undo of the newest run of this playbook: nothing is owed.
      const undone = head.undoOf ? heads.get(head.undoOf) : undefined;
      if (undone && samePlaybook(undone.playbook, playbook) && undone.lock === lock && whole(id) && whole(head.undoOf!)) return undefined;
      continue;
    }
    // By file name, as the groups' debt is read: another controller (or an install moved) runs
    // the same playbook from another path.
    if (!samePlaybook(head.playbook, playbook) || head.lock !== lock) continue;
    const recs = recordsOf(id);
    if (!recs) continue;
    if (!sameVars(head.extraVars, journaledExtraVars)) return undefined;
    // The newest run, and what it took over and did not finish (a re-run that failed in turn).
    const debt = debtOf(id, heads, undefined);
    const changed = new Set(debt.intents.map((r) => `${r.instance}@${r.host}`));
    if (changed.size === 0) return undefined;
    return { runId: debt.runs.join(','), changed, resumes: debt.runs };
  }
  return undefined;
}

/**
 * What the last run of one service group left owed. The group playbooks (service-move,
 * node-evacuate, node-failover, service-start) run one item per group, each under the group's own
 * lock: a run killed after raising the group's VIP on its new node, before the GARP and the NFSv3
 * lock holders' notification, leaves the group running there whole, and a re-run — the same
 * command, or the watcher finishing an orphan — would find nothing to move. So the newest run
 * that took the group's lock is read, whatever its playbook and vars: if it never ended (and is
 * not alive on this controller) or ended with changes in place, and nothing undid it, the step
 * instances it changed for the group's item (and did not put back) are owed, numbered as that run
 * numbered them; its playbook and vars tell whether a re-run is the same request.
 */
export interface OwedByGroup {
  /** The runs the debt is of (comma-separated): the newest under the lock, or runs it carried. */
  runId: string;
  /**
   * The request (playbook, vars) of each run involved: the newest under the lock and every run
   * whose debt is owed. A re-run of any of them is "the same request" (it finishes, not moves on).
   */
  requests: Array<{ runId: string; playbook?: string; extraVars?: Record<string, unknown> }>;
  /** Intents of the group's item still in place, as the interrupted run numbered them, with their kind. */
  changed: Array<{ instance: string; host: string; kind: string }>;
}

const isRequest = (r: { playbook?: string; extraVars?: Record<string, unknown> }, playbook: string, vars: Record<string, unknown>): boolean =>
  samePlaybook(r.playbook, playbook) && sameVars(r.extraVars, vars);

/** Whether a run that never ended is still going: only this controller's own runs can be told (its pid). */
function aliveHere(head: { controller: string; pid: number }): boolean {
  if (head.controller !== os.hostname()) return false;
  try {
    process.kill(head.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** An item that ended so owes nothing: its steps all ran, or its own rollback put them back. */
const ITEM_SETTLED = new Set(['succeeded', 'rolled-back']);


/**
 * `runs`: the journals' first lines, oldest first (loadRunHeads), and `cache`: the journals read,
 * when the caller asks for many groups.
 */
export function owedByGroup(group: string, lock: string, runs: RunHeads = loadRunHeads(), cache?: JournalCache): OwedByGroup | undefined {
  const heads = new Map(runs.map((r) => [r.id, r.head]));
  const locks = (l: string | undefined) => (l ?? '').split(',');
  for (const { id, head } of [...runs].reverse()) {
    if (head.mode === 'undo') {
      const undone = head.undoOf ? heads.get(head.undoOf) : undefined;
      if (undone && locks(undone.lock).includes(lock)) return undefined;
      continue;
    }
    if (!locks(head.lock).includes(lock)) continue;
    const recs = recordsOf(id, cache);
    if (!recs) continue;
    if (!endOf(recs) && aliveHere(head)) return undefined;
    // What the group's item left in place, and what it took over from earlier runs and did not finish.
    const debt = debtOf(id, heads, cache, group);
    if (!debt.intents.length) return undefined;
    const requests = [...new Set([id, ...debt.runs])].map((r) => {
      const h = heads.get(r);
      return { runId: r, ...(h?.playbook ? { playbook: h.playbook } : {}), ...(h?.extraVars ? { extraVars: h.extraVars } : {}) };
    });
    return { runId: debt.runs.join(','), requests, changed: debt.intents.map((r) => ({ instance: r.instance, host: r.host, kind: r.kind })) };
  }
  return undefined;
}

/** How a group's item of a run ended, from its item record or the run's end record. */
function itemOutcome(recs: JournalRecord[], end: EndRecord | undefined, group: string): string | undefined {
  for (const r of recs) if (r.t === 'item' && r.label === group) return r.outcome;
  return end?.items?.find((i) => i.label === group)?.outcome;
}

/**
 * What the last runs of the groups this run has items for left owed, as this run numbers its step
 * instances: `pP.STEP#I[K]@host` of the interrupted run (STEP: `s0.group-move.s17`) becomes this
 * run's play and item numbers for the same group, where this run's step STEP is of the same kind
 * (the group playbooks all run the group-move role, so a service-move cut short is finished by a
 * service-start as well).
 * `resumes` lists the runs this one finishes as the same request (the same playbook and vars):
 * only those count as taken over (runs.ts, the watcher's orphans); another request finishes what
 * it can of a group and leaves the rest of that run to its own re-run.
 */
export function owedOfItems(expanded: ExpandedPlay[], playbook: string, extraVars: Record<string, unknown>): Interrupted | undefined {
  let heads: RunHeads | undefined;
  const cache: JournalCache = new Map();
  const changed = new Set<string>();
  const runs = new Set<string>();
  const same = new Set<string>();
  for (const { play, index, units } of expanded) {
    const kinds = new Map(play.steps.map((s) => [s.id.replace(/^p\d+\./, ''), s.kind]));
    for (const u of units) {
      // Only a service group's item (a placement move: its label is the group, its lock the group's).
      if (!u.item || !isMove(u.item.value)) continue;
      const o = owedByGroup(u.item.label, u.lock, (heads ??= loadRunHeads()), cache);
      if (!o) continue;
      for (const c of o.changed) {
        const m = /^p\d+\.([^#]+)#\d+(.*)$/.exec(c.instance);
        if (!m || kinds.get(m[1]!) !== c.kind) continue;
        changed.add(`p${index}.${m[1]}#${u.item.index}${m[2]}@${c.host}`);
        runs.add(o.runId);
        // Taken over as the same request: only the owing runs that were this request themselves.
        const owing = o.runId.split(',');
        for (const r of o.requests) if (owing.includes(r.runId) && isRequest(r, playbook, extraVars)) same.add(r.runId);
      }
    }
  }
  if (!changed.size) return undefined;
  return { runId: [...runs].join(','), changed, resumes: [...same] };
}

/** Both what the same run, interrupted, left and what the groups' last runs left. */
export function mergeResumes(a: Interrupted | undefined, b: Interrupted | undefined): Interrupted | undefined {
  if (!a || !b) return a ?? b;
  return { runId: [...new Set([...a.runId.split(','), ...b.runId.split(',')])].join(','), changed: new Set([...a.changed, ...b.changed]), resumes: [...new Set([...(a.resumes ?? [a.runId]), ...(b.resumes ?? [])])] };
}

/**
 * Placement's question (engine/placement.ts OwedCheck) for a request: the playbook and its vars as
 * journaled (secrets masked), to tell the same request run again from another one.
 */
export function owedCheck(playbookFile: string, journaledVars: Record<string, unknown>): OwedCheck {
  let runs: RunHeads | undefined;
  const cache: JournalCache = new Map();
  return (g) => {
    const o = owedByGroup(g.name, g.lock, (runs ??= loadRunHeads()), cache);
    return o && { runId: o.runId, sameRequest: o.requests.some((r) => isRequest(r, playbookFile, journaledVars)) };
  };
}

/**
 * The same playbook for "the same request": by file name, as the watcher tells its failovers
 * (orphans.ts): `playbooks/node-failover.yml` run by hand and the watcher's shipped
 * `node-failover.yml` are one request, wherever each controller has it installed.
 */
function samePlaybook(a: string | undefined, b: string): boolean {
  return a !== undefined && basename(a) === basename(b);
}

/** A placement play's item: a service group's move (engine/placement.ts Move). */
function isMove(v: unknown): boolean {
  return typeof v === 'object' && v !== null && typeof (v as { reason?: unknown }).reason === 'string' && typeof (v as { lock?: unknown }).lock === 'string';
}
