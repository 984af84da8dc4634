import type { EngineEvent, HostRecap, ItemOutcome } from '../engine/events.js';
import type { RunSummary } from '../engine/summary.js';

/** Where engine events go: a listr2 tree on a terminal, one line per event otherwise, or JSON lines. */
export interface Reporter {
  onEvent(e: EngineEvent): void;
  /** The run is over: print the recap and where to look next. */
  finish(summary: RunSummary): void | Promise<void>;
  /**
   * `--step`: ask the operator where the reporter can be seen (the live tree pauses its
   * hold on the terminal for it); absent: the caller asks on stderr itself.
   */
  ask?(question: string): Promise<string>;
}

export type { RunSummary } from '../engine/summary.js';

export function formatRecapLine(host: string, r: HostRecap, width: number): string {
  const parts = [`ok=${r.ok}`, `changed=${r.changed}`, `failed=${r.failed}`, `skipped=${r.skipped}`, `reverted=${r.reverted}`];
  if (r.wouldChange) parts.push(`would-change=${r.wouldChange}`);
  return `${host.padEnd(width)}  ${parts.join('  ')}`;
}

/** The closing block every human-facing reporter prints. */
export function formatSummary(s: RunSummary): string {
  const width = Math.max(4, ...[...s.recap.keys()].map((h) => h.length));
  const lines = ['', 'RECAP'];
  for (const [host, r] of s.recap) lines.push('  ' + formatRecapLine(host, r, width));
  if (s.items?.length) {
    const w = Math.max(4, ...s.items.map((i) => `${i.var} ${i.label}`.length));
    lines.push('', 'ITEMS');
    for (const i of s.items) lines.push(`  ${`${i.var} ${i.label}`.padEnd(w)}  ${ITEM_OUTCOME[i.outcome]}${i.failure ? `: failed at ${i.failure.split('\n')[0]}` : ''}`);
  }
  if (s.failures.length) {
    lines.push('', 'FAILED');
    for (const f of s.failures) lines.push('  ' + f.split('\n').join('\n    '));
  }
  for (const n of s.notes) lines.push(n);
  lines.push('', `${outcomeLine(s)}  (${(s.durationMs / 1000).toFixed(2)} s, exit ${s.exitCode})`);
  if (s.journalPath) lines.push(`journal: ${s.journalPath}`);
  if (s.undoCommand) lines.push(`undo:    ${s.undoCommand}`);
  return lines.join('\n');
}

const ITEM_OUTCOME: Record<ItemOutcome, string> = {
  succeeded: 'succeeded',
  'rolled-back': 'rolled back',
  'rollback-incomplete': 'ROLLBACK INCOMPLETE',
  'left-in-place': 'FAILED, changes left in place',
  stopped: 'stopped',
  'not-started': 'not started',
};

function outcomeLine(s: RunSummary): string {
  // Some items failed while others finished: the nodes are neither all moved nor as they were.
  const failedItems = s.items?.filter((i) => i.failure) ?? [];
  const doneItems = s.items?.filter((i) => i.outcome === 'succeeded') ?? [];
  if (failedItems.length && doneItems.length) {
    const failed = failedItems.map((i) => `${i.var} ${i.label}`).join(', ');
    const done = doneItems.map((i) => i.label).join(', ');
    const state = s.outcome === 'failed-rolled-back' ? 'rolled back' : 'changes still in place: see the journal';
    return `${s.mode} ${s.runId} FAILED for ${failed} (${state}); ${done} completed`;
  }
  switch (s.outcome) {
    case 'succeeded':
      return s.mode === 'check' ? 'check finished: nothing was changed' : `${s.mode} ${s.runId} succeeded`;
    case 'failed-rolled-back':
      return `${s.mode} ${s.runId} FAILED; every change was rolled back: the nodes are as they were`;
    case 'failed-not-rolled-back':
      return `${s.mode} ${s.runId} FAILED and changes are still in place: see the journal; undo with the command below`;
    default:
      return `${s.mode} ${s.runId}: ${s.outcome}`;
  }
}
