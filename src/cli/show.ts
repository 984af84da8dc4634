import { basename } from 'node:path';
import type { DoneRecord, IntentRecord, JournalRecord } from '../engine/journal.js';
import { describeRuns } from '../engine/runs.js';
import { readWhole, resolveRunId } from '../engine/undo.js';

export interface ShowOptions {
  json?: boolean;
}

/** `baton show RUN`: one run from its journal — what it was, each change and what became of it. */
export function showCommand(idOrPrefix: string, o: ShowOptions): number {
  const runId = resolveRunId(idOrPrefix);
  const { records, torn } = readWhole(runId);
  if (o.json) {
    for (const r of records) process.stdout.write(JSON.stringify(r) + '\n');
    return 0;
  }
  const row = describeRuns().find((r) => r.runId === runId);
  const head = records[0]!;
  const out: string[] = [];
  if (head.t === 'run') {
    out.push(`run ${runId}  ${head.mode === 'undo' ? `undo of ${head.undoOf}` : basename(head.playbook ?? '')}${row?.vars ? `  ${row.vars}` : ''}`);
    out.push(`  started ${head.at} on ${head.controller} (pid ${head.pid})${row?.durationMs !== undefined ? `, took ${(row.durationMs / 1000).toFixed(1)} s` : ''}`);
    if (head.inventory) out.push(`  inventory ${head.inventory}`);
    if (head.resumes) {
      // Only a run that succeeded finished them; one that did not passes their debt on (engine/resume.ts).
      const verb = row?.outcome === 'succeeded' ? 'finished' : 'took over (and did not finish)';
      out.push(`  ${verb} the interrupted run${head.resumes.includes(',') ? 's' : ''} ${head.resumes.split(',').join(', ')}`);
    }
  }
  if (row) {
    const fate = row.undoneBy.length ? `, undone by ${row.undoneBy.join(', ')}` : row.supersededBy ? `, superseded by ${row.supersededBy}` : row.finishedBy ? `, finished by ${row.finishedBy}` : '';
    out.push(`  outcome: ${row.outcome}${fate}`);
    for (const i of row.items ?? []) out.push(`  item ${i.label}: ${i.outcome}`);
  }
  if (torn) out.push('  (its last line was torn by a crash mid-write: that record never counted)');
  out.push('changes, in order:');
  for (const r of records) if (r.t === 'intent') out.push(changeLine(r, records));
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

function changeLine(i: IntentRecord, records: JournalRecord[]): string {
  const done = records.find((r): r is DoneRecord => r.t === 'done' && r.seq === i.seq);
  const status = done ? done.status : 'started, never finished (the run stopped here)';
  const where = i.on !== i.host ? `${i.host}→${i.on}` : i.host;
  const what = `${i.item ? `[${i.item.label}] ` : ''}${i.reverts ? `${i.name} (of change ${i.reverts.seq} of ${i.reverts.runId})` : i.name}`;
  return `  #${String(i.seq).padEnd(3)} ${where.padEnd(10)} ${status.padEnd(14)} ${what}${i.resource ? `  [${i.resource}]` : ''}${done?.error ? `\n         ${done.error.split('\n')[0]}` : ''}`;
}
