import { closeSync, fstatSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { BatonError, ExitCode } from '../util/errors.js';
import { locksDir } from './state-dir.js';

/**
 * The local fast path of the run lock (locks/ holds the rest: the entries on the nodes, which
 * exclude runs from other controllers). One run per lock name at a time. The lock is a file
 * naming who holds it, linked into place whole (never seen empty); a lock whose holder is a dead
 * pid on this same machine is stale and is taken over, by one run only.
 * (A holder on another controller cannot be checked from here, so it is never taken over.)
 */
export interface LockHolder {
  name: string;
  runId: string;
  controller: string;
  pid: number;
  since: string;
  /** Set when the holder was found in a node's lock entry rather than this controller's file. */
  node?: string;
  /** Seconds since the holder last renewed its entry on that node, by the node's clock. */
  ageS?: number;
  /** The holder's lease: its entry is stale once it goes this long without renewal. */
  leaseS?: number;
  /** Set when the holder was found in a shared coordinator (etcd): which one. */
  coordinator?: string;
}

export class LockHeldError extends BatonError {
  constructor(readonly holder: LockHolder) {
    const where = holder.coordinator ? ` in ${holder.coordinator}` : holder.node ? ` on node ${holder.node}` : '';
    const lease =
      holder.node && holder.ageS !== undefined && holder.leaseS !== undefined
        ? ` (renewed ${holder.ageS} s ago there; its lease runs out after ${holder.leaseS} s without renewal)`
        : '';
    const advice = holder.coordinator
      ? `Wait for it to finish. If that controller is gone, its lease in ${holder.coordinator} runs out ${holder.leaseS ?? 'some'} s after it last renewed it, and a later run takes the lock then.`
      : holder.node
      ? `Wait for it to finish. If that controller is gone, a later run takes the lock over once the lease has run out, ` +
        `or at once from ${holder.controller} when pid ${holder.pid} is no longer running.`
      : `Wait for it to finish, or if it is gone: \`baton runs\` to see it, then remove the lock file.`;
    super(
      `another run holds the lock "${holder.name}"${where}: run ${holder.runId}, pid ${holder.pid} on ${holder.controller}, since ${holder.since}${lease}. ` +
        `Nothing was changed. ${advice}`,
      ExitCode.LOCKED,
    );
    this.name = 'LockHeldError';
  }
}

export interface HeldLock {
  file: string;
  holder: LockHolder;
  /** Set when a stale lock was taken over: whose it was. */
  tookOverFrom?: LockHolder;
  release(): void;
}

function lockFile(name: string, dir: string): string {
  const slug = name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(-60);
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 12);
  return path.join(dir, `${slug}.${hash}.lock`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The holder a lock file names (undefined: unreadable), with the file's inode and age, read from one open file. */
function readLockFile(file: string): { holder?: LockHolder; text: string; ino: number; ageMs: number } | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    const text = readFileSync(fd, 'utf8');
    let holder: LockHolder | undefined;
    try {
      holder = JSON.parse(text) as LockHolder;
    } catch {
      holder = undefined;
    }
    return { holder, text, ino: st.ino, ageMs: Date.now() - st.mtimeMs };
  } finally {
    closeSync(fd);
  }
}

function readHolder(file: string): LockHolder | undefined {
  return readLockFile(file)?.holder;
}

/**
 * Create `file` holding `body`, or find it there (false). The body is written to a file of our
 * own first and linked into place, so the lock file never exists half written: another run that
 * finds it reads a whole holder, never an empty file it would take for stale.
 */
function createWhole(file: string, body: string): boolean {
  const tmp = `${file}.new.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, body, { flag: 'wx', mode: 0o600 });
  try {
    linkSync(tmp, file);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
  } finally {
    unlinkSync(tmp);
  }
  // A filesystem without hard links: an exclusive create, then the write.
  try {
    writeFileSync(file, body, { flag: 'wx', mode: 0o600 });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/**
 * The right to take a stale lock over: a directory made with mkdir (atomic everywhere), holding
 * the pid of the run in it. Held for microseconds; one left by a run that died there is removed
 * when its pid is gone (on this controller) or it is older than a few seconds.
 */
function takeoverGuard(file: string, name: string): { release: () => void } {
  const dir = `${file}.takeover`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      mkdirSync(dir, { mode: 0o700 });
      writeFileSync(path.join(dir, 'pid'), `${os.hostname()} ${process.pid}\n`);
      return { release: () => rmSync(dir, { recursive: true, force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let ownerAlive = true;
    try {
      const [host, pid] = readFileSync(path.join(dir, 'pid'), 'utf8').trim().split(' ');
      ownerAlive = host === os.hostname() ? alive(Number(pid)) : Date.now() - statSync(dir).mtimeMs < UNREADABLE_GRACE_MS;
    } catch {
      ownerAlive = (statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? 0) > Date.now() - UNREADABLE_GRACE_MS;
    }
    if (ownerAlive) break;
    rmSync(dir, { recursive: true, force: true });
  }
  throw new BatonError(
    `the lock "${name}" at ${file} is being taken over by another run (${dir} says so); nothing was changed. Try again in a moment; if this persists and no baton runs, remove ${dir}.`,
    ExitCode.LOCKED,
  );
}

/** An unreadable lock file younger than this may be another baton's write in progress (the fallback above). */
const UNREADABLE_GRACE_MS = 5_000;

export function acquireLock(name: string, runId: string, dir = locksDir()): HeldLock {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = lockFile(name, dir);
  const holder: LockHolder = { name, runId, controller: os.hostname(), pid: process.pid, since: new Date().toISOString() };
  const body = JSON.stringify(holder) + '\n';
  let tookOverFrom: LockHolder | undefined;

  for (let attempt = 0; attempt < 3; attempt++) {
    if (createWhole(file, body)) return { file, holder, tookOverFrom, release: () => releaseIfOurs(file, holder) };
    const seen = readLockFile(file);
    if (!seen) continue; // released meanwhile: try again
    const current = seen.holder;
    if (current && (current.controller !== os.hostname() || alive(current.pid))) throw new LockHeldError(current);
    if (!current && seen.ageMs < UNREADABLE_GRACE_MS) {
      throw new BatonError(`the lock "${name}" at ${file} is being written by another run; nothing was changed. Try again in a moment.`, ExitCode.LOCKED);
    }
    // Stale (dead pid here) or unreadable for a while: removed under the takeover guard, then the
    // exclusive create is tried again. Takeovers one at a time: two runs taking the same stale
    // lock over each moved "the stale file" aside, and one of them moved the other's live lock.
    const guard = takeoverGuard(file, name);
    try {
      const again = readLockFile(file);
      // Still the file judged stale (no other takeover replaced it before this one got the guard).
      if (again && again.ino === seen.ino && again.text === seen.text) unlinkSync(file);
    } finally {
      guard.release();
    }
    tookOverFrom = current ?? { name, runId: 'unknown', controller: 'unknown', pid: 0, since: 'unknown' };
  }
  const current = readHolder(file);
  if (current) throw new LockHeldError(current);
  throw new BatonError(`could not take the lock "${name}" at ${file}`, ExitCode.LOCKED);
}

/** Who holds the lock `name` on this controller now (a live run, or a run of another controller), if anyone; takes nothing. */
export function lockHolder(name: string, dir = locksDir()): LockHolder | undefined {
  const current = readHolder(lockFile(name, dir));
  return current && (current.controller !== os.hostname() || alive(current.pid)) ? current : undefined;
}

function releaseIfOurs(file: string, holder: LockHolder): void {
  const current = readHolder(file);
  if (current && current.runId === holder.runId && current.pid === holder.pid) {
    try {
      unlinkSync(file);
    } catch {
      /* already gone */
    }
  }
}
