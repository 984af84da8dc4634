import { inspectJournal, journalPath, listRunIds, type JournalRecord, type RunRecord } from './journal.js';

/**
 * Re-runs finish what a crash left. A run killed between `raise_vip` and `garp` leaves the VIP
 * up and the announcement owed; a plain re-run would find raise_vip ok and skip every
 * `when: vip_raised is changed` step, leaving clients on the old MAC. So a run that starts where
 * the last run of the same playbook, lock and extra vars never ended takes over its record: the
 * step instances that run changed (or had started changing) count as changed in the re-run, and
 * the one-shot steps they trigger run exactly as in a clean run.
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
  const ids = listRunIds().reverse();
  for (const id of ids) {
    let recs: JournalRecord[];
    try {
      recs = inspectJournal(journalPath(id)).records;
    } catch {
      // A damaged journal is never trusted, not even to say what is owed.
      continue;
    }
    const head = recs[0];
    if (head?.t !== 'run') continue;
    if (head.mode === 'undo') {
      // An undo of the newest run of this playbook: nothing is owed.
      const undone = head.undoOf ? readHead(head.undoOf) : undefined;
      if (undone && undone.playbook === playbook && undone.lock === lock) return undefined;
      continue;
    }
    if (head.playbook !== playbook || head.lock !== lock) continue;
    if (!sameVars(head.extraVars, journaledExtraVars)) return undefined;
    if (recs.some((r) => r.t === 'end')) return undefined;
    const changed = new Set<string>();
    const done = new Map<number, string>();
    for (const r of recs) if (r.t === 'done') done.set(r.seq, r.status);
    for (const r of recs) {
      if (r.t !== 'intent' || r.reverts) continue;
      const status = done.get(r.seq);
      if (status === undefined || status === 'changed' || status === 'failed') changed.add(`${r.instance}@${r.host}`);
    }
    return { runId: id, changed };
  }
  return undefined;
}

function readHead(runId: string): RunRecord | undefined {
  try {
    const head = inspectJournal(journalPath(runId)).records[0];
    return head?.t === 'run' ? head : undefined;
  } catch {
    return undefined;
  }
}
