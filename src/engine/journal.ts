import { closeSync, existsSync, fstatSync, fsync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, writeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { runsDir } from './state-dir.js';
import { syncDir, writeFileAtomic } from '../util/write-atomic.js';

/**
 * The journal: one append-only JSON-lines file per run. The intent of a change is on disk
 * (fsync'd: `durable()`) *before* the change, so a controller killed at any moment leaves enough
 * to undo or re-run.
 *
 * Group commit: `append` writes a line (the kernel has it: a killed process loses nothing) and
 * `durable()` waits for an fsync that covers it, one fsync shared by every caller waiting at the
 * same time, run off the event loop. An fsync per record on the event loop cost 2 ms each and
 * stalled every item of a run while it lasted: 194 records, 0.4 s of a 2 s eight-group move.
 * A `done` record is not waited for: lost only with the machine, it leaves its intent unfinished,
 * which undo and resume already treat as a change that may have happened (they probe).
 *
 * A journal is trusted only whole (format 2): every line ends with `"h"`, a hash chained over the
 * previous line's, so a changed, missing or reordered record breaks the chain at its line; a
 * finished run also leaves RUN.seal (record count and last hash), so a journal cut at a line
 * boundary is caught too. A torn last line is what a crash mid-write leaves: expected, reported.
 */
export const JOURNAL_FORMAT = 2;

export interface RunRecord {
  t: 'run';
  /** Journal format version (absent: format 1, before hash chains). */
  v?: number;
  runId: string;
  /** `run` for a playbook run, `undo` for an undo of another run. */
  mode: 'run' | 'undo';
  undoOf?: string;
  playbook?: string;
  inventory?: string;
  /** Every inventory source (`-i a -i b`), in order; `inventory` is the first. */
  inventories?: string[];
  extraVars?: Record<string, unknown>;
  lock?: string;
  controller: string;
  pid: number;
  argv: string[];
  /** The interrupted runs this one finished, comma-separated (engine/resume.ts). */
  resumes?: string;
  /**
   * Every run whose owed steps this one took on, comma-separated (`resumes` and other requests'
   * runs whose groups it finished): if this run does not succeed, their debt is still owed.
   */
  carries?: string;
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
  /** The play's or step's become, so a revert runs with the same privileges. */
  become?: { user?: string } | false;
  /** The kind cannot undo this change (a command without revert:): never listed for rollback or undo. */
  irreversible?: boolean;
  /** The exclusive resource the step is about (the kind's key), to tell later runs that touched it. */
  resource?: string;
  /** The item of a looped play the change belongs to (its place in the loop and its label): undo goes item by item. */
  item?: { index: number; label: string };
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
  /** Items of looped plays and how each ended (a run can fail for one group and move another). */
  items?: Array<{ label: string; outcome: string }>;
  at: string;
}

/**
 * An item of a looped play ended (each item is its own transaction): how. A run killed after one
 * group's item succeeded owes that group nothing (engine/resume.ts owedByGroup).
 */
export interface ItemEndRecord {
  t: 'item';
  play: number;
  label: string;
  outcome: string;
  at: string;
}

export type JournalRecord = RunRecord | IntentRecord | DoneRecord | EndRecord | ItemEndRecord;

/** A record as handed to append(): the journal stamps `at`, and `seq` for intents. */
export type NewRecord = Omit<RunRecord, 'at'> | Omit<IntentRecord, 'at' | 'seq'> | Omit<DoneRecord, 'at'> | Omit<EndRecord, 'at'> | Omit<ItemEndRecord, 'at'>;

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

/** When a run started, read back from its id (newRunId's stamp); 0 for an id that carries none. */
export function runStartMs(runId: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/.exec(runId);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) : 0;
}

const GENESIS = '0'.repeat(16);
const chain = (prev: string, body: string): string => createHash('sha256').update(prev).update(body).digest('hex').slice(0, 16);

export class Journal {
  private fd: number | undefined;
  private nextSeq = 1;
  private last = GENESIS;
  private count = 0;
  /** Lines known to be on disk (and told to onLine); the ones after them are in `unsynced`. */
  private synced = 0;
  /** Lines written but not yet known on disk, oldest first (for onLine). */
  private unsynced: string[] = [];
  /** The fsync under way, shared by every durable() caller that arrives while it runs. */
  private syncing: Promise<void> | undefined;
  /** Bytes of whole lines in the file: a failed write is cut back to here. */
  private size = 0;
  /** The file was there before this process (the same run id again). */
  private resumed = false;
  /** Why the journal can take no more lines (a write failed: disk full, I/O error). */
  writeError: Error | undefined;
  readonly path: string;

  /**
   * `redact` is the last line of defence for secrets: every line passes through it before it is
   * written (arguments were already masked in a recoverable way by Redactor.maskArgs).
   */
  constructor(
    readonly runId: string,
    dir = runsDir(),
    private readonly redact: (line: string) => string = (l) => l,
    /** Told every line once it is on disk, in order, with its 0-based index (a coordinator's copy). */
    private readonly onLine?: (index: number, line: string) => void,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.path = path.join(dir, `${runId}.jsonl`);
  }

  /**
   * Write one record; intents get the next seq, returned. On disk only after `durable()` (an
   * `end` record at once: nothing follows it).
   */
  append(record: NewRecord): number {
    // No change without its intent on disk: an intent (or a run's first record) the journal cannot
    // take is an error the step fails with. The records that only say how something ended are
    // dropped instead: the change they would close reads as pending, which undo judges by probing.
    const mustWrite = record.t === 'intent' || record.t === 'run';
    if (this.writeError) {
      if (mustWrite) throw this.writeError;
      return 0;
    }
    try {
      if (this.fd === undefined) {
        // Appending to a journal that exists (the same run id again): go on with its chain and seqs.
        if (existsSync(this.path)) {
          this.resume();
          this.resumed = true;
        }
        this.fd = openSync(this.path, 'a', 0o600);
        this.size = fstatSync(this.fd).size;
      }
    } catch (e) {
      return this.failed(e, mustWrite);
    }
    const seq = record.t === 'intent' ? this.nextSeq : record.t === 'done' ? record.seq : undefined;
    const body = this.redact(
      JSON.stringify({ ...(record.t === 'run' ? { v: JOURNAL_FORMAT } : {}), ...record, ...(seq !== undefined ? { seq } : {}), at: new Date().toISOString() }),
    );
    const h = chain(this.last, body);
    const line = `${body.slice(0, -1)},"h":"${h}"}`;
    const bytes = Buffer.from(`${line}\n`);
    try {
      // A write may take only part of the line (a nearly full disk): the rest, or the error.
      for (let off = 0; off < bytes.length; ) {
        const n = writeSync(this.fd!, bytes, off, bytes.length - off);
        if (n <= 0) throw new Error(`the write took ${n} bytes`);
        off += n;
      }
    } catch (e) {
      return this.failed(e, mustWrite);
    }
    this.size += bytes.length;
    if (record.t === 'intent') this.nextSeq++;
    this.last = h;
    this.unsynced.push(line);
    this.count++;
    if (record.t === 'run' && !this.resumed) {
      // The run record and the file itself on disk at once: a journal left empty by a power
      // loss reads as damaged, and an undo would stop at it.
      try {
        fsyncSync(this.fd!);
        syncDir(path.dirname(this.path));
        this.markSynced(this.count);
      } catch (e) {
        return this.failed(e, true);
      }
    } else if (record.t === 'end') {
      try {
        fsyncSync(this.fd!);
        this.markSynced(this.count);
        this.seal();
      } catch (e) {
        return this.failed(e, false);
      }
    } else if (record.t === 'done' && this.onLine) {
      // A coordinator's copy gets the outcome within its flush delay, not only with the next change.
      void this.durable().catch(() => undefined);
    }
    return seq ?? 0;
  }

  /**
   * A write failed: the part of a line it left is cut off (a torn line in the middle of a journal
   * would make the whole journal unreadable once a later line landed), and the journal takes no
   * more lines. Throws for a record that must be written.
   */
  private failed(e: unknown, mustWrite: boolean): number {
    if (this.fd !== undefined) {
      try {
        ftruncateSync(this.fd, this.size);
      } catch {
        // Nothing more can be done here; the reader ignores a torn last line.
      }
    }
    this.writeError = new Error(
      `cannot write the run's journal ${this.path}: ${(e as Error)?.message ?? e}. No further change is made without its record; ` +
        'the journal up to here is whole: free the space (or fix the disk), then `baton undo` or re-run',
    );
    if (mustWrite) throw this.writeError;
    return 0;
  }

  /** Every record appended so far is on disk: wait for that before a change is made. */
  async durable(): Promise<void> {
    const target = this.count;
    while (this.synced < target) {
      this.syncing ??= this.syncOnce().finally(() => (this.syncing = undefined));
      await this.syncing;
    }
  }

  private async syncOnce(): Promise<void> {
    const fd = this.fd;
    if (fd === undefined) return;
    const upTo = this.count;
    await new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
    this.markSynced(upTo);
  }

  private markSynced(upTo: number): void {
    while (this.synced < upTo) {
      this.onLine?.(this.synced, this.unsynced.shift()!);
      this.synced++;
    }
  }

  private resume(): void {
    const text = readFileSync(this.path, 'utf8');
    for (const line of text.split('\n')) {
      const m = /,"h":"([0-9a-f]{16})"\}$/.exec(line);
      if (!m) continue;
      this.last = m[1]!;
      this.count++;
      this.synced++;
      const seq = /"t":"intent".*"seq":(\d+)/.exec(line);
      if (seq) this.nextSeq = Math.max(this.nextSeq, Number(seq[1]) + 1);
    }
  }

  /** A finished journal says how long it is, so a cut at a line boundary cannot pass for whole. */
  private seal(): void {
    const file = sealPath(this.path);
    // Durable: an empty seal after a power loss would make this journal read as damaged.
    writeFileAtomic(file, JSON.stringify({ records: this.count, h: this.last }) + '\n', { mode: 0o600 });
  }

  close(): void {
    const fd = this.fd;
    if (fd === undefined) return;
    this.fd = undefined;
    // An fsync still under way (a run cut short while a change waited for it) keeps the fd until it ends.
    if (this.syncing) void this.syncing.catch(() => undefined).finally(() => closeSync(fd));
    else closeSync(fd);
  }
}

const sealPath = (journal: string) => journal.replace(/\.jsonl$/, '.seal');

/** The journal cannot be trusted: which line, and why. */
export class JournalDamagedError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly why: string,
  ) {
    super(
      `journal ${file} is damaged at line ${line}: ${why}. Nothing was changed: baton acts only on a whole journal. ` +
        'Look at the nodes (`baton check`, the health playbook) and repair them with a playbook run or by hand.',
    );
    this.name = 'JournalDamagedError';
  }
}

export interface JournalReading {
  records: JournalRecord[];
  /** The last line was cut mid-write (a crash): its record never counted. */
  torn: boolean;
  /** 1 (no hash chain) or 2. */
  version: number;
}

/**
 * Read a journal back, checking it whole: every line parses and carries the next link of the hash
 * chain, and a sealed journal has exactly the records its seal says. Only a torn last line (no
 * newline at the end of the file) is forgiven. Anything else throws JournalDamagedError.
 */
export function inspectJournal(file: string): JournalReading {
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const endsClean = text.endsWith('\n') || text === '';
  if (lines[lines.length - 1] === '') lines.pop();
  const records: JournalRecord[] = [];
  let prev = GENESIS;
  let version = 0;
  let torn = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const lastLine = i === lines.length - 1;
    /** A bad line: forgiven only as the torn tail of a crashed write. */
    const bad = (why: string): void => {
      if (lastLine && !endsClean) torn = true;
      else throw new JournalDamagedError(file, i + 1, why);
    };
    let rec: (JournalRecord & { h?: string }) | undefined;
    try {
      rec = JSON.parse(line) as JournalRecord & { h?: string };
    } catch {
      bad('not a JSON record');
      continue;
    }
    if (!rec || typeof rec !== 'object' || typeof (rec as { t?: unknown }).t !== 'string') {
      bad('not a journal record');
      continue;
    }
    // Format 1 journals had no hashes; from format 2 on, the first line already carries one.
    if (i === 0) version = typeof (rec as RunRecord).v === 'number' ? (rec as RunRecord).v! : typeof rec.h === 'string' ? JOURNAL_FORMAT : 1;
    if (version >= 2) {
      const m = /,"h":"([0-9a-f]{16})"\}$/.exec(line);
      if (!m) {
        bad('it carries no hash: the record was altered or written by something else');
        continue;
      }
      const body = line.slice(0, m.index) + '}';
      if (chain(prev, body) !== m[1]) {
        bad(i > 0 ? 'its hash does not follow from the line before: a record was altered, removed or inserted here' : 'its hash does not match its content');
        continue;
      }
      prev = m[1]!;
      delete rec.h;
    }
    records.push(rec);
  }
  if (records.length === 0) throw new JournalDamagedError(file, 1, torn ? 'its only line is torn' : 'the journal is empty');
  const seal = sealPath(file);
  if (version >= 2 && existsSync(seal)) {
    let s: { records?: number; h?: string };
    try {
      s = JSON.parse(readFileSync(seal, 'utf8')) as { records?: number; h?: string };
    } catch {
      throw new JournalDamagedError(file, records.length, `its seal ${seal} is unreadable`);
    }
    if (torn || s.records !== records.length || s.h !== prev) {
      throw new JournalDamagedError(
        file,
        records.length + (torn ? 1 : 0),
        `the run sealed it with ${s.records} records, but ${records.length} whole records are here: records are missing or were added`,
      );
    }
  }
  return { records, torn, version };
}

/** Read a journal back (see inspectJournal); throws JournalDamagedError unless whole. */
export function readJournal(file: string): JournalRecord[] {
  return inspectJournal(file).records;
}

/** A journal read whole, with its run record. */
export interface LoadedRun {
  id: string;
  head: RunRecord;
  records: JournalRecord[];
}

/**
 * Every journal of the state dir, read once and ordered by when its run started (run ids carry
 * one-second stamps: two runs of one second sort by chance). Damaged journals are passed to
 * `damaged` and left out: nothing is decided from a journal that is not whole.
 */
export function loadRuns(damaged: (id: string, e: Error) => void = () => undefined, dir = runsDir()): LoadedRun[] {
  const out: LoadedRun[] = [];
  for (const id of listRunIds(dir)) {
    try {
      const records = inspectJournal(journalPath(id, dir)).records;
      const head = records[0];
      if (head?.t !== 'run') throw new Error('it does not start with its run record');
      out.push({ id, head, records });
    } catch (e) {
      damaged(id, e as Error);
    }
  }
  return out.sort((a, b) => (a.head.at === b.head.at ? (a.id < b.id ? -1 : 1) : a.head.at < b.head.at ? -1 : 1));
}

/**
 * Every journal's run record, read from its first line only, ordered as loadRuns orders runs: to
 * choose which journals to read whole. A run record that does not parse is left out (its journal
 * is damaged). Each chosen journal must still be read with inspectJournal before it is trusted.
 */
export function loadRunHeads(dir = runsDir()): Array<{ id: string; head: RunRecord }> {
  const out: Array<{ id: string; head: RunRecord }> = [];
  const buf = Buffer.alloc(16 * 1024);
  for (const id of listRunIds(dir)) {
    try {
      const file = journalPath(id, dir);
      const fd = openSync(file, 'r');
      let first: string;
      try {
        const n = readSync(fd, buf, 0, buf.length, 0);
        const nl = buf.subarray(0, n).indexOf(10);
        first = nl >= 0 ? buf.subarray(0, nl).toString('utf8') : readFileSync(file, 'utf8').split('\n', 1)[0]!;
      } finally {
        closeSync(fd);
      }
      const head = JSON.parse(first) as RunRecord;
      if (head?.t === 'run') out.push({ id, head });
    } catch {
      // Unreadable or damaged: nothing is decided from it.
    }
  }
  return out.sort((a, b) => (a.head.at === b.head.at ? (a.id < b.id ? -1 : 1) : a.head.at < b.head.at ? -1 : 1));
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
