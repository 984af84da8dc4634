import { basename } from 'node:path';
import { loadRuns, pendingChanges } from './journal.js';

/** One run as `baton runs` shows it. */
export interface RunRow {
  runId: string;
  mode: 'run' | 'undo';
  started: string;
  durationMs?: number;
  playbook: string;
  /** The extra vars that identify the move (from=n1 to=n2), secrets masked. */
  vars: string;
  outcome: string;
  changesInPlace: number;
  undoOf?: string;
  undoneBy: string[];
  /** A later run changed the same resources: this run's changes are no longer what is there. */
  supersededBy?: string;
  /** A later re-run finished what this interrupted run owed. */
  finishedBy?: string;
  /** The journal cannot be trusted (line and why). */
  damaged?: string;
  /** Items of looped plays and how each ended. */
  items?: Array<{ label: string; outcome: string }>;
}

const masked = (v: unknown) => (v && typeof v === 'object' && '$secret' in (v as object) ? '********' : typeof v === 'string' ? v : JSON.stringify(v));

/**
 * Every journaled run with its outcome and what became of its changes: undone, superseded by a
 * later run that touched the same resources, or still in place. Damaged journals are listed as such.
 */
export function describeRuns(): RunRow[] {
  const rows: RunRow[] = [];
  const loaded = loadRuns((id, e) =>
    rows.push({ runId: id, mode: 'run', started: '', playbook: '', vars: '', outcome: 'DAMAGED JOURNAL', changesInPlace: 0, undoneBy: [], damaged: e.message }),
  );
  loaded.forEach(({ id, head, records: recs }, i) => {
    const end = recs.find((r) => r.t === 'end');
    const last = recs[recs.length - 1]!;
    const resources = new Set(recs.flatMap((r) => (r.t === 'intent' && r.resource && !r.reverts ? [r.resource] : [])));
    const later = loaded.slice(i + 1);
    const undoneBy = later.filter((l) => l.head.mode === 'undo' && l.head.undoOf === id).map((l) => l.id);
    const supersededBy =
      head.mode === 'run' && resources.size
        ? later.find((l) => l.head.mode === 'run' && l.records.some((r) => r.t === 'intent' && r.resource && resources.has(r.resource)))?.id
        : undefined;
    // Only a run that succeeded finished what it took over (engine/resume.ts: a failed one passes it on).
    const finishedBy = later.find((l) => l.head.resumes?.split(',').includes(id) && l.records.some((r) => r.t === 'end' && r.outcome === 'succeeded'))?.id;
    rows.push({
      runId: id,
      mode: head.mode,
      started: head.at,
      durationMs: 'at' in last && last !== head ? Date.parse(last.at) - Date.parse(head.at) : undefined,
      playbook: head.playbook ? basename(head.playbook) : '',
      vars: Object.entries(head.extraVars ?? {})
        .map(([k, v]) => `${k}=${masked(v)}`)
        .join(' '),
      // No end record: the controller died (or is still running) mid-run.
      outcome: end && end.t === 'end' ? end.outcome : 'interrupted (no end record)',
      changesInPlace: head.mode === 'run' ? pendingChanges(recs).length : 0,
      undoOf: head.undoOf,
      undoneBy,
      supersededBy,
      finishedBy,
      ...(end && end.t === 'end' && end.items ? { items: end.items } : {}),
    });
  });
  return rows.sort((a, b) => (a.started === b.started ? (a.runId < b.runId ? -1 : 1) : a.started < b.started ? -1 : 1));
}
