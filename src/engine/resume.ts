import { inspectJournal, journalPath, loadRunHeads, type JournalRecord } from './journal.js';

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
  runId: string;
  /** `instance@host` of every step instance it changed or may have changed. */
  changed: Set<string>;
}

function sameVars(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? {}) === JSON.stringify(b ?? {});
}

export function findInterrupted(playbook: string, lock: string, journaledExtraVars: Record<string, unknown>): Interrupted | undefined {
  // Newest first, from each journal's first line; only the journals that decide are read whole
  // (a state dir keeps every run: reading them all made each run slower than the last).
  const runs = loadRunHeads();
  const heads = new Map(runs.map((r) => [r.id, r.head]));
  // A damaged journal is never trusted, not even to say what is owed: it is passed over.
  const whole = (id: string): JournalRecord[] | undefined => {
    try {
      return inspectJournal(journalPath(id)).records;
    } catch {
      return undefined;
    }
  };
  for (const { id, head } of runs.reverse()) {
    if (head.mode === 'undo') {
      // An undo of the newest run of this playbook: nothing is owed.
      const undone = head.undoOf ? heads.get(head.undoOf) : undefined;
      if (undone && undone.playbook === playbook && undone.lock === lock && whole(id) && whole(head.undoOf!)) return undefined;
      continue;
    }
    if (head.playbook !== playbook || head.lock !== lock) continue;
    const recs = whole(id);
    if (!recs) continue;
    if (!sameVars(head.extraVars, journaledExtraVars)) return undefined;
    // A run that ended whole (succeeded, or rolled back completely) owes nothing; one that died,
    // or failed leaving changes in place (a rollback that could not reach a node), may.
    const end = recs.find((r) => r.t === 'end');
    if (end && end.t === 'end' && end.outcome !== 'failed-not-rolled-back') return undefined;
    const done = new Map<number, string>();
    for (const r of recs) if (r.t === 'done') done.set(r.seq, r.status);
    // Changes its own rollback put back are no longer in place.
    const reverted = new Set<number>();
    for (const r of recs) if (r.t === 'intent' && r.reverts && done.get(r.seq) === 'reverted') reverted.add(r.reverts.seq);
    const changed = new Set<string>();
    for (const r of recs) {
      if (r.t !== 'intent' || r.reverts || reverted.has(r.seq)) continue;
      const status = done.get(r.seq);
      if (status === undefined || status === 'changed' || status === 'failed') changed.add(`${r.instance}@${r.host}`);
    }
    if (changed.size === 0) return undefined;
    return { runId: id, changed };
  }
  return undefined;
}
