/**
 * Storage steps on the lab, driven as a user drives them: playbooks run by the real CLI over
 * real SSH. import_volume (loop) + mount take a shared disk on one node; unmount + deport_volume
 * release it, killing what keeps it busy; the peer checks refuse a second holder.
 *
 * Loop devices are global kernel objects and the lab's nodes share one kernel, so `losetup` on
 * n2 also lists a device n1 attached. What belongs to a node is its claim under /run/baton/loop
 * (the node's private /run) and its own mount table; the tests check those, and check
 * kernel-wide that the image has exactly the loop devices expected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { batonJson, type JsonRun } from '../helpers/lab-runs.js';
import { runRaw } from '../../src/lab/exec.js';
import { loopsOfImage, parseLosetupJson } from '../../src/facts/storage.js';

const NAME = 'storsteps';
const SUBNET = '198.18.40.0/24';
const MNT = '/srv/disk1';

let lab: Lab | undefined;
let work = '';
const L = (): Lab => {
  if (!lab) throw new Error('the lab did not come up (see beforeAll)');
  return lab;
};
const disk = () => L().disks[0]!;

type CliRun = JsonRun;
const baton = (args: string[]): Promise<CliRun> => batonJson(args, path.join(work, 'state'));

function playbook(name: string, host: string, steps: unknown[]): string {
  const file = path.join(work, `${name}.yml`);
  writeFileSync(file, JSON.stringify([{ hosts: host, steps }], null, 2));
  return file;
}

const run = (pb: string, ...extra: string[]) => baton(['run', '--yes', '-i', L().inventoryPath, ...extra, pb]);
const changed = (r: CliRun, host: string) => r.summary?.recap?.[host]?.changed;
const errors = (r: CliRun) => r.events.filter((e) => e.type === 'step-end' && e.status === 'failed').map((e) => String(e.error)).join('\n');

const take = (host: string) =>
  playbook(`take-${host}`, host, [
    { import_volume: { provider: 'loop', image: disk() } },
    { mount: { source_image: disk(), path: MNT, fstype: 'ext4' } },
  ]);
const release = (host: string) =>
  playbook(`release-${host}`, host, [{ unmount: { path: MNT, kill_timeout: 6 } }, { deport_volume: { provider: 'loop', image: disk() } }]);

/** Loop devices backed by the disk, kernel-wide (every node sees the same list). */
async function kernelLoops(): Promise<string[]> {
  return loopsOfImage(parseLosetupJson((await runRaw(['losetup', '--list', '--json', '--output', 'NAME,BACK-FILE'])).stdout), disk());
}
/** The node's claims: loop devices this node attached. */
async function claims(node: string): Promise<string> {
  return (await L().sshExec(node, ['sh', '-c', 'cat /run/baton/loop/* 2>/dev/null; true'])).stdout.trim();
}
/** What the node has mounted on MNT ('' when nothing). */
async function mountedOn(node: string): Promise<string> {
  return (await L().sshExec(node, ['findmnt', '-n', '-o', 'SOURCE,FSTYPE,OPTIONS', '--mountpoint', MNT])).stdout.trim();
}

/** The mount without its loop device's number: a re-attached disk may get another one (the kernel is shared). */
const sameMount = (m: string) => m.replace(/^\/dev\/loop\d+/, '/dev/loop');

beforeAll(async () => {
  requireRoot();
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-storsteps-'));
  // Built by `npm test` before any suite runs. Never rebuilt here: tsc would rewrite dist/ under
  // the other suites' running commands (and put its own entry over the bundled one).
  if (!existsSync(path.resolve('dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
  lab = await startLab({ name: NAME, subnet: SUBNET, nodes: 2, clients: 1, disks: 1 });
});

afterAll(async () => {
  if (lab) await lab.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('storage steps on the lab (loop provider)', () => {
  it('imports and mounts the disk on n1; nothing of it on n2; a second run changes nothing', async () => {
    const r = await run(take('n1'));
    expect(r.code, errors(r) + r.stderr).toBe(0);
    expect(changed(r, 'n1')).toBe(2);
    await L().sshOk('n1', ['sh', '-c', `echo written-on-n1 > ${MNT}/f.txt && sync`]);
    expect(await mountedOn('n1')).toMatch(/^\/dev\/loop\d+\s+ext4\s+rw/);
    expect(await claims('n1')).toBe(disk());
    expect(await claims('n2')).toBe('');
    expect(await mountedOn('n2')).toBe('');
    expect(await kernelLoops()).toHaveLength(1);

    const again = await run(take('n1'));
    expect(again.code).toBe(0);
    expect(changed(again, 'n1')).toBe(0);
    expect(again.summary.recap.n1.ok).toBe(2);
  });

  it('refuses to import on n2 while n1 holds the disk, naming n1; nothing attached for n2', async () => {
    const r = await run(playbook('import-n2', 'n2', [{ import_volume: { provider: 'loop', image: disk() } }]));
    expect(r.code).not.toBe(0);
    expect(errors(r)).toMatch(/will not import_volume .* n1 has .* imported/);
    expect(await claims('n2')).toBe('');
    expect(await kernelLoops()).toHaveLength(1);
  });

  it('refuses to mount on n2 while n1 has the image mounted, even with the device attached by force', async () => {
    // --force lets the import through (the operator vouches n1 is down) but n1 still has it mounted.
    const imp = await run(playbook('import-n2-forced', 'n2', [{ import_volume: { provider: 'loop', image: disk() } }]), '--force');
    expect(imp.code, errors(imp)).toBe(0);
    try {
      const m = await run(playbook('mount-n2', 'n2', [{ mount: { source_image: disk(), path: MNT, fstype: 'ext4' } }]));
      expect(m.code).not.toBe(0);
      expect(errors(m)).toMatch(/will not mount .* n1 has .* mounted \(\/dev\/loop\d+ on \/srv\/disk1\)/);
      expect(await mountedOn('n2')).toBe('');
    } finally {
      // Drop n2's claim only: the device is shared with n1 here, so detach is not what we want.
      await L().sshOk('n2', ['sh', '-c', 'rm -f /run/baton/loop/*']);
    }
    expect(await kernelLoops()).toHaveLength(1);
  });

  it('releases n1 while processes keep the mount busy: they are killed, within the bound', async () => {
    await L().sshOk('n1', ['sh', '-c', `cd ${MNT} && setsid sleep 1000 </dev/null >/dev/null 2>&1 &`]);
    await L().sshOk('n1', ['sh', '-c', `setsid sh -c 'exec sleep 1001 3<${MNT}/f.txt' </dev/null >/dev/null 2>&1 &`]);
    await new Promise((r) => setTimeout(r, 300));
    // Two holders: one by its cwd, one by an open file. (The node's init sleeps too: match exactly.)
    const holders = ['pgrep', '-f', '^sleep 100[01]$'];
    expect((await L().sshOk('n1', holders)).trim().split('\n')).toHaveLength(2);
    // Proof that the mount is really busy before baton touches it.
    const busy = await L().sshExec('n1', ['umount', MNT]);
    expect(busy.stderr).toMatch(/busy/);

    const r = await run(release('n1'));
    expect(r.code, errors(r) + r.stderr).toBe(0);
    expect(changed(r, 'n1')).toBe(2);
    const unmount = r.events.find((e) => e.type === 'step-end' && e.step.kind === 'unmount');
    console.log(`unmount with 2 busy users: ${unmount.durationMs} ms; whole release run: ${r.ms} ms`);
    expect(unmount.durationMs).toBeLessThan(6_000);
    expect((await L().sshExec('n1', holders)).code).toBe(1);
    expect(await mountedOn('n1')).toBe('');
    expect(await claims('n1')).toBe('');
    expect(await kernelLoops()).toEqual([]);
  });

  it('takes the disk over on n2: the file written on n1 reads back', async () => {
    const r = await run(take('n2'));
    expect(r.code, errors(r)).toBe(0);
    expect(changed(r, 'n2')).toBe(2);
    expect((await L().sshOk('n2', ['cat', `${MNT}/f.txt`])).trim()).toBe('written-on-n1');
    const back = await run(release('n2'));
    expect(back.code, errors(back)).toBe(0);
    expect(await kernelLoops()).toEqual([]);
  });

  it('rolls back import + mount when a later step fails: nothing mounted, no loop device anywhere', async () => {
    const pb = playbook('take-then-fail', 'n1', [
      { import_volume: { provider: 'loop', image: disk() } },
      { mount: { source_image: disk(), path: MNT, fstype: 'ext4' } },
      { command: ['false'] },
    ]);
    const r = await run(pb);
    expect(r.code).not.toBe(0);
    expect(r.summary.recap.n1.changed).toBe(2);
    expect(r.events.filter((e) => e.type === 'revert-end').map((e) => [e.step.kind, e.ok])).toEqual([
      ['mount', true],
      ['import_volume', true],
    ]);
    for (const n of ['n1', 'n2']) {
      expect(await mountedOn(n)).toBe('');
      expect(await claims(n)).toBe('');
    }
    expect(await kernelLoops()).toEqual([]);
  });

  it('undo of a release mounts the disk back as it was', async () => {
    expect((await run(take('n1'))).code).toBe(0);
    const before = await mountedOn('n1');
    const rel = await run(release('n1'));
    expect(rel.code, errors(rel)).toBe(0);
    expect(await mountedOn('n1')).toBe('');

    const undo = await baton(['undo', rel.summary.runId, '--yes', '-i', L().inventoryPath]);
    expect(undo.code, undo.stderr + JSON.stringify(undo.events.filter((e) => e.type === 'revert-end'))).toBe(0);
    expect(sameMount(await mountedOn('n1'))).toBe(sameMount(before));
    expect(await claims('n1')).toBe(disk());
    expect((await L().sshOk('n1', ['cat', `${MNT}/f.txt`])).trim()).toBe('written-on-n1');
    // Undoing again finds everything in place already.
    const twice = await baton(['undo', rel.summary.runId, '--yes', '-i', L().inventoryPath]);
    expect(sameMount(await mountedOn('n1'))).toBe(sameMount(before));
    expect(await kernelLoops()).toHaveLength(1);
    void twice;

    const clean = await run(release('n1'));
    expect(clean.code).toBe(0);
    expect(await kernelLoops()).toEqual([]);
  });

  it('attaches on one node take turns under the node\'s attach lock (losetup racing for a free device sleeps 200 ms per lost race)', async () => {
    // Another attach holds the node's lock for 2 s: ours waits for it instead of racing.
    const holder = L().sshExec('n1', ['sh', '-c', 'mkdir -p /run/baton/loop; exec 9>/run/baton/loop.attach-lock; flock 9; echo held; sleep 2']);
    for (let i = 0; i < 50 && !(await L().sshExec('n1', ['sh', '-c', 'flock -n /run/baton/loop.attach-lock true || echo busy'])).stdout.includes('busy'); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const pb = playbook('attach-only', 'n1', [{ import_volume: { provider: 'loop', image: disk() } }]);
    const attaching = run(pb);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await kernelLoops()).toEqual([]); // still waiting for its turn
    expect((await holder).stdout).toContain('held');
    const r = await attaching;
    expect(r.code, errors(r)).toBe(0);
    expect(await kernelLoops()).toHaveLength(1);
    expect(await claims('n1')).toBe(disk());
    const back = await run(playbook('detach-only', 'n1', [{ deport_volume: { provider: 'loop', image: disk() } }]));
    expect(back.code, errors(back)).toBe(0);
    expect(await kernelLoops()).toEqual([]);
  });
});
