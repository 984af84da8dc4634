/**
 * Runs whose controller died mid-run, as the leading watcher finds them in etcd
 * (docs/watch.md, "A controller killed mid-run"). A run is orphaned when its journal in etcd
 * has no end record, no later run took it over (a re-run that `resumes` it, an undo of it, or
 * for an undo a later undo of the same run; or any later run under one of its locks that ended:
 * what is there now is that run's doing, and an old orphan is never acted on over it), and none
 * of its run locks is held: its lease
 * expired, so its controller is dead or cut off, and its fencing token refuses any change it
 * would still try. A lock still held means its controller is alive, or another run is already
 * finishing it: the watcher waits.
 *
 * What to do with one is judgeOrphan's rule, without I/O; the watch loop acts on it through
 * the engine's ordinary run and undo.
 */
import { basename } from 'node:path';
import type { EtcdClient } from '../transport/etcd.js';
import type { JournalRecord, RunRecord } from './journal.js';
import { JOURNAL_PREFIX, journalLineKey, lockKey } from './locks/etcd.js';

export interface Orphan {
  runId: string;
  head: RunRecord;
  /** For an orphaned undo: the first record of the run it was undoing, when etcd has it. */
  undone?: RunRecord;
}

function record(value: string | undefined): JournalRecord | undefined {
  if (!value) return undefined;
  try {
    return JSON.parse(value) as JournalRecord;
  } catch {
    return undefined;
  }
}

/** Each run journaled in etcd (ids `keep` accepts), with the number of its last line. */
async function journalLastLines(etcd: EtcdClient, keep: (runId: string) => boolean = () => true, only?: string, fromRunId?: string): Promise<Map<string, number>> {
  const lastLine = new Map<string, number>();
  const range = only !== undefined ? etcd.range(`${JOURNAL_PREFIX}${only}/`, { prefix: true, keysOnly: true }) : etcd.range(JOURNAL_PREFIX, { prefix: true, keysOnly: true, ...(fromRunId ? { from: `${JOURNAL_PREFIX}${fromRunId}` } : {}) });
  for (const kv of await range) {
    const m = /^baton\/journal\/([^/]+)\/(\d+)$/.exec(kv.key);
    if (m && keep(m[1]!)) lastLine.set(m[1]!, Math.max(lastLine.get(m[1]!) ?? -1, Number(m[2])));
  }
  return lastLine;
}

/** Scans etcd's journals each round; heads, ended and superseded runs are remembered (they never change). */
export class OrphanFinder {
  private readonly heads = new Map<string, RunRecord>();
  private readonly ended = new Set<string>();
  private readonly settled = new Set<string>();

  constructor(private readonly etcd: EtcdClient) {}

  async find(): Promise<Orphan[]> {
    const lastLine = await journalLastLines(this.etcd);
    for (const runId of lastLine.keys()) {
      if (this.heads.has(runId)) continue;
      const head = record((await this.etcd.get(journalLineKey(runId, 0)))?.value);
      if (head?.t === 'run') this.heads.set(runId, head);
    }
    // A run taken over by a later one is the later one's business.
    const ids = [...this.heads.keys()].sort();
    for (const [i, id] of ids.entries()) {
      const h = this.heads.get(id)!;
      if (h.resumes) for (const r of h.resumes.split(',')) this.settled.add(r);
      if (h.mode === 'undo' && h.undoOf) {
        this.settled.add(h.undoOf);
        for (const earlier of ids.slice(0, i)) if (this.heads.get(earlier)!.undoOf === h.undoOf) this.settled.add(earlier);
      }
    }
    for (const [runId, last] of lastLine) {
      if (!this.heads.has(runId) || this.ended.has(runId)) continue;
      const end = record((await this.etcd.get(journalLineKey(runId, last)))?.value);
      if (end?.t === 'end') {
        this.ended.add(runId);
        this.settled.add(runId);
      }
    }
    const locksOf = (id: string) => (this.heads.get(id)!.lock ?? '').split(',').filter(Boolean);
    for (const [i, id] of ids.entries()) {
      if (this.settled.has(id)) continue;
      const mine = new Set(locksOf(id));
      if (ids.slice(i + 1).some((later) => this.ended.has(later) && locksOf(later).some((l) => mine.has(l)))) this.settled.add(id);
    }
    const out: Orphan[] = [];
    for (const runId of lastLine.keys()) {
      const head = this.heads.get(runId);
      if (!head || this.settled.has(runId)) continue;
      const locks = locksOf(runId);
      // A run without locks cannot be told dead from alive: never touched.
      if (!locks.length) continue;
      const held = await Promise.all(locks.map((n) => this.etcd.get(lockKey(n))));
      if (held.some(Boolean)) continue;
      // Its journal again, now that its locks are seen free: a run writes its end before it lets
      // its locks go, so one that ended since the scan above shows its end now. Read the other way
      // round, a run that ended in between was taken for an orphan and undone.
      if (await this.endedNow(runId)) {
        this.ended.add(runId);
        this.settled.add(runId);
        continue;
      }
      const undone = head.mode === 'undo' && head.undoOf ? this.heads.get(head.undoOf) : undefined;
      out.push({ runId, head, ...(undone ? { undone } : {}) });
    }
    return out.sort((a, b) => a.runId.localeCompare(b.runId));
  }

  /**
   * Still an orphan now: its locks free and no end in its journal. Asked just before the watcher
   * acts on it: the orphans of a round are acted on one after another, each for tens of seconds.
   */
  async stillOrphaned(o: Orphan): Promise<boolean> {
    const locks = (o.head.lock ?? '').split(',').filter(Boolean);
    const held = await Promise.all(locks.map((n) => this.etcd.get(lockKey(n))));
    if (held.some(Boolean)) return false;
    if (await this.endedNow(o.runId)) {
      this.ended.add(o.runId);
      this.settled.add(o.runId);
      return false;
    }
    return true;
  }

  /** Dealt with by the watcher (undone, or its undo finished): never offered again. */
  settle(runId: string): void {
    this.settled.add(runId);
  }

  private async endedNow(runId: string): Promise<boolean> {
    const last = (await journalLastLines(this.etcd, (id) => id === runId, runId)).get(runId);
    if (last === undefined) return false;
    return record((await this.etcd.get(journalLineKey(runId, last)))?.value)?.t === 'end';
  }
}

/** The time part a run id starting at `ms` has (`20261127T100000Z`): ids sort by it. */
function runIdPrefixAt(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/** The start time a run id carries (`20261127T100000Z-aaaaaa`), in ms; undefined for another id. */
function runIdTime(runId: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/.exec(runId);
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : undefined;
}

/**
 * When a failover of `node` (a run of `playbook` with `failed=NODE`) last ended succeeded, from
 * the runs' own journals in etcd: a watcher killed right after its failover ended has not said so
 * in its decisions yet; one that was undone since does not count. Only runs started since
 * `sinceMs` are read (two reads each).
 */
export async function lastSucceededFailover(etcd: EtcdClient, playbook: string, node: string, sinceMs: number): Promise<number | undefined> {
  // Run ids begin with their start time, so the keys of runs since then are a range of their own:
  // the journals of months of runs are not read each time a cool-down is asked.
  const lastLine = await journalLastLines(etcd, (runId) => (runIdTime(runId) ?? 0) >= sinceMs, undefined, runIdPrefixAt(sinceMs));
  const ended = new Map<string, number>();
  const undone = new Set<string>();
  for (const [runId, line] of lastLine) {
    const head = record((await etcd.get(journalLineKey(runId, 0)))?.value);
    if (head?.t !== 'run') continue;
    const failover = head.mode === 'run' && head.playbook !== undefined && basename(head.playbook) === basename(playbook) && head.extraVars?.['failed'] === node;
    if (!failover && !(head.mode === 'undo' && head.undoOf)) continue;
    const end = record((await etcd.get(journalLineKey(runId, line)))?.value);
    if (end?.t !== 'end' || end.outcome !== 'succeeded') continue;
    // A failover someone undid is no longer in effect: it holds no cool-down.
    if (failover) ended.set(runId, Date.parse(end.at));
    else undone.add(head.undoOf!);
  }
  const times = [...ended].filter(([id]) => !undone.has(id)).map(([, at]) => at);
  return times.length ? Math.max(...times) : undefined;
}

/** How the watcher sees a node now. */
export type NodeVerdict = 'failed' | 'healthy' | 'unknown';

export interface OrphanJudgement {
  /**
   * `rerun`: run it again (a failover: node-failover for `node`; an undo: undo `undoOf` again; the
   * watcher's own start: service-start of `group`). `undo`: undo it. `wait`: not yet.
   */
  action: 'rerun' | 'undo' | 'wait';
  /** The failed node of an orphaned failover (or of the failover an orphaned undo was undoing). */
  node?: string;
  /** The group an orphaned start of the watcher's was starting. */
  group?: string;
  /**
   * After this undo (or the re-run of an orphaned undo) succeeds, start the groups of this
   * failover: its node came back, and a fenced node comes back with nothing running.
   */
  startGroupsOf?: RunRecord;
  why: string;
}

/** The failed node, when the run is a failover of the watcher's playbook (`failed=NODE`). */
function failoverNode(h: RunRecord | undefined, failoverPlaybook: string): string | undefined {
  const failed = h?.extraVars?.['failed'];
  return h?.mode === 'run' && h.playbook !== undefined && basename(h.playbook) === basename(failoverPlaybook) && typeof failed === 'string' ? failed : undefined;
}

/** The group, when the run is a watcher's own service-start (run by `baton watch`, `service=G`). */
function watcherStart(h: RunRecord): string | undefined {
  const service = h.extraVars?.['service'];
  return h.mode === 'run' && h.argv[0] === 'watch' && h.playbook !== undefined && basename(h.playbook) === 'service-start.yml' && typeof service === 'string' ? service : undefined;
}

export function describeOrphan(o: Orphan): string {
  const h = o.head;
  const vars = Object.entries(h.extraVars ?? {})
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const what = h.mode === 'undo' ? `undo of run ${h.undoOf ?? '?'}` : `${h.playbook ? basename(h.playbook) : 'a playbook'}${vars ? ` ${vars}` : ''}`;
  return `run ${o.runId} (${what}; started ${h.at} by ${h.controller}, pid ${h.pid}) never ended and its locks (${h.lock}) are free: its controller died or was cut off past its lease`;
}

/**
 * The rule (docs/watch.md): an undo is re-run (an undo left half done is finished); a failover
 * (the watcher's playbook, `failed=NODE`) whose node is still confirmed failed is re-run
 * (playbooks are idempotent, and the re-run finishes its journal); one whose node is read
 * healthy again is undone; while the node's state is not settled, wait. Any other run is undone:
 * no one is there to finish what a person started, and its journal says how to put it back.
 */
export function judgeOrphan(o: Orphan, failoverPlaybook: string, nodeState: (node: string) => NodeVerdict): OrphanJudgement {
  const said = describeOrphan(o);
  const h = o.head;
  if (h.mode === 'undo') {
    // The undo of a failover whose node is back: once finished, the groups are started as after
    // the watcher's own undo of such a failover (the undo cannot start what the fence stopped).
    const node = failoverNode(o.undone, failoverPlaybook);
    const restart = node !== undefined && nodeState(node) === 'healthy' ? { node, startGroupsOf: o.undone! } : {};
    return { action: 'rerun', ...restart, why: `${said}; an undo left half done is finished: undoing run ${h.undoOf} again` };
  }
  const group = watcherStart(h);
  if (group) return { action: 'rerun', group, why: `${said}; it is this watcher's start of ${group}, which a dead controller left half done: starting ${group} again` };
  const failed = failoverNode(h, failoverPlaybook);
  if (!failed) return { action: 'undo', why: `${said}; it is not a failover of this watcher's, so no one is there to finish it: undoing it` };
  const state = nodeState(failed);
  if (state === 'failed') return { action: 'rerun', node: failed, why: `${said}; ${failed} is still confirmed failed: re-running ${basename(failoverPlaybook)} -e failed=${failed}, which finishes it` };
  if (state === 'healthy') return { action: 'undo', node: failed, startGroupsOf: h, why: `${said}; ${failed} is read healthy again, so its failover is no longer wanted: undoing it` };
  return { action: 'wait', node: failed, why: `${said}; ${failed} is not yet confirmed failed or healthy by this watcher: deciding in a later round` };
}
