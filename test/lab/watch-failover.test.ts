/**
 * Three `baton watch` controllers against the lab (`etcdw2`, 198.18.203.0/24), agreeing through
 * etcd (one member on 127.0.0.1:23798–23799): n1, which runs the service group, is powered off
 * through its BMC; exactly one watcher runs node-failover, the group runs on n2 and the client
 * reads the same bytes through the VIP. The time from power-off to the first good read is
 * printed (detection + failover). Root only.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInventory } from '../../src/inventory/load.js';
import { loadServiceGroups, type ServiceGroup } from '../../src/inventory/services.js';
import { nameCoordinatorIn, startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { groupStartVars } from '../helpers/groups.js';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { baton, CLI, groupReadSha256 } from '../helpers/nfs-service.js';

const execFileP = promisify(execFile);

let lab: Lab;
let etcd: EtcdCluster;
let work: string;
let group: ServiceGroup;
let written: string;
const watchers: Array<{ name: string; proc: ChildProcess; out: () => string }> = [];

const clientRead = (g: ServiceGroup, name: string): Promise<string | undefined> => groupReadSha256(lab, g.vip.address, g.nfsExports[0]!.pseudo, name);

async function clientWrite(g: ServiceGroup, name: string, bytes: number): Promise<string> {
  const local = path.join(work, 'payload');
  writeFileSync(local, randomBytes(bytes));
  await execFileP('ip', ['netns', 'exec', lab.clients[0]!.netns, 'nfs-cp', local, `nfs://${g.vip.address}${g.nfsExports[0]!.path}/${name}?version=3`], { timeout: 30_000 });
  return createHash('sha256').update(readFileSync(local)).digest('hex');
}

function startWatcher(name: string): void {
  const proc = spawn('node', [CLI, 'watch', '-i', lab.inventoryPath, '--coordinator', etcd.coordinator, '--interval', '1', '--failures', '2', '--cooldown', '600'], {
    env: { ...process.env, BATON_STATE_DIR: path.join(work, name), BATON_CONTROLLER: name, BATON_LOCK_LEASE_S: '4', CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  watchers.push({ name, proc, out: () => out });
}

/** A watcher's output without its repeated "not now" lines: the decisions that matter and the failover run's own output. */
const said = (out: string) =>
  out
    .split('\n')
    .filter((l) => !/: (not-leader|cooldown|suspect): /.test(l))
    .join('\n')
    .slice(-6000);

interface Decision {
  controller: string;
  node: string;
  action: string;
  why: string;
}

function decisions(): Decision[] {
  return watchers.flatMap((w) => {
    const f = path.join(work, w.name, 'watch.jsonl');
    return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Decision) : [];
  });
}

async function waitFor<T>(what: string, get: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}\n${watchers.map((w) => `--- ${w.name} ---\n${said(w.out())}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  requireRoot();
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-etcdw2-'));
  etcd = await startEtcd({ name: 'etcdw2', portBase: 23798, members: 1 });
  lab = await startLab({ name: 'etcdw2', subnet: '198.18.203.0/24', nodes: 2, groups: 1 });
  group = loadServiceGroups(loadInventory(lab.inventoryPath))[0]!;
  const start = await baton(['run', '--yes', '-i', lab.inventoryPath, path.resolve('playbooks/nfs-start.yml'), '-e', JSON.stringify(groupStartVars(group, group.home))], path.join(work, 'operator'));
  expect(start.code, start.stdout + start.stderr).toBe(0);
  // From here on, every run with the lab's inventory locks in etcd, as the watchers' do.
  nameCoordinatorIn(lab.inventoryPath, etcd.coordinator);
  written = await clientWrite(group, 'watched.bin', 256 * 1024);
});

afterAll(async () => {
  for (const w of watchers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
  await lab?.down();
  await etcd?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('three watchers and a node powered off', () => {
  it('exactly one failover runs; the group runs on n2 and the client reads the same bytes through the VIP', async () => {
    expect(group.home).toBe('n1');
    for (const name of ['w1', 'w2', 'w3']) startWatcher(name);
    // Every watcher has read the cluster healthy at least once (it remembers where the group runs).
    await waitFor('every watcher to finish a round', () => watchers.every((w) => /is the leader/.test(w.out())) || undefined, 60_000);
    await new Promise((r) => setTimeout(r, 2500));

    const t0 = Date.now();
    await lab.power('n1', 'off');
    await waitFor('the client to read the same bytes through the VIP', async () => ((await clientRead(group, 'watched.bin')) === written ? true : undefined), 180_000);
    const outageS = (Date.now() - t0) / 1000;
    console.log(`[watch-failover] n1 powered off → the client read the same bytes through the VIP after ${outageS.toFixed(1)} s (detection: 2 rounds of 1 s, then node-failover)`);

    await waitFor('the failover run to end', () => decisions().some((d) => /ended with exit/.test(d.why)) || undefined, 120_000);
    // A few more rounds: nobody fails n1 over a second time.
    await new Promise((r) => setTimeout(r, 5000));
    const all = decisions();
    const started = all.filter((d) => d.action === 'failover' && /running node-failover/.test(d.why));
    const ended = all.filter((d) => d.action === 'failover' && /ended with exit/.test(d.why));
    expect(started, JSON.stringify(all, null, 1)).toHaveLength(1);
    expect(ended.map((d) => d.why)).toEqual(['node-failover for n1 ended with exit 0']);
    expect(started[0]!.node).toBe('n1');
    // The others said why they did not act.
    expect(all.some((d) => d.controller !== started[0]!.controller && (d.action === 'not-leader' || d.action === 'cooldown'))).toBe(true);

    const status = await baton(['status', '-i', lab.inventoryPath, '--json'], path.join(work, 'operator'));
    const doc = JSON.parse(status.stdout) as { groups: Array<{ name: string; summary: string }> };
    expect(doc.groups.map((g) => g.summary)).toEqual([expect.stringMatching(/^running on n2/)]);

    for (const w of watchers) w.proc.kill('SIGTERM');
    await Promise.all(watchers.map((w) => new Promise<void>((r) => (w.proc.exitCode !== null ? r() : w.proc.once('exit', () => r())))));
    expect(watchers.map((w) => w.proc.exitCode)).toEqual([0, 0, 0]);
  });
});
