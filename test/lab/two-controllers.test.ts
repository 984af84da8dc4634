/**
 * Two on-call laptops at once: two controllers (two state dirs) start runs on the same NFS
 * service. The lock lives on the nodes, so exactly one runs and the other exits 5 naming the
 * holder, and the client reads its data through the VIP from exactly one node afterwards.
 * Before the node lock, one reported success while the other's rollback took the service away
 * (6 of 6 tries). Root only.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { CLI, clientSha256, clientWrite, clusterState, diskHolders, vipHolders, type BatonResult } from '../helpers/nfs-service.js';

const execFileP = promisify(execFile);
const PB = (name: string) => path.resolve('playbooks', name);
const FILE = '/disk1/payload.bin';
const TRIES = 3;

let lab: Lab;
let work: string;
let payloadSha: string;
const children: ChildProcess[] = [];

function envOf(controller: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, BATON_STATE_DIR: path.join(work, controller), CI: 'true', ...extra };
}

/** `baton` as the controller whose state dir is work/<controller>. */
async function baton(controller: string, args: string[], extra: Record<string, string> = {}): Promise<BatonResult> {
  try {
    const r = await execFileP('node', [CLI, ...args], { env: envOf(controller, extra), maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

const switchover = (controller: string, from: string, to: string, extra: Record<string, string> = {}) =>
  baton(controller, ['run', '--yes', '-i', lab.inventoryPath, PB('nfs-switchover.yml'), '-e', `from=${from}`, '-e', `to=${to}`], extra);

const runIdIn = (out: string) => /run (\d{8}T\d{6}Z-[0-9a-f]{6})/.exec(out)?.[1];

/** Lock entries (run ids) on a node, as an operator would list them there. */
async function entriesOn(node: string): Promise<string[]> {
  const out = await lab.sshOk(node, ['sh', '-c', 'cat /run/baton/locks/*/run 2>/dev/null; true']);
  return out.split('\n').filter(Boolean);
}

/** The service is whole on exactly one node: VIP, disk, mount and export there and nowhere else; the client reads the data. */
async function expectWholeOnOne(): Promise<string> {
  const s = await clusterState(lab);
  const vip = vipHolders(s, lab.vip);
  expect(vip, JSON.stringify(s)).toHaveLength(1);
  const on = vip[0]!;
  expect(diskHolders(s, lab.disks[0]!), 'disk attached on').toEqual([on]);
  for (const [name, n] of Object.entries(s)) {
    const mounted = n.mounts.some((m) => m === '/srv/disk1');
    const exported = n.exports.some((e) => e.includes('"/srv/disk1"'));
    expect({ name, mounted, exported }, `${name} exports ${n.exports.join(', ')}`).toEqual({ name, mounted: name === on, exported: name === on });
  }
  expect(await clientSha256(lab, FILE)).toBe(payloadSha);
  return on;
}

/** Exactly one exit 0 and one exit 5; the loser names the winner's run, its controller and pid, on node n1 (the first in order). */
function expectOneWinner(a: BatonResult, b: BatonResult): void {
  const all = `--- A ---\n${a.stdout}${a.stderr}\n--- B ---\n${b.stdout}${b.stderr}`;
  expect([a.code, b.code].sort(), all).toEqual([0, 5]);
  const [winner, loser] = a.code === 0 ? [a, b] : [b, a];
  const id = runIdIn(winner.stdout);
  expect(id, all).toBeDefined();
  expect(loser.stderr, all).toMatch(new RegExp(`another run holds the lock "nfs-service" on node n1: run ${id}, pid \\d+ on ${os.hostname()}, since `));
  expect(loser.stderr).toContain('Nothing was changed');
}

/** When a run held its lock: from its journal's first record (written once locked) to its last. */
function lockedSpan(controller: string, r: BatonResult): { start: number; end: number } {
  const id = runIdIn(r.stdout);
  if (!id) throw new Error(`no run id in:\n${r.stdout}${r.stderr}`);
  const records = readFileSync(path.join(work, controller, 'runs', `${id}.jsonl`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { at: string });
  return { start: Date.parse(records[0]!.at), end: Date.parse(records[records.length - 1]!.at) };
}

/**
 * Start pairs of runs at once until TRIES of them met at the lock. Node's start-up on a busy
 * machine can put a second run after the first has already finished (a no-op switchover takes
 * under 2 s): such a pair is two runs one after the other, both may succeed, and it is not
 * counted, but their locked spans must not overlap. After every pair the service is whole.
 */
async function race(label: string, pair: () => Promise<[BatonResult, BatonResult]>): Promise<void> {
  let met = 0;
  let attempts = 0;
  while (met < TRIES) {
    if (++attempts > TRIES * 3) throw new Error(`${label}: only ${met} of ${attempts - 1} pairs started close enough together to meet at the lock`);
    const [a, b] = await pair();
    if (a.code === 0 && b.code === 0) {
      const sa = lockedSpan('laptop-a', a);
      const sb = lockedSpan('laptop-b', b);
      expect(sa.end <= sb.start || sb.end <= sa.start, `${label}: both runs succeeded while holding the lock at the same time\n${a.stdout}\n${b.stdout}`).toBe(true);
      console.log(`[two-controllers] ${label}: pair ${attempts} ran one after the other (no contention), not counted`);
    } else {
      expectOneWinner(a, b);
      met++;
    }
    await expectWholeOnOne();
    expect([...(await entriesOn('n1')), ...(await entriesOn('n2'))], 'lock entries left behind').toEqual([]);
  }
  console.log(`[two-controllers] ${label}: ${met} of ${attempts} pairs met at the lock: one ran, the other exited 5`);
}

/** A run that holds the service's lock on both nodes for a while (a maintenance window), started in the background. */
async function startHolder(controller: string, extra: Record<string, string>): Promise<{ child: ChildProcess; runId: string; exited: Promise<void> }> {
  const pb = path.join(work, 'maintenance.yml');
  writeFileSync(pb, ['- name: maintenance window', '  hosts: nodes', '  lock: nfs-service', '  steps:', '    - command: [sleep, "60"]', ''].join('\n'));
  const child = spawn('node', [CLI, 'run', '--yes', '-i', lab.inventoryPath, pb], { env: envOf(controller, extra), stdio: 'ignore' });
  children.push(child);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const end = Date.now() + 30_000;
  for (;;) {
    const [e1, e2] = await Promise.all([entriesOn('n1'), entriesOn('n2')]);
    if (e1.length === 1 && e2.length === 1 && e1[0] === e2[0]) return { child, runId: e1[0]!, exited };
    if (Date.now() > end) throw new Error(`the maintenance run did not take its lock on both nodes within 30 s (n1: ${e1}, n2: ${e2})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  requireRoot();
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-two-controllers-'));
  lab = await startLab({ name: 'locks', subnet: '198.18.160.0/24', diskMiB: 64 });
  const start = await baton('laptop-a', ['run', '--yes', '-i', lab.inventoryPath, PB('nfs-start.yml'), '-e', 'on=n1']);
  expect(start.code, start.stdout + start.stderr).toBe(0);
  payloadSha = await clientWrite(lab, FILE, 1024 * 1024);
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await lab?.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('two controllers on the same NFS service', () => {
  it(`the same switchover started from two controllers at once: one runs, the other exits 5 naming the holder (${TRIES} times)`, async () => {
    await race('same direction', async () => {
      const from = await expectWholeOnOne();
      const to = from === 'n1' ? 'n2' : 'n1';
      return Promise.all([switchover('laptop-a', from, to), switchover('laptop-b', from, to)]);
    });
  });

  it(`n1→n2 and n2→n1 started at once from two controllers: one runs, the other exits 5, the service is whole on one node (${TRIES} times)`, async () => {
    await race('opposite directions', () => Promise.all([switchover('laptop-a', 'n1', 'n2'), switchover('laptop-b', 'n2', 'n1')]));
  });

  it('a controller SIGKILLed mid-run: the other is refused while its lease runs, then takes over and moves the service', async () => {
    // Long enough that the refused run surely starts within it on a busy machine.
    const lease = { BATON_LOCK_LEASE_S: '10' };
    const holder = await startHolder('laptop-a', { ...lease, BATON_CONTROLLER: 'laptop-a' });
    holder.child.kill('SIGKILL');
    await holder.exited;
    const from = await expectWholeOnOne();
    const to = from === 'n1' ? 'n2' : 'n1';

    const early = await switchover('laptop-b', from, to, { ...lease, BATON_CONTROLLER: 'laptop-b' });
    expect(early.code, early.stdout + early.stderr).toBe(5);
    expect(early.stderr).toContain(`on node n1: run ${holder.runId}, pid ${holder.child.pid} on laptop-a`);
    expect(await expectWholeOnOne()).toBe(from);

    await new Promise((r) => setTimeout(r, 11_000));
    const later = await switchover('laptop-b', from, to, { ...lease, BATON_CONTROLLER: 'laptop-b' });
    expect(later.code, later.stdout + later.stderr).toBe(0);
    expect(later.stdout).toMatch(new RegExp(`took over a stale lock "nfs-service" on n1, n2 from run ${holder.runId} \\(not renewed for \\d+ s, past its 10 s lease\\)`));
    expect(await expectWholeOnOne()).toBe(to);
    expect([...(await entriesOn('n1')), ...(await entriesOn('n2'))]).toEqual([]);
  });

  it('a run from the same controller takes over at once when the holder\'s pid is dead', async () => {
    // Default lease (60 s): only the dead pid lets the next run in this soon.
    const holder = await startHolder('laptop-a', {});
    holder.child.kill('SIGKILL');
    await holder.exited;
    const from = await expectWholeOnOne();
    const to = from === 'n1' ? 'n2' : 'n1';
    const r = await switchover('laptop-b', from, to);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`took over a stale lock "nfs-service" on n1, n2 from run ${holder.runId} (pid ${holder.child.pid} on ${os.hostname()} is gone)`);
    expect(await expectWholeOnOne()).toBe(to);
  });
});
