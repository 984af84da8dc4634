/**
 * Controllers that agree through a real 3-member etcd cluster on loopback (ports 23790–23795):
 * the client against the real gateway, then the `baton` CLI as two controllers (two state dirs,
 * two BATON_CONTROLLER names) running a playbook of local commands with `--coordinator etcd://…`:
 * one run at a time (exit 5 naming the holder's controller), runs listed and undone from the
 * other controller, a run killed mid-way finished by a re-run on the other controller once its
 * lease ran out, a controller paused past its lease refused by the fencing token, etcd
 * losing one member (the run completes) and its quorum (the run stops before its next change,
 * naming etcd), and watchers electing one leader (with a stand-in for the cluster; the real one
 * is test/lab/watch-failover.test.ts). No root: the nodes are this machine (ansible_connection: local).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EtcdClient } from '../../src/transport/etcd.js';
import { DecisionLog, EtcdLeadership, watch, type NodeHealth } from '../../src/engine/watch.js';
import { OrphanFinder } from '../../src/engine/orphans.js';
import { journalLineKey } from '../../src/engine/locks/etcd.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';

const execFileP = promisify(execFile);
const CLI = path.resolve('dist/cli/main.js');

let etcd: EtcdCluster;
let client: EtcdClient;
let work: string;
let target: string;
const children: ChildProcess[] = [];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function envOf(controller: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    BATON_STATE_DIR: path.join(work, `state-${controller}`),
    BATON_CONTROLLER: controller,
    BATON_ETCD_TIMEOUT_MS: '1000',
    CI: 'true',
    ...extra,
  };
}

/** `baton` as the controller named `controller` (its own state dir). */
async function baton(controller: string, args: string[], extra: Record<string, string> = {}): Promise<Result> {
  try {
    const r = await execFileP('node', [CLI, ...args], { env: envOf(controller, extra), maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** The same, started in the background: the process (to pause it) and its result. */
function batonBg(controller: string, args: string[], extra: Record<string, string> = {}): { proc: ChildProcess; done: Promise<Result> } {
  const proc = spawn('node', [CLI, ...args], { env: envOf(controller, extra), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Result>((r) => proc.on('close', (code) => r({ code: code ?? -1, stdout, stderr })));
  return { proc, done };
}

/**
 * Three reversible local changes under the lock "shared". `pause` seconds are spent inside the
 * first change, after its file appeared: the moment a test pauses the controller or kills etcd.
 */
function playbook(pause = 0): string {
  const file = path.join(work, `pb-${pause}.yml`);
  writeFileSync(
    file,
    `- name: local moves
  hosts: localhost
  lock: shared
  steps:
    - name: make a
      command: { argv: [sh, -c, 'touch "$0"; sleep "$1"', "${target}/a", "${pause}"], creates: "${target}/a", revert: [rm, -f, "${target}/a"] }
    - name: make b
      command: { argv: [touch, "${target}/b"], creates: "${target}/b", revert: [rm, -f, "${target}/b"] }
    - name: make c
      command: { argv: [touch, "${target}/c"], creates: "${target}/c", revert: [rm, -f, "${target}/c"] }
`,
  );
  return file;
}

function inventory(): string {
  const file = path.join(work, 'inv.yml');
  writeFileSync(file, `all:\n  vars:\n    baton_coordinator: "${etcd.coordinator}"\n  hosts:\n    localhost:\n      ansible_connection: local\n`);
  return file;
}

const files = () => readdirSync(target).sort();
const runIdIn = (out: string) => /(\d{8}T\d{6}Z-[0-9a-f]{6})/.exec(out)?.[1];

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
  etcd = await startEtcd({ name: 'etcdw', portBase: 23790 });
  client = new EtcdClient(etcd.endpoints, { timeoutMs: 1000 });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await etcd?.stop();
});

beforeEach(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-etcdw-'));
  target = path.join(work, 'target');
  mkdirSync(target);
  // Every member up and a leader elected, whatever the test before did to the cluster.
  for (let i = 0; i < etcd.members.length; i++) if (!etcd.members[i]!.proc) await etcd.start(i);
  await etcd.ready();
  await client.delete('baton/', { prefix: true });
});

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGCONT');
      c.kill('SIGKILL');
    }
  }
  rmSync(work, { recursive: true, force: true });
});

describe('the etcd client against a real cluster', () => {
  it('a key created in a transaction only if absent is created once; its lease expiring deletes it', async () => {
    const lease = await client.leaseGrant(2);
    const create = () => client.txn([{ key: 'baton/t/k', target: 'CREATE', result: 'EQUAL', value: 0 }], [{ put: { key: 'baton/t/k', value: 'one', lease } }], [{ range: { key: 'baton/t/k' } }]);
    const first = await create();
    const second = await create();
    expect(first.succeeded).toBe(true);
    expect(second.succeeded).toBe(false);
    expect(second.responses[0]![0]).toMatchObject({ value: 'one', lease });
    expect(await client.leaseKeepAlive(lease)).toBeGreaterThan(0);
    await waitFor('the lease to expire', async () => (await client.get('baton/t/k')) === undefined, 10_000);
    expect(await client.leaseKeepAlive(lease)).toBe(0);
  });

  it('a prefix read from a key on: only the keys of the prefix from that one, in order (the cool-down reads journals since a time, not all)', async () => {
    for (const k of ['t-from/20261101T000000Z-aaaaaa/0', 't-from/20261128T100000Z-bbbbbb/0', 't-from/20261128T100000Z-bbbbbb/1', 't-fromz']) await client.put(k, 'x');
    const keys = (await client.range('t-from/', { prefix: true, keysOnly: true, from: 't-from/20261128T000000Z' })).map((kv) => kv.key);
    expect(keys).toEqual(['t-from/20261128T100000Z-bbbbbb/0', 't-from/20261128T100000Z-bbbbbb/1']);
  });

  it('goes on through the other members when the one it used is killed', async () => {
    await client.put('baton/t/x', '1');
    await etcd.kill(0);
    await client.put('baton/t/x', '2');
    expect((await client.get('baton/t/x'))?.value).toBe('2');
  });
});

describe('two controllers through etcd', () => {
  it('the same run from a second controller exits 5 naming the holder and its controller; the first completes', async () => {
    const inv = inventory();
    const a = batonBg('ctlA', ['run', '--yes', '-i', inv, playbook(3)]);
    await waitFor('controller A to take the lock in etcd', async () => (await client.range('baton/locks/', { prefix: true })).length > 0);
    const b = await baton('ctlB', ['run', '--yes', '-i', inv, playbook(0)]);
    expect(b.code, b.stderr).toBe(5);
    expect(b.stderr).toMatch(/another run holds the lock "shared" in etcd/);
    expect(b.stderr).toContain('on ctlA');
    const ra = await a.done;
    expect(ra.code, ra.stderr).toBe(0);
    expect(files()).toEqual(['a', 'b', 'c']);
    // Released: the lock key is gone, so the next run goes ahead at once.
    expect(await client.range('baton/locks/', { prefix: true })).toEqual([]);
  });

  it('`baton runs` on controller B lists a run started on A, and `baton undo` on B reverts it', async () => {
    const inv = inventory();
    const a = await baton('ctlA', ['run', '--yes', '-i', inv, playbook(0)]);
    expect(a.code, a.stderr).toBe(0);
    const runId = runIdIn(a.stdout + a.stderr)!;
    expect(runId).toBeTruthy();
    expect(files()).toEqual(['a', 'b', 'c']);

    const coordinator = ['--coordinator', etcd.coordinator];
    const listed = await baton('ctlB', ['runs', ...coordinator]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`${runId}\\s+run\\s+succeeded \\(3 change\\(s\\) in place\\)`));

    const undo = await baton('ctlB', ['undo', '--yes', ...coordinator, runId]);
    expect(undo.code, undo.stdout + undo.stderr).toBe(0);
    expect(files()).toEqual([]);

    // And A hears of B's undo through etcd.
    const back = await baton('ctlA', ['runs', ...coordinator]);
    expect(back.stdout).toMatch(new RegExp(`${runId}\\s+run\\s+succeeded, undone by `));
  });

  it('a controller paused past its lease is refused its next change by the fencing token, stops, and says why', async () => {
    const inv = inventory();
    const a = batonBg('ctlA', ['run', '--yes', '-i', inv, playbook(2)], { BATON_LOCK_LEASE_S: '2' });
    await waitFor('the first change to start', () => existsSync(path.join(target, 'a')));
    a.proc.kill('SIGSTOP');
    // The lease (2 s) runs out in etcd while the controller cannot renew it.
    await waitFor('the lease to expire in etcd', async () => (await client.range('baton/locks/', { prefix: true })).length === 0, 15_000);
    a.proc.kill('SIGCONT');
    const r = await a.done;
    const out = r.stdout + r.stderr;
    expect(r.code, out).toBe(3);
    expect(out).toMatch(/fencing: run \S+ no longer holds its lock "shared"/);
    expect(out).toMatch(/lease/);
    // Nothing after the pause ran, and nothing was rolled back either: another run may own these nodes.
    expect(files()).toEqual(['a']);
  });

  it('a controller killed mid-run leaves its journal in etcd: once its lease ran out, a re-run on another controller finishes it', async () => {
    const inv = inventory();
    const a = batonBg('ctlA', ['run', '--yes', '-i', inv, playbook(3)], { BATON_LOCK_LEASE_S: '2' });
    await waitFor('the first change to start', () => existsSync(path.join(target, 'a')));
    a.proc.kill('SIGKILL');
    await a.done;
    // The intent of the change in flight went to etcd with its fencing check, before the change.
    const lines = await client.range('baton/journal/', { prefix: true });
    const runA = /^baton\/journal\/([^/]+)\//.exec(lines[0]!.key)![1]!;
    expect(lines.some((kv) => kv.value.includes('"t":"intent"') && kv.value.includes('make a'))).toBe(true);

    const early = await baton('ctlB', ['run', '--yes', '-i', inv, playbook(3)]);
    expect(early.code, early.stderr).toBe(5);
    expect(early.stderr).toContain(`run ${runA}`);
    await waitFor('A\'s lease to run out', async () => (await client.range('baton/locks/', { prefix: true })).length === 0, 15_000);
    const b = await baton('ctlB', ['run', '--yes', '-i', inv, playbook(3)]);
    expect(b.code, b.stdout + b.stderr).toBe(0);
    expect(b.stdout + b.stderr).toContain(`run ${runA} of this playbook was interrupted or left changes in place; this run finishes it`);
    expect(files()).toEqual(['a', 'b', 'c']);
  });

  it('etcd losing one member during a run: the run completes', async () => {
    const inv = inventory();
    const a = batonBg('ctlA', ['run', '--yes', '-i', inv, playbook(2)]);
    await waitFor('the first change to start', () => existsSync(path.join(target, 'a')));
    // The member the controller talks to first.
    await etcd.kill(0);
    const r = await a.done;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(files()).toEqual(['a', 'b', 'c']);
  });

  it('etcd losing its quorum during a run: the run stops before its next change, journaled, with an error naming etcd', async () => {
    const inv = inventory();
    const a = batonBg('ctlA', ['run', '--yes', '-i', inv, playbook(2)]);
    await waitFor('the first change to start', () => existsSync(path.join(target, 'a')));
    await etcd.kill(1);
    await etcd.kill(2);
    const r = await a.done;
    const out = r.stdout + r.stderr;
    expect(r.code, out).toBe(3);
    expect(out).toMatch(/etcd \(http:\/\/127\.0\.0\.1:23790.*could not confirm it/);
    expect(files()).toEqual(['a']);
    // The local journal says the change was refused (its intent, then nothing done).
    const runsDir = path.join(work, 'state-ctlA', 'runs');
    const journal = readdirSync(runsDir).find((f) => f.endsWith('.jsonl'))!;
    const records = readFileSync(path.join(runsDir, journal), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { t: string; status?: string; error?: string });
    expect(records.some((x) => x.t === 'done' && x.status === 'refused' && /etcd/.test(x.error ?? ''))).toBe(true);
  });
});

describe('watchers electing a leader in etcd', () => {
  const n1Off: NodeHealth = { name: 'n1', read: false, reachable: false, power: 'off', error: 'connect ECONNREFUSED', groups: ['g1'] };
  const settings = { intervalMs: 300, failures: 3, cooldownMs: 60_000, dryRun: false };

  it('three watchers see n1 powered off: exactly one runs the failover, the others say another is the leader', async () => {
    const failovers: string[] = [];
    const logs: string[][] = [[], [], []];
    await Promise.all(
      [0, 1, 2].map((i) =>
        watch({
          settings,
          leadership: new EtcdLeadership(new EtcdClient(etcd.endpoints, { timeoutMs: 1000 }), `w${i}`, 3),
          log: new DecisionLog(path.join(work, `w${i}`), client),
          say: (l) => logs[i]!.push(l),
          signal: new AbortController().signal,
          rounds: 6,
          observe: async () => [n1Off],
          failover: async (node) => (failovers.push(`w${i}:${node}`), 0),
        }),
      ),
    );
    expect(failovers).toHaveLength(1);
    const leader = Number(failovers[0]![1]);
    for (const i of [0, 1, 2].filter((x) => x !== leader)) expect(logs[i]!.some((l) => /n1: not-leader/.test(l)), logs[i]!.join('\n')).toBe(true);
    // Every decision of every watcher is in etcd, side by side.
    const decisions = (await client.range('baton/watch/decisions/', { prefix: true })).map((kv) => JSON.parse(kv.value) as { action: string });
    expect(decisions.filter((d) => d.action === 'failover')).toHaveLength(2); // the decision, then its outcome
    expect(decisions.filter((d) => d.action === 'not-leader').length).toBeGreaterThanOrEqual(2);
    // Resigned at the end: no leader key is left behind.
    expect(await client.get('baton/watch/leader')).toBeUndefined();
  });

  it('a leader killed after deciding a failover, before its run journaled anything: the next leader fails n1 over itself', async () => {
    let release: () => void = () => undefined;
    const stuck = new Promise<number>((r) => (release = () => r(3)));
    const stopA = new AbortController();
    const leadA = new EtcdLeadership(new EtcdClient(etcd.endpoints, { timeoutMs: 1000 }), 'wa', 2);
    const aDone = watch({
      settings,
      leadership: leadA,
      log: new DecisionLog(path.join(work, 'wa-killed'), client),
      say: () => undefined,
      signal: stopA.signal,
      observe: async () => [{ ...n1Off, name: 'n3' }],
      // Like a controller killed mid-decision: its lease gone (revoked here rather than waited out), no run, no more rounds.
      failover: async () => (await leadA.resign(), stuck),
    });
    await waitFor('watcher A to decide its failover', async () => (await client.range('baton/watch/decisions/', { prefix: true })).some((kv) => /"node":"n3","action":"failover"/.test(kv.value)));
    const saidB: string[] = [];
    const failoversB: string[] = [];
    await watch({
      settings,
      leadership: new EtcdLeadership(new EtcdClient(etcd.endpoints, { timeoutMs: 1000 }), 'wb', 2),
      log: new DecisionLog(path.join(work, 'wb-killed'), client),
      say: (l) => saidB.push(l),
      signal: new AbortController().signal,
      rounds: 14,
      observe: async () => [{ ...n1Off, name: 'n3' }],
      failover: async (node) => (failoversB.push(node), 0),
    });
    stopA.abort();
    release();
    await aDone;
    // A decision that never ended does not hold the cool-down: nothing of it reached a node.
    expect(failoversB, saidB.join('\n')).toEqual(['n3']);
  });

  it('after a failover that completed, the next leader keeps the cool-down journaled in etcd and does not fail the node over again', async () => {
    const leadA = new EtcdLeadership(new EtcdClient(etcd.endpoints, { timeoutMs: 1000 }), 'wa', 2);
    const failoversA: string[] = [];
    await watch({
      settings,
      leadership: leadA,
      log: new DecisionLog(path.join(work, 'wa-done'), client),
      say: () => undefined,
      signal: new AbortController().signal,
      rounds: 4,
      observe: async () => [{ ...n1Off, name: 'n4' }],
      failover: async (node) => (failoversA.push(node), 0),
    });
    expect(failoversA).toEqual(['n4']);
    const saidB: string[] = [];
    const failoversB: string[] = [];
    await watch({
      settings,
      leadership: new EtcdLeadership(new EtcdClient(etcd.endpoints, { timeoutMs: 1000 }), 'wb', 2),
      log: new DecisionLog(path.join(work, 'wb-done'), client),
      say: (l) => saidB.push(l),
      signal: new AbortController().signal,
      rounds: 6,
      observe: async () => [{ ...n1Off, name: 'n4' }],
      failover: async (node) => (failoversB.push(node), 0),
    });
    expect(saidB.some((l) => /this watcher is the leader/.test(l)), saidB.join('\n')).toBe(true);
    expect(failoversB).toEqual([]);
    expect(saidB.some((l) => /n4: cooldown: .*journaled in etcd/.test(l)), saidB.join('\n')).toBe(true);
  });

  it('a leader killed after its failover run ended, before it said so: the next leader keeps the cool-down from the run\'s journal in etcd', async () => {
    // What the killed leader left: its decision without an outcome, and the run's journal, ended.
    const runId = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-k1ll3d`;
    const at = new Date().toISOString();
    const decided = { at, controller: 'wa', node: 'n6', action: 'failover', why: 'n6 is confirmed failed', failures: 3, saw: { reachable: false, power: 'off', groups: ['g1'] } };
    await client.put(`baton/watch/decisions/${at}-wa-n6-failover-1`, JSON.stringify(decided));
    await client.put(journalLineKey(runId, 0), JSON.stringify({ t: 'run', runId, mode: 'run', controller: 'wa', pid: 1, argv: [], at, playbook: '/etc/baton/playbooks/node-failover.yml', extraVars: { failed: 'n6' }, lock: 'fence-n6,service-g1' }));
    await client.put(journalLineKey(runId, 1), JSON.stringify({ t: 'end', outcome: 'succeeded', at }));
    // A failover of n7 holds n7's cool-down, not n6's or n8's.
    await client.put(journalLineKey(`${runId}x`, 0), JSON.stringify({ t: 'run', runId: `${runId}x`, mode: 'run', controller: 'wa', pid: 1, argv: [], at, playbook: '/etc/baton/playbooks/node-failover.yml', extraVars: { failed: 'n7' } }));
    await client.put(journalLineKey(`${runId}x`, 1), JSON.stringify({ t: 'end', outcome: 'succeeded', at }));
    // n8's failover was undone by an operator since: it holds no cool-down.
    for (const [id, h, end] of [
      [`${runId}y`, { mode: 'run', playbook: '/etc/baton/playbooks/node-failover.yml', extraVars: { failed: 'n8' } }, 'succeeded'],
      [`${runId}z`, { mode: 'undo', undoOf: `${runId}y` }, 'succeeded'],
    ] as const) {
      await client.put(journalLineKey(id, 0), JSON.stringify({ t: 'run', runId: id, controller: 'op', pid: 1, argv: [], at, ...h }));
      await client.put(journalLineKey(id, 1), JSON.stringify({ t: 'end', outcome: end, at }));
    }
    const saidB: string[] = [];
    const failoversB: string[] = [];
    await watch({
      settings,
      leadership: new EtcdLeadership(new EtcdClient(etcd.endpoints, { timeoutMs: 1000 }), 'wb', 2),
      log: new DecisionLog(path.join(work, 'wb-after-kill'), client),
      say: (l) => saidB.push(l),
      signal: new AbortController().signal,
      rounds: 6,
      observe: async () => [{ ...n1Off, name: 'n6' }, { ...n1Off, name: 'n7' }, { ...n1Off, name: 'n8' }],
      failover: async (node) => (failoversB.push(node), 0),
    });
    expect(saidB.some((l) => /n6: cooldown: .*journaled in etcd/.test(l)), saidB.join('\n')).toBe(true);
    expect(saidB.some((l) => /n7: cooldown: .*journaled in etcd/.test(l)), saidB.join('\n')).toBe(true);
    // n8's failover was undone: it is failed over again.
    expect(failoversB).toEqual(['n8']);
  });

  it('a leader whose lease ran out (killed, or paused past it) loses leadership, another watcher takes over, and the old one comes back as a follower', async () => {
    const a = new EtcdLeadership(new EtcdClient(etcd.endpoints, { timeoutMs: 1000 }), 'wa', 2);
    const b = new EtcdLeadership(new EtcdClient(etcd.endpoints, { timeoutMs: 1000 }), 'wb', 2);
    expect(await a.lead()).toBe(true);
    expect(await b.lead()).toBe(false);
    // a's lease ends as it does when a dies: etcd drops it, and the leader key with it.
    const held = await client.get('baton/watch/leader');
    expect(JSON.parse(held!.value)).toMatchObject({ watcher: 'wa' });
    await client.leaseRevoke(held!.lease);
    expect(await client.get('baton/watch/leader')).toBeUndefined();
    expect(await b.lead()).toBe(true);
    // a comes back: its lease is gone, it campaigns with a new one and finds b leading.
    expect(await a.lead()).toBe(false);
    await a.resign();
    await b.resign();
  });
});

describe('runs a dead controller left, as the leading watcher finds them in etcd', () => {
  it('an unended run whose locks are free is orphaned; one still locked, ended, resumed, undone, overtaken or without locks is not', async () => {
    const at = '2099-01-01T00:00:00.000Z';
    const put = async (runId: string, lines: object[]) => {
      for (const [i, l] of lines.entries()) await client.put(`baton/journal/${runId}/${String(i).padStart(8, '0')}`, JSON.stringify({ at, ...l }));
    };
    const run = (runId: string, more: object = {}) => ({ t: 'run', runId, mode: 'run', playbook: '/pb/node-failover.yml', extraVars: { failed: 'n9' }, controller: 'gone', pid: 1, argv: [], lock: `service-${runId.slice(-6)}`, ...more });
    const intent = { t: 'intent', seq: 1, instance: 'p1.s1', stepId: 's1', name: 'mount', kind: 'mount', host: 'n2', on: 'n2', args: {}, before: {} };
    const end = { t: 'end', outcome: 'succeeded' };
    const id = (s: string) => `20990101T000000Z-${s}`;
    await put(id('aaaaa1'), [run(id('aaaaa1')), intent]); // orphaned
    await put(id('aaaaa2'), [run(id('aaaaa2')), intent]); // its lock is held: alive
    await client.put('baton/locks/service-aaaaa2', JSON.stringify({ runId: id('aaaaa2') }));
    await put(id('aaaaa3'), [run(id('aaaaa3')), intent, end]); // ended
    await put(id('aaaaa4'), [run(id('aaaaa4')), intent]); // finished by aaaaa5
    await put(id('aaaaa5'), [run(id('aaaaa5'), { resumes: id('aaaaa4') }), intent, end]);
    await put(id('aaaaa6'), [run(id('aaaaa6')), intent]); // undone by aaaaa8, after a half-done undo aaaaa7
    await put(id('aaaaa7'), [run(id('aaaaa7'), { mode: 'undo', undoOf: id('aaaaa6') }), intent]);
    await put(id('aaaaa8'), [run(id('aaaaa8'), { mode: 'undo', undoOf: id('aaaaa6') }), intent, end]);
    await put(id('aaaaa9'), [run(id('aaaaa9'), { lock: '' }), intent]); // no lock: cannot be told dead
    await put(id('aaaab0'), [run(id('aaaab0'), { mode: 'undo', undoOf: id('aaaaa3') }), intent]); // a half-done undo: orphaned
    await put(id('aaaab1'), [run(id('aaaab1'), { lock: 'fence-n9,service-old' }), intent]); // overtaken: a later run under one of its locks ended
    await put(id('aaaab2'), [run(id('aaaab2'), { lock: 'service-old' }), intent, end]);
    const finder = new OrphanFinder(client);
    const found = async () => (await finder.find()).map((o) => o.runId).filter((r) => r.startsWith('20990101'));
    expect(await found()).toEqual([id('aaaaa1'), id('aaaab0')]);
    // The holder's lease expires: that run is orphaned too; one that ends meanwhile is not.
    await client.delete('baton/locks/service-aaaaa2');
    await put(id('aaaab0'), [run(id('aaaab0'), { mode: 'undo', undoOf: id('aaaaa3') }), intent, end]);
    expect(await found()).toEqual([id('aaaaa1'), id('aaaaa2')]);
    await client.delete('baton/journal/20990101', { prefix: true });
  });
});

