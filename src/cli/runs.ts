import { journalPath, listRunIds, pendingChanges, readJournal } from '../engine/journal.js';

export interface RunsOptions {
  json?: boolean;
  last?: number;
}

interface RunRow {
  runId: string;
  mode: string;
  started: string;
  playbook: string;
  outcome: string;
  changesInPlace: number;
  undoOf?: string;
}

/** `baton runs`: every journaled run, newest last, with its outcome and what it left in place. */
export function listRuns(): RunRow[] {
  const rows: RunRow[] = [];
  const undoneBy = new Map<string, string[]>();
  for (const id of listRunIds()) {
    const recs = readJournal(journalPath(id));
    const head = recs[0];
    if (head?.t !== 'run') continue;
    const end = recs.find((r) => r.t === 'end');
    if (head.mode === 'undo' && head.undoOf) undoneBy.set(head.undoOf, [...(undoneBy.get(head.undoOf) ?? []), id]);
    rows.push({
      runId: id,
      mode: head.mode,
      started: head.at,
      playbook: head.playbook ?? '',
      // No end record: the controller died (or is still running) mid-run.
      outcome: end && end.t === 'end' ? end.outcome : 'interrupted (no end record)',
      changesInPlace: head.mode === 'run' ? pendingChanges(recs).length : 0,
      undoOf: head.undoOf,
    });
  }
  for (const r of rows) {
    const undos = undoneBy.get(r.runId);
    if (undos) r.outcome += `, undone by ${undos.join(', ')}`;
  }
  return rows;
}

export function runsCommand(o: RunsOptions): number {
  let rows = listRuns();
  if (o.last) rows = rows.slice(-o.last);
  if (o.json) {
    for (const r of rows) process.stdout.write(JSON.stringify(r) + '\n');
    return 0;
  }
  if (!rows.length) {
    process.stdout.write('no runs yet\n');
    return 0;
  }
  for (const r of rows) {
    const what = r.mode === 'undo' ? `undo of ${r.undoOf}` : r.playbook;
    process.stdout.write(`${r.runId}  ${r.mode.padEnd(4)}  ${r.outcome}${r.changesInPlace && !r.outcome.includes('undone') ? ` (${r.changesInPlace} change(s) in place)` : ''}  ${what}\n`);
  }
  return 0;
}
