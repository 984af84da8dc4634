import { coordinatorSpec, openCoordinator } from '../engine/coordinator.js';
import { describeRuns, type RunRow } from '../engine/runs.js';

export interface RunsOptions {
  json?: boolean;
  last?: number;
  coordinator?: string;
}

export { describeRuns as listRuns };

function fmtDuration(ms: number | undefined): string {
  if (ms === undefined) return '';
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** `baton runs`: every journaled run, newest last: what it moved, its outcome, what it left in place. */
export async function runsCommand(o: RunsOptions): Promise<number> {
  // With etcd: other controllers' runs are copied into this state dir first.
  for (const n of await openCoordinator(coordinatorSpec(o.coordinator)).syncJournals()) process.stderr.write(`${n}\n`);
  let rows = describeRuns();
  if (o.last) rows = rows.slice(-o.last);
  if (o.json) {
    for (const r of rows) process.stdout.write(JSON.stringify(r) + '\n');
    return 0;
  }
  if (!rows.length) {
    process.stdout.write('no runs yet\n');
    return 0;
  }
  for (const r of rows) process.stdout.write(line(r) + '\n');
  return 0;
}

function line(r: RunRow): string {
  const what = r.mode === 'undo' ? `undo of ${r.undoOf}` : `${r.playbook}${r.vars ? ` ${r.vars}` : ''}`;
  let outcome = r.outcome;
  if (r.undoneBy.length) outcome += `, undone by ${r.undoneBy.join(', ')}`;
  else if (r.supersededBy) outcome += `, superseded by ${r.supersededBy}`;
  else if (r.finishedBy) outcome += `, finished by ${r.finishedBy}`;
  else if (r.changesInPlace) outcome += ` (${r.changesInPlace} change(s) in place)`;
  // A looped run can fail for one item and complete another: say which.
  if (r.items?.some((i) => i.outcome !== 'succeeded')) outcome += ` [${r.items.map((i) => `${i.label}: ${i.outcome}`).join(', ')}]`;
  return `${r.runId}  ${r.mode.padEnd(4)}  ${outcome}  ${what}${r.durationMs !== undefined ? `  ${fmtDuration(r.durationMs)}` : ''}`;
}
