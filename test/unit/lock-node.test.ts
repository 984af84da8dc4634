/**
 * The run lock on the nodes, with the real lock script run by sh on this machine: each "node"
 * is a directory of its own (baton_lock_dir), reached through a local transport that presents
 * itself as SSH. Two controllers are two identities (BATON_CONTROLLER) in one process.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalTransport, UnreachableError, type Transport } from '../../src/transport/index.js';
import type { Inventory, Host } from '../../src/inventory/model.js';
import type { TransportSource } from '../../src/engine/context.js';
import { LockHeldError } from '../../src/engine/lock.js';
import { acquireRunLocks, LocalFileLockService, LockLostError, NodeLockService, type HeldLocks } from '../../src/engine/locks/index.js';
import { entryName } from '../../src/engine/locks/node.js';

let work: string;
const down = new Set<string>();
const held: HeldLocks[] = [];
const savedController = process.env.BATON_CONTROLLER;

function inventory(names: string[]): Inventory {
  const hosts = new Map<string, Host>();
  for (const name of names) hosts.set(name, { name, vars: { baton_lock_dir: path.join(work, name, 'locks') }, groups: ['all'] });
  return { file: '<test>', hosts, groups: new Map() };
}

/** A node reached "over SSH" that is really sh on this machine; `down` makes it unreachable. */
/** A node's next command waits this long first (a slow node while the lock is taken). */
const slowOnce = new Map<string, { ms: number; meanwhile?: () => void }>();

function node(name: string): Transport {
  const local = new LocalTransport(name);
  return {
    host: name,
    kind: 'ssh',
    connect: async () => undefined,
    close: async () => undefined,
    exec: async (argv, opts) => {
      const slow = slowOnce.get(name);
      if (slow) {
        slowOnce.delete(name);
        await new Promise((r) => setTimeout(r, slow.ms));
        slow.meanwhile?.();
      }
      return down.has(name) ? Promise.reject(new UnreachableError(name, `${name}: connection reset`)) : local.exec(argv, opts);
    },
  };
}

const pool: TransportSource = {
  get: async (host) => {
    if (down.has(host)) throw new UnreachableError(host, `cannot reach ${host}`);
    return node(host);
  },
};

const nodes = ['n1', 'n2'];

async function take(controller: string, runId: string, o: { names?: string[]; hosts?: string[]; leaseS?: number; note?: (m: string) => void } = {}): Promise<HeldLocks> {
  process.env.BATON_CONTROLLER = controller;
  const h = await new NodeLockService().acquire({
    names: o.names ?? ['nfs-service'],
    runId,
    pool,
    hosts: o.hosts ?? nodes,
    inventory: inventory(nodes),
    leaseS: o.leaseS ?? 60,
    note: o.note,
  });
  held.push(h);
  return h;
}

async function refused(p: Promise<unknown>): Promise<LockHeldError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(LockHeldError);
  return e as LockHeldError;
}

/** The entry of a lock on a node, as an operator would look at it there. */
function entryOn(host: string, lock = 'nfs-service'): string {
  return path.join(work, host, 'locks', entryName(lock));
}

function ownerOn(host: string, lock = 'nfs-service'): string | undefined {
  const f = path.join(entryOn(host, lock), 'run');
  return existsSync(f) ? readFileSync(f, 'utf8').trim() : undefined;
}

function age(host: string, seconds: number, lock = 'nfs-service'): void {
  const t = new Date(Date.now() - seconds * 1000);
  utimesSync(path.join(entryOn(host, lock), 'run'), t, t);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A pid that surely is not running: a child that has already exited. */
function deadPid(): number {
  return Number(spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim());
}

beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-node-locks-'));
  down.clear();
  slowOnce.clear();
});

afterEach(async () => {
  for (const h of held.splice(0)) await h.release();
  if (savedController === undefined) delete process.env.BATON_CONTROLLER;
  else process.env.BATON_CONTROLLER = savedController;
  rmSync(work, { recursive: true, force: true });
});

describe('the run lock on the nodes', () => {
  it('a second controller is refused with exit 5 naming run, controller, pid and node, and takes nothing', async () => {
    const a = await take('laptop-a', 'run-a');
    expect(ownerOn('n1')).toBe('run-a');
    expect(ownerOn('n2')).toBe('run-a');

    const e = await refused(take('laptop-b', 'run-b'));
    expect(e.exitCode).toBe(5);
    expect(e.message).toContain('"nfs-service" on node n1');
    expect(e.message).toContain(`run run-a, pid ${process.pid} on laptop-a`);
    expect(ownerOn('n1')).toBe('run-a');
    expect(ownerOn('n2')).toBe('run-a');

    await a.release();
    expect(ownerOn('n1')).toBeUndefined();
    expect(ownerOn('n2')).toBeUndefined();
    const b = await take('laptop-b', 'run-b');
    expect(ownerOn('n1')).toBe('run-b');
    expect(b.notes).toEqual([]);
  });

  it('nodes are taken in sorted order, all or none: a refusal on n2 gives n1 back', async () => {
    await take('laptop-a', 'run-a', { hosts: ['n2'] });
    const e = await refused(take('laptop-b', 'run-b', { hosts: ['n2', 'n1'] }));
    expect(e.holder.node).toBe('n2');
    expect(ownerOn('n1')).toBeUndefined();
    expect(ownerOn('n2')).toBe('run-a');
  });

  it('different lock names do not exclude each other', async () => {
    await take('laptop-a', 'run-a', { names: ['group-a'] });
    await take('laptop-b', 'run-b', { names: ['group-b'] });
    expect(ownerOn('n1', 'group-a')).toBe('run-a');
    expect(ownerOn('n1', 'group-b')).toBe('run-b');
    // A run that needs both is refused on the first one another run holds.
    await refused(take('laptop-c', 'run-c', { names: ['group-b', 'group-a'] }));
  });

  it('an entry past its lease by the node\'s clock is taken over from another controller, and the run says whose it was', async () => {
    await take('laptop-a', 'run-a', { leaseS: 5 });
    // Renewed 4 s ago: still valid.
    age('n1', 4);
    age('n2', 4);
    await refused(take('laptop-b', 'run-b'));
    // Not renewed for 10 s (laptop-a died): stale.
    age('n1', 10);
    age('n2', 10);
    const b = await take('laptop-b', 'run-b');
    expect(ownerOn('n1')).toBe('run-b');
    expect(ownerOn('n2')).toBe('run-b');
    expect(b.notes.join('\n')).toMatch(/took over a stale lock "nfs-service" on n1, n2 from run run-a \(not renewed for 1\d s, past its 5 s lease\)/);
  });

  it('a holder on this controller whose pid is gone is taken over at once; one on another controller is not', async () => {
    await take('laptop-a', 'run-a');
    const pid = deadPid();
    for (const n of nodes) {
      const f = path.join(entryOn(n), 'holder');
      writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), pid }) + '\n');
    }
    // Same pid, other controller: its pids cannot be judged from here, the lease still runs.
    await refused(take('laptop-b', 'run-b'));
    const again = await take('laptop-a', 'run-a2');
    expect(ownerOn('n1')).toBe('run-a2');
    expect(again.notes.join('\n')).toContain(`from run run-a (pid ${pid} on laptop-a is gone)`);
  });

  it('renewal keeps the entries fresh while the run lasts', async () => {
    await take('laptop-a', 'run-a', { leaseS: 2 });
    await sleep(3500);
    await refused(take('laptop-b', 'run-b', { leaseS: 2 }));
  });

  it('a node that cannot be renewed does not lose the lock: its entry ages out, the others still exclude', async () => {
    const notes: string[] = [];
    const a = await take('laptop-a', 'run-a', { leaseS: 2, note: (m) => notes.push(m) });
    down.add('n2');
    await sleep(3500);
    expect(a.lost.aborted).toBe(false);
    expect(notes.join('\n')).toMatch(/cannot reach n2.*the lock entry on n2 runs out after 2 s/);
    down.delete('n2');
    // n2's entry ran out, n1's did not: another controller is still refused, on n1.
    const e = await refused(take('laptop-b', 'run-b', { leaseS: 2 }));
    expect(e.holder.node).toBe('n1');
  });

  it('when another run took the lock over, the run learns it and every further command is refused', async () => {
    const a = await take('laptop-a', 'run-a', { leaseS: 3 });
    // What a controller finding run-a's entry stale would leave on n1.
    writeFileSync(path.join(entryOn('n1'), 'run'), 'run-x\n');
    writeFileSync(path.join(entryOn('n1'), 'holder'), JSON.stringify({ runId: 'run-x', controller: 'laptop-x', pid: 4242 }) + '\n');
    const guarded = a.guard(pool);
    await sleep(3000);
    expect(a.lost.aborted).toBe(true);
    expect(a.lost.reason).toBeInstanceOf(LockLostError);
    const t = await guarded.get('n2');
    const err = await t.exec(['true']).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/lock "nfs-service" was taken over on n1 by run run-x \(pid 4242 on laptop-x\).*refuses every further command/);
    // Release leaves the other run's entry alone.
    await a.release();
    expect(ownerOn('n1')).toBe('run-x');
    expect(ownerOn('n2')).toBeUndefined();
  });

  it('an entry found gone after this run\'s lease ran out is not taken again: another run may have held it meanwhile', async () => {
    const a = await take('laptop-a', 'run-a', { leaseS: 2 });
    // The controller cannot reach the nodes (or is suspended) past its lease; meanwhile another
    // run takes the stale entries over, changes the nodes, and gives the lock back.
    down.add('n1');
    down.add('n2');
    await sleep(2600);
    rmSync(entryOn('n1'), { recursive: true, force: true });
    rmSync(entryOn('n2'), { recursive: true, force: true });
    down.clear();
    // Before: the renewal wrote the entries again (RETAKEN) and the run went on, its next steps
    // and its rollback acting on nodes the other run had just changed.
    const err = await (await a.guard(pool).get('n1')).exec(['true']).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(a.lost.aborted).toBe(true);
    expect(err?.message).toMatch(/was gone from/);
    expect((a.lost.reason as Error).message).toMatch(/lock "nfs-service" was gone from n\d when this run renewed it \d+ s after it last could, past its 2 s lease.*refuses every further command of run run-a/);
  });

  it("the lease counts from the first entry written: one taken over and given back while a slow node was still being locked is not taken again", async () => {
    // n2 answers only after n1's entry's 2 s lease ran out; meanwhile another run took n1's
    // stale entry over and gave it back. Before: the clock started once every node was locked,
    // so the renewal found n1's entry gone "within the lease" and wrote it again.
    slowOnce.set('n2', { ms: 2600, meanwhile: () => rmSync(entryOn('n1'), { recursive: true, force: true }) });
    const a = await take('laptop-a', 'run-a', { leaseS: 2 });
    const err = await (await a.guard(pool).get('n1')).exec(['true']).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(a.lost.aborted).toBe(true);
    expect(err?.message).toMatch(/was gone from n1/);
  });

  it('a node where no entry can be written stops the run (exit 4) naming node and cause, and gives the others back', async () => {
    // n2's lock directory cannot be made: a file stands where its parent should be.
    writeFileSync(path.join(work, 'n2'), 'not a directory\n');
    const e = await take('laptop-a', 'run-a').then(
      () => undefined,
      (err: unknown) => err as Error & { exitCode?: number },
    );
    expect(e?.exitCode).toBe(4);
    expect(e?.message).toMatch(/cannot acquire the run lock on n2: [\s\S]*cannot create the lock directory/);
    expect(ownerOn('n1')).toBeUndefined();
  });

  it('a lock name is data on the node, never shell code', async () => {
    const canary = path.join(work, 'pwned');
    const name = `$(touch ${canary}); \`touch ${canary}\` '"\n-n`;
    await take('laptop-a', 'run-a', { names: [name] });
    expect(existsSync(canary)).toBe(false);
    expect(ownerOn('n1', name)).toBe('run-a');
    const e = await refused(take('laptop-b', 'run-b', { names: [name] }));
    expect(e.message).toContain(`"${name}" on node n1`);
    expect(readdirSync(path.join(work, 'n1', 'locks')).filter((f) => !f.startsWith('.'))).toEqual([entryName(name)]);
  });

  it('the local lock file is the fast path: the same state dir is refused before any node is asked', async () => {
    const state = path.join(work, 'state');
    let execs = 0;
    const counting: TransportSource = { get: async (h) => ({ ...(await pool.get(h)), exec: (argv, o) => (execs++, node(h).exec(argv, o)) }) };
    process.env.BATON_CONTROLLER = 'laptop-a';
    const services = () => [new LocalFileLockService(state), new NodeLockService()];
    const req = { names: ['nfs-service'], pool: counting, hosts: nodes, inventory: inventory(nodes) };
    const a = await acquireRunLocks({ ...req, runId: 'run-a' }, services());
    held.push(a);
    const before = execs;
    await refused(acquireRunLocks({ ...req, runId: 'run-b' }, services()));
    expect(execs).toBe(before);
    await a.release();
    expect(readdirSync(state)).toEqual([]);
    expect(ownerOn('n1')).toBeUndefined();
  });
});
