/**
 * The mission, end to end in the lab: an NFS service moved between two real nodes with the
 * shipped playbooks, read by a real NFS client (libnfs) through the VIP. Root only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import {
  baton,
  changedCount,
  clientSha256,
  clientWrite,
  clusterState,
  diskHolders,
  nfsCatArgv,
  runIdOf,
  vipHolders,
  type NodeState,
} from '../helpers/nfs-service.js';
import { ReadProbe } from '../../src/drill/probe.js';
import { outageWindows, totalOutageMs } from '../../src/drill/outage.js';
import { loadInventory } from '../../src/inventory/load.js';
import { connectionFor } from '../../src/inventory/connection.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { defaultRegistry } from '../../src/steps/registry.js';
import { TransportPool } from '../../src/transport/index.js';
import { execute } from '../../src/engine/execute.js';
import { Journal } from '../../src/engine/journal.js';
import { Redactor } from '../../src/engine/redact.js';
import { step } from '../helpers/model.js';
import { monitorClient, startClientStatd, type ClientStatd } from '../helpers/client-statd.js';

const PB = (name: string) => path.resolve('playbooks', name);
const FILE = '/disk1/payload.bin';
/** A small file the client reads every 50 ms during a move: the outage, not the transfer, is measured. */
const PROBE = '/disk1/probe.bin';

let lab: Lab;
let state: string;
let payloadSha: string;
let probeSha: string;
let clientStatd: ClientStatd | undefined;
/** statd's state on the shared volume (roles/statd's default), so it moves with the disk. */
const STATD_DIR = '/srv/disk1/.nfs-statd';

/** The state number the client's statd was last told, from its log. */
function lastNotifiedState(): number {
  const all = [...clientStatd!.log().matchAll(/Received SM_NOTIFY from nfs-vip, state: (\d+)/g)];
  return all.length ? Number(all[all.length - 1]![1]) : 0;
}

const run = (playbook: string, ...args: string[]) => baton(['run', '--yes', '-i', lab.inventoryPath, PB(playbook), ...args], state);

async function expectServedBy(node: string): Promise<Record<string, NodeState>> {
  const s = await clusterState(lab);
  expect(vipHolders(s, lab.vip), 'VIP holders').toEqual([node]);
  expect(diskHolders(s, lab.disks[0]!), 'disk attached on').toEqual([node]);
  expect(await clientSha256(lab, FILE)).toBe(payloadSha);
  return s;
}

/** A node's state without loop device numbers. */
function sameService(s: Record<string, NodeState>): Record<string, NodeState> {
  return Object.fromEntries(Object.entries(s).map(([n, st]) => [n, { ...st, loops: st.loops.map((l) => l.replace(/^loop\d+:/, 'loop:')) }]));
}

/** Run a move while the client reads every 50 ms; report what the client saw. */
async function withClientProbe<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const probe = new ReadProbe({ argv: nfsCatArgv(lab, PROBE), intervalMs: 50, readTimeoutMs: 300 });
  probe.start();
  await new Promise((r) => setTimeout(r, 300));
  try {
    return await fn();
  } finally {
    await new Promise((r) => setTimeout(r, 1500));
    const samples = await probe.stop();
    const windows = outageWindows(samples);
    const bad = samples.filter((s) => s.ok && s.sha256 !== probeSha);
    // The figure for the closing note: first failed read to first good read.
    console.log(`[outage] ${what}: ${windows.length} window(s), total ${totalOutageMs(windows)} ms, ${samples.length} reads, ${bad.length} with wrong bytes`);
    expect(bad).toEqual([]);
    expect(windows.every((w) => !w.open), 'the client reads again at the end').toBe(true);
  }
}

beforeAll(async () => {
  requireRoot();
  lab = await startLab({ name: 'e2e', subnet: '198.18.20.0/24', diskMiB: 64 });
  state = mkdtempSync(path.join(os.tmpdir(), 'baton-e2e-state-'));
  const start = await run('nfs-start.yml', '-e', 'on=n1');
  expect(start.code, start.stdout + start.stderr).toBe(0);
  payloadSha = await clientWrite(lab, FILE, 8 * 1024 * 1024);
  probeSha = await clientWrite(lab, PROBE, 4096);
});

afterAll(async () => {
  clientStatd?.stop();
  await lab?.down();
  if (state) rmSync(state, { recursive: true, force: true });
});

describe('NFS switchover, failover and undo in the lab', () => {
  it('switchover n1→n2: the client reads the same bytes; VIP and disk on exactly one node; a second run changes nothing', async () => {
    await expectServedBy('n1');
    const r = await withClientProbe('switchover n1→n2', () => run('nfs-switchover.yml', '-e', 'from=n1', '-e', 'to=n2'));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await expectServedBy('n2');

    const again = await run('nfs-switchover.yml', '-e', 'from=n1', '-e', 'to=n2');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(changedCount(again.stdout)).toBe(0);
  });

  it('baton undo of the switchover restores the original placement, and the client reads the file', async () => {
    const r = await run('nfs-switchover.yml', '-e', 'from=n2', '-e', 'to=n1');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await expectServedBy('n1');
    const move = await run('nfs-switchover.yml', '-e', 'from=n1', '-e', 'to=n2');
    expect(move.code).toBe(0);
    await expectServedBy('n2');
    const undo = await baton(['undo', '--yes', runIdOf(move.stdout)], state);
    expect(undo.code, undo.stdout + undo.stderr).toBe(0);
    await expectServedBy('n1');
  });

  it('a takeover on n2 while n1 still holds the service is refused, names n1, and changes nothing', async () => {
    const before = await clusterState(lab);
    const r = await run('nfs-start.yml', '-e', 'on=n2');
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/n1/);
    expect(await clusterState(lab)).toEqual(before);
  });

  it('a failure at every step k of nfs-switchover leaves both nodes as they were', async () => {
    const inventory = loadInventory(lab.inventoryPath);
    const registry = defaultRegistry();
    const extraVars = { from: 'n1', to: 'n2' };
    const template = loadPlaybook(PB('nfs-switchover.yml'), { inventory, extraVars, registry });
    const total = template.plays.reduce((n, p) => n + p.steps.length, 0);
    expect(total).toBeGreaterThanOrEqual(8);
    const before = await clusterState(lab);

    for (let k = 0; k <= total; k++) {
      // A copy of the playbook with a failing step spliced in before step k (k = total: after the last).
      const pb = loadPlaybook(PB('nfs-switchover.yml'), { inventory, extraVars, registry });
      let play = pb.plays[pb.plays.length - 1]!;
      let at = play.steps.length;
      let i = k;
      for (const p of pb.plays) {
        if (i < p.steps.length) {
          play = p;
          at = i;
          break;
        }
        i -= p.steps.length;
      }
      play.steps.splice(at, 0, step('command', ['false'], { id: `injected-${k}`, name: `injected failure at step ${k}` }));

      const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!, path.dirname(inventory.file)));
      const journal = new Journal(`inject-${k}`, path.join(state, 'runs'));
      try {
        const result = await execute({
          playbook: pb,
          inventory,
          extraVars,
          registry,
          pool,
          runId: `inject-${k}`,
          journal,
          redactor: new Redactor(),
          onEvent: () => {},
        });
        expect(result.exitCode, `failure at step ${k}: ${result.failures.join('; ')}`).toBe(1);
      } finally {
        journal.close();
        await pool.closeAll();
      }
      // The same service in the same places; which loop device number the disk got back is not
      // part of it (the kernel hands out the first free one, and other labs share the kernel).
      expect(sameService(await clusterState(lab)), `after a failure at step ${k}`).toEqual(sameService(before));
    }
    await expectServedBy('n1');
  });

  it('unplanned: n1 powered off while serving; nfs-failover fences it through its BMC (ipmi) and n2 serves the data', async () => {
    await expectServedBy('n1');
    // An NFSv3 client holding a lock: its statd must hear from the VIP after the failover.
    clientStatd = await startClientStatd(lab);
    await monitorClient(lab, 'n1', STATD_DIR);
    const notifiedBefore = lastNotifiedState();
    // The client reads from before the power loss: the outage runs from the failure to the
    // service answering again (detecting the failure is not baton's job: it starts right away).
    const r = await withClientProbe('failover n1→n2 (power loss, ipmi fencing)', async () => {
      await lab.power('n1', 'off');
      return run('nfs-failover.yml', '-e', 'from=n1', '-e', 'to=n2');
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await lab.power('n1', 'status')).toMatch(/off/);
    const s = await clusterState(lab);
    expect(s.n1!.up).toBe(false);
    expect(vipHolders(s, lab.vip)).toEqual(['n2']);
    expect(await clientSha256(lab, FILE)).toBe(payloadSha);
    expect(await clientStatd.waitFor(/Received SM_NOTIFY from nfs-vip, state: \d+/), clientStatd.log()).toBe(true);
    expect(clientStatd.log()).toContain(`access by ${lab.vip} ALLOWED`);
    expect(lastNotifiedState()).toBeGreaterThan(notifiedBefore);
    console.log(`[statd] after failover n1→n2 the client was notified with state ${lastNotifiedState()}`);

    const again = await run('nfs-failover.yml', '-e', 'from=n1', '-e', 'to=n2');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(changedCount(again.stdout)).toBe(0);
  });

  it('unplanned with fence_ipmilan: n2 fails while serving, n1 (repaired) takes over; the client hears a higher state number', async () => {
    await lab.power('n1', 'on');
    await monitorClient(lab, 'n2', STATD_DIR);
    const previous = lastNotifiedState();
    expect(previous).toBeGreaterThan(0);
    const r = await withClientProbe('failover n2→n1 (power loss, fence_ipmilan)', async () => {
      await lab.power('n2', 'off');
      return run('nfs-failover.yml', '-e', 'from=n2', '-e', 'to=n1', '-e', 'fence_provider=fence-agent');
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/fence/);
    const s = await clusterState(lab);
    expect(s.n2!.up).toBe(false);
    expect(vipHolders(s, lab.vip)).toEqual(['n1']);
    expect(await clientSha256(lab, FILE)).toBe(payloadSha);
    for (let i = 0; i < 100 && lastNotifiedState() <= previous; i++) await new Promise((res) => setTimeout(res, 50));
    expect(lastNotifiedState(), clientStatd!.log()).toBeGreaterThan(previous);
    console.log(`[statd] after failover n2→n1 the client was notified with state ${lastNotifiedState()} (before: ${previous})`);
    await lab.power('n2', 'on');
  });

  it('failback to the repaired n2: served there; a second run changes nothing', async () => {
    await expectServedBy('n1');
    const r = await run('nfs-failback.yml', '-e', 'from=n1', '-e', 'to=n2');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await expectServedBy('n2');
    const again = await run('nfs-failback.yml', '-e', 'from=n1', '-e', 'to=n2');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(changedCount(again.stdout)).toBe(0);
  });
});
