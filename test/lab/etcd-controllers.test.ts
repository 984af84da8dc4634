/**
 * Two controllers on one real NFS service agreeing through etcd (lab `etcdw`, 198.18.202.0/24;
 * a one-member etcd on 127.0.0.1:23796–23797, the 3-member cases are in
 * test/integration/etcd-coordinator.test.ts): the same switchover started from both, one runs
 * and the other exits 5 naming the holder's controller; a switchover run on controller A is
 * listed and undone on controller B, and the client reads the same bytes through the VIP
 * after each. Root only.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { CLI, clientSha256, clientWrite, clusterState, diskHolders, vipHolders, type BatonResult } from '../helpers/nfs-service.js';

const execFileP = promisify(execFile);
const PB = (name: string) => path.resolve('playbooks', name);
const FILE = '/disk1/payload.bin';

let lab: Lab;
let etcd: EtcdCluster;
let work: string;
let payloadSha: string;

/** `baton` as controller `controller` (its own state dir and name), through etcd. */
async function baton(controller: string, args: string[]): Promise<BatonResult> {
  try {
    const r = await execFileP('node', [CLI, ...args], {
      env: { ...process.env, BATON_STATE_DIR: path.join(work, controller), BATON_CONTROLLER: controller, BATON_COORDINATOR: etcd.coordinator, CI: 'true' },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

const switchover = (controller: string, from: string, to: string) =>
  baton(controller, ['run', '--yes', '-i', lab.inventoryPath, PB('nfs-switchover.yml'), '-e', `from=${from}`, '-e', `to=${to}`]);

const runIdIn = (out: string) => /run (\d{8}T\d{6}Z-[0-9a-f]{6})/.exec(out)?.[1];

/** The service runs whole on one node, and the client reads the same bytes through the VIP. */
async function wholeOn(): Promise<string> {
  const s = await clusterState(lab);
  const vip = vipHolders(s, lab.vip);
  expect(vip, JSON.stringify(s)).toHaveLength(1);
  expect(diskHolders(s, lab.disks[0]!)).toEqual(vip);
  expect(await clientSha256(lab, FILE)).toBe(payloadSha);
  return vip[0]!;
}

beforeAll(async () => {
  requireRoot();
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-etcdw-lab-'));
  etcd = await startEtcd({ name: 'etcdwlab', portBase: 23796, members: 1 });
  lab = await startLab({ name: 'etcdw', subnet: '198.18.202.0/24', diskMiB: 64 });
  const start = await baton('laptop-a', ['run', '--yes', '-i', lab.inventoryPath, PB('nfs-start.yml'), '-e', 'on=n1']);
  expect(start.code, start.stdout + start.stderr).toBe(0);
  payloadSha = await clientWrite(lab, FILE, 1024 * 1024);
});

afterAll(async () => {
  await lab?.down();
  await etcd?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('two controllers through etcd on a real NFS service', () => {
  it('the same switchover from two controllers: one runs, the other exits 5 naming the holder and its controller', async () => {
    let met = 0;
    for (let attempt = 1; met < 2; attempt++) {
      if (attempt > 6) throw new Error(`only ${met} of ${attempt - 1} pairs met at the lock`);
      const from = await wholeOn();
      const to = from === 'n1' ? 'n2' : 'n1';
      const [a, b] = await Promise.all([switchover('laptop-a', from, to), switchover('laptop-b', from, to)]);
      const all = `--- A ---\n${a.stdout}${a.stderr}\n--- B ---\n${b.stdout}${b.stderr}`;
      if (a.code === 0 && b.code === 0) {
        // Started too far apart to meet (the second found nothing to do): not counted.
        await wholeOn();
        continue;
      }
      expect([a.code, b.code].sort(), all).toEqual([0, 5]);
      const [winner, loser, winnerName] = a.code === 0 ? [a, b, 'laptop-a'] : [b, a, 'laptop-b'];
      expect(loser.stderr, all).toMatch(new RegExp(`another run holds the lock "nfs-service" in etcd \\(http://127\\.0\\.0\\.1:23796\\): run ${runIdIn(winner.stdout)}, pid \\d+ on ${winnerName}`));
      expect(loser.stderr).toContain('Nothing was changed');
      expect(await wholeOn()).toBe(to);
      met++;
    }
  });

  it('a switchover run on controller A is listed by `baton runs` on B, and `baton undo` on B puts the service back', async () => {
    const from = await wholeOn();
    const to = from === 'n1' ? 'n2' : 'n1';
    const a = await switchover('laptop-a', from, to);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const runId = runIdIn(a.stdout)!;
    expect(await wholeOn()).toBe(to);

    const listed = await baton('laptop-c', ['runs']);
    expect(listed.stdout).toMatch(new RegExp(`${runId}\\s+run\\s+succeeded \\(\\d+ change\\(s\\) in place\\)\\s+nfs-switchover\\.yml`));
    const undo = await baton('laptop-c', ['undo', '--yes', runId]);
    expect(undo.code, undo.stdout + undo.stderr).toBe(0);
    expect(await wholeOn()).toBe(from);
  });
});
