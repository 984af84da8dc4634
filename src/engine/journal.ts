import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { runsDir } from './state-dir.js';

/**
 * The journal: one append-only JSON-lines file per run. Every record is fsync'd before the
 * engine goes on, and the intent of a change is written *before* the change, so a
 * controller killed at any moment leaves enough to undo or re-run.
 */

export interface RunRecord {
  t: 'run';
  runId: string;
  /** `run` for a playbook run, `undo` for an undo of another run. */
  mode: 'run' | 'undo';
  undoOf?: string;
  playbook?: string;
  inventory?: string;
  extraVars?: Record<string, unknown>;
  lock?: string;
  controller: string;
  pid: number;
  argv: string[];
  at: string;
}

export interface IntentRecord {
  t: 'intent';
  seq: number;
  /** Step instance: step id plus loop index, e.g. `p0.s3[1]`. */
  instance: string;
  stepId: string;
  name: string;
  kind: string;
  /** Inventory host the step is for. */
  host: string;
  /** Host where the commands ran (the delegate, if any). */
  on: string;
  /** Rendered arguments, secrets replaced (see redact.ts). */
  args: unknown;
  before: unknown;
  /** The kind cannot undo this change (a command without revert:): never listed for rollback or undo. */
  irreversible?: boolean;
  /** When undoing another run: the seq of the intent this revert undoes. */
  reverts?: { runId: string; seq: number };
  at: string;
}

export interface DoneRecord {
  t: 'done';
  seq: number;
  /** `refused`: the step declined to act (StepRefusedError) and changed nothing. */
  status: 'changed' | 'failed' | 'refused' | 'reverted' | 'revert-failed';
  after?: unknown;
  error?: string;
  at: string;
}

export type RunOutcome = 'succeeded' | 'failed-rolled-back' | 'failed-not-rolled-back' | 'interrupted' | 'unreachable' | 'invalid';

export interface EndRecord {
  t: 'end';
  outcome: RunOutcome;
  at: string;
}

export type JournalRecord = RunRecord | IntentRecord | DoneRecord | EndRecord;

/** A record as handed to append(): the journal stamps `at`, and `seq` for intents. */
export type NewRecord = Omit<RunRecord, 'at'> | Omit<IntentRecord, 'at' | 'seq'> | Omit<DoneRecord, 'at'> | Omit<EndRecord, 'at'>;

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export class Journal {
  private fd: number | undefined;
  private nextSeq = 1;
  readonly path: string;

  /**
   * `redact` is the last line of defence for secrets: every line passes through it before it is
   * written (arguments were already masked in a recoverable way by Redactor.maskArgs).
   */
  constructor(
    readonly runId: string,
    dir = runsDir(),
    private readonly redact: (line: string) => string = (l) => l,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.path = path.join(dir, `${runId}.jsonl`);
  }

  /** Write one record and wait until it is on disk. Intents get the next seq, returned. */
  append(record: NewRecord): number {
    this.fd ??= openSync(this.path, 'a', 0o600);
    const seq = record.t === 'intent' ? this.nextSeq++ : record.t === 'done' ? record.seq : undefined;
    const line = JSON.stringify({ ...record, ...(seq !== undefined ? { seq } : {}), at: new Date().toISOString() });
    writeSync(this.fd, this.redact(line) + '\n');
    fsyncSync(this.fd);
    return seq ?? 0;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Read a journal back. A torn last line (a kill in mid-write) is ignored: its change never started. */
export function readJournal(file: string): JournalRecord[] {
  const records: JournalRecord[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      records.push(JSON.parse(line) as JournalRecord);
    } catch {
      break;
    }
  }
  return records;
}

export function journalPath(runId: string, dir = runsDir()): string {
  return path.join(dir, `${runId}.jsonl`);
}

export function listRunIds(dir = runsDir()): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .map((f) => f.slice(0, -'.jsonl'.length))
      .sort();
  } catch {
    return [];
  }
}

/** What a run changed and has not put back yet: intents without a later successful revert, newest first. */
export function pendingChanges(records: JournalRecord[], revertedElsewhere: Set<number> = new Set()): IntentRecord[] {
  const intents = new Map<number, IntentRecord>();
  const reverted = new Set(revertedElsewhere);
  for (const r of records) {
    if (r.t === 'intent' && !r.reverts && !r.irreversible) intents.set(r.seq, r);
    if (r.t === 'done') {
      if (r.status === 'refused') reverted.add(r.seq);
      if (r.status === 'reverted') {
        const intent = records.find((x): x is IntentRecord => x.t === 'intent' && x.seq === r.seq);
        if (intent?.reverts) reverted.add(intent.reverts.seq);
        else reverted.add(r.seq);
      }
    }
  }
  return [...intents.values()].filter((i) => !reverted.has(i.seq)).sort((a, b) => b.seq - a.seq);
}
