/**
 * Recovery paths on the real lab (3 nodes, a real NFS client): the defects of the safety issue
 * as an operator met them — an undo of a superseded run, a takeover while a peer's sshd is dead,
 * a rollback that would re-export an unmounted path, a re-run after the controller was killed
 * between raise_vip and garp. What is checked is what the operator would check: where the VIP,
 * the disk and the exports are on each node, and the bytes the client reads through the VIP.
 * Root only.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { baton, CLI, clientSha256, clientWrite, clusterState, diskHolders, runIdOf, vipHolders } from '../helpers/nfs-service.js';
import { runRaw } from '../../src/lab/exec.js';

const PB = (name: string) => path.resolve('playbooks', name);
const FILE = '/disk1/recovery.bin';

let lab: Lab | undefined;
let state: string;
let sha: string;

function L(): Lab {
  if (!lab) throw new Error('the lab did not come up (see beforeAll)');
  return lab;
}
const run = (playbook: string, ...args: string[]) => baton(['run', '--yes', '-i', L().inventoryPath, playbook, ...args], state);

/** The service whole on exactly `node`, seen on the nodes themselves and by the client. */
async function expectServedBy(node: string): Promise<void> {
  const s = await clusterState(L());
  expect(vipHolders(s, L().vip), 'VIP holders').toEqual([node]);
  expect(diskHolders(s, L().disks[0]!), 'disk attached on').toEqual([node]);
  expect(
    Object.entries(s).filter(([, n]) => n.mounts.includes('/srv/disk1')).map(([n]) => n),
    'mounted on',
  ).toEqual([node]);
  expect(await clientSha256(L(), FILE)).toBe(sha);
}

beforeAll(async () => {
  requireRoot();
  lab = await startLab({ name: 'recovery', subnet: '198.18.170.0/24', nodes: 3, clients: 1, disks: 1, diskMiB: 32 });
  state = mkdtempSync(path.join(os.tmpdir(), 'baton-recovery-state-'));
  const start = await run(PB('nfs-start.yml'), '-e', 'on=n1');
  expect(start.code, start.stdout + start.stderr).toBe(0);
  sha = await clientWrite(L(), FILE, 256 * 1024);
});

afterAll(async () => {
  await lab?.down();
  if (state) rmSync(state, { recursive: true, force: true });
});

describe('recovery on the lab', () => {
  it('undo of a superseded run (n1→n2, then n2→n3) refuses, names the later run, and leaves the service on n3 (defect 2)', async () => {
    const a = await run(PB('nfs-switchover.yml'), '-e', 'from=n1', '-e', 'to=n2');
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const b = await run(PB('nfs-switchover.yml'), '-e', 'from=n2', '-e', 'to=n3');
    expect(b.code, b.stdout + b.stderr).toBe(0);
    await expectServedBy('n3');

    const undo = await baton(['undo', '--yes', runIdOf(a.stdout)], state);
    expect(undo.code, undo.stdout + undo.stderr).toBe(2);
    expect(undo.stderr).toMatch(/no longer as it left them/);
    expect(undo.stderr).toContain(`changed since by run ${runIdOf(b.stdout)}`);
    await expectServedBy('n3');

    // baton runs tells the operator the first run is superseded, not that its changes are in place.
    const runs = await baton(['runs'], state);
    expect(runs.stdout).toMatch(new RegExp(`${runIdOf(a.stdout)} .*superseded by ${runIdOf(b.stdout)}`));

    // Undoing the latest run first is fine, and brings the service back to n2.
    const undoB = await baton(['undo', '--yes', runIdOf(b.stdout)], state);
    expect(undoB.code, undoB.stdout + undoB.stderr).toBe(0);
    await expectServedBy('n2');
    const back = await run(PB('nfs-switchover.yml'), '-e', 'from=n2', '-e', 'to=n1');
    expect(back.code, back.stdout + back.stderr).toBe(0);
    await expectServedBy('n1');
  });

  it('baton runs after a switchover, its undo and a second switchover: directions, durations, "undone by"', async () => {
    await expectServedBy('n1');
    const first = await run(PB('nfs-switchover.yml'), '-e', 'from=n1', '-e', 'to=n2');
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const undo = await baton(['undo', '--yes', runIdOf(first.stdout)], state);
    expect(undo.code, undo.stdout + undo.stderr).toBe(0);
    await expectServedBy('n1');
    const second = await run(PB('nfs-switchover.yml'), '-e', 'from=n1', '-e', 'to=n2');
    expect(second.code, second.stdout + second.stderr).toBe(0);
    await expectServedBy('n2');

    const runs = (await baton(['runs'], state)).stdout;
    const line = (id: string) => runs.split('\n').find((l) => l.startsWith(id)) ?? '';
    expect(line(runIdOf(first.stdout))).toMatch(/ run {3}succeeded, undone by \S+ {2}nfs-switchover\.yml from=n1 to=n2 {2}\d+\.\d s$/);
    const undoId = /^undo (\d{8}T\d{6}Z-[0-9a-f]{6}) /m.exec(undo.stdout)![1]!;
    expect(line(undoId)).toMatch(new RegExp(`undo  succeeded  undo of ${runIdOf(first.stdout)}  \\d+\\.\\d s$`));
    expect(line(runIdOf(second.stdout))).toMatch(/ run {3}succeeded \(\d+ change\(s\) in place\) {2}nfs-switchover\.yml from=n1 to=n2 {2}\d+\.\d s$/);

    const back = await run(PB('nfs-switchover.yml'), '-e', 'from=n2', '-e', 'to=n1');
    expect(back.code, back.stdout + back.stderr).toBe(0);
    await expectServedBy('n1');
  });

  it('a takeover while the holder is alive but its sshd is dead is refused: unknown is not free (defect 4)', async () => {
    await expectServedBy('n1');
    // The holder keeps serving; only its SSH daemon dies (our own session survives the kill).
    await L().sshOk('n1', ['sh', '-c', 'kill "$(cat /run/sshd.pid)"']);
    try {
      const r = await run(PB('nfs-start.yml'), '-e', 'on=n2');
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout + r.stderr).toMatch(/n1 cannot be reached .*unknown is not free/);
      const s = await clusterState(L());
      for (const n of ['n2', 'n3']) {
        expect(s[n]!.loops, `disk attached on ${n}`).toEqual([]);
        expect(s[n]!.mounts, `mounts on ${n}`).toEqual([]);
        expect(vipHolders({ [n]: s[n]! }, L().vip)).toEqual([]);
      }
      expect(await clientSha256(L(), FILE)).toBe(sha);
    } finally {
      // A power cycle brings sshd back (and drops the service): start it again on n1.
      await L().power('n1', 'off');
      await L().power('n1', 'on');
      const again = await run(PB('nfs-start.yml'), '-e', 'on=n1');
      expect(again.code, again.stdout + again.stderr).toBe(0);
    }
    await expectServedBy('n1');
  });

  it('a rollback never re-exports a path whose mount is gone: Ganesha serves no empty directory (defect 5)', async () => {
    await expectServedBy('n1');
    const pb = path.join(state, 'lost-mount.yml');
    writeFileSync(
      pb,
      `- name: release the export, then lose the mount behind the run's back
  hosts: n1
  vars: { mount_point: /srv/disk1 }
  roles:
    - { role: nfs-export, steps_from: release }
  steps:
    - name: the mount goes away (as when its revert failed on a powered-off target)
      command: [umount, /srv/disk1]
    - name: then a step fails
      command: ["false"]
`,
    );
    const r = await run(pb);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).toMatch(/\/srv\/disk1 is not a mount point/);
    const s = await clusterState(L());
    expect(s.n1!.mounts).toEqual([]);
    expect(s.n1!.exports.filter((e) => e.includes('/srv/disk1'))).toEqual([]);

    // Repair as an operator would: mount it back by hand, then start the service again.
    const loop = s.n1!.loops[0]!.split(':')[0]!;
    await L().sshOk('n1', ['mount', '-t', 'ext4', `/dev/${loop}`, '/srv/disk1']);
    const again = await run(PB('nfs-start.yml'), '-e', 'on=n1');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    await expectServedBy('n1');
  });

  it('a re-run after the controller was killed between raise_vip and garp announces the VIP and notifies (defect 7)', async () => {
    await expectServedBy('n1');
    const client = L().clients[0]!;
    const n2 = L().node('n2');
    const args = [CLI, 'run', '--yes', '--json', '-i', L().inventoryPath, PB('nfs-switchover.yml'), '-e', 'from=n1', '-e', 'to=n2'];
    const child = spawn('node', args, { env: { ...process.env, BATON_STATE_DIR: state, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const killed = new Promise<boolean>((resolve) => {
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        let e: { type?: string; status?: string; step?: { kind?: string } };
        try {
          e = JSON.parse(line);
        } catch {
          return;
        }
        if (e.type === 'step-end' && e.step?.kind === 'raise_vip' && e.status === 'changed') {
          child.kill('SIGKILL');
          resolve(true);
        }
      });
      child.on('exit', () => resolve(false));
    });
    expect(await killed, 'the controller was killed right after raise_vip').toBe(true);
    await new Promise((r) => child.on('exit', r));

    const re = await run(PB('nfs-switchover.yml'), '-e', 'from=n1', '-e', 'to=n2');
    expect(re.code, re.stdout + re.stderr).toBe(0);
    expect(re.stdout + re.stderr).toMatch(/this run finishes it/);
    // garp and restart_statd ran (changed), not skipped as `when: vip_raised is changed` would have.
    expect(re.stdout).toMatch(/n2\s+changed\s+announce/);
    expect(re.stdout).toMatch(/n2\s+changed\s+restart statd/);
    await expectServedBy('n2');
    // The client's neighbour entry for the VIP now points at n2's MAC.
    await new Promise((r) => setTimeout(r, 1500));
    const neigh = await runRaw(['ip', '-n', client.netns, 'neigh', 'show', L().vip]);
    expect(neigh.stdout.toLowerCase()).toContain(n2.mac.toLowerCase());

    const back = await run(PB('nfs-switchover.yml'), '-e', 'from=n2', '-e', 'to=n1');
    expect(back.code, back.stdout + back.stderr).toBe(0);
    await expectServedBy('n1');
  });
});

