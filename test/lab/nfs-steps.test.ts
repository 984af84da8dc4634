/**
 * export / unexport (ganesha) and restart_statd on the namespace lab, driven the way users drive
 * them: small playbooks run by the real CLI (dist/) against the lab's inventory over real SSH,
 * then checked from where a user would look — a client reading files over NFS, Ganesha's own
 * export list, statd's state file, and a client's statd receiving SM_NOTIFY.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { startClientStatd, monitorClient, type ClientStatd } from '../helpers/client-statd.js';
import { ganeshaShowExportsArgv, parseShowExports } from '../../src/facts/nfs.js';

const NAME = 'nfssteps';
const SUBNET = '198.18.50.0/24';
const CLI = path.resolve('dist/cli/main.js');
const STATE_DIR = '/srv/disk1/.nfs-statd';
const VIP_NAME = 'nfs-vip';

let lab: Lab | undefined;
let work: string;
let clientStatd: ClientStatd | undefined;
const execFileP = promisify(execFile);

function L(): Lab {
  if (!lab) throw new Error('the lab did not come up (see beforeAll)');
  return lab;
}

async function baton(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await execFileP('node', [CLI, ...args], { env: { ...process.env, BATON_STATE_DIR: path.join(work, 'state'), CI: 'true' } });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, out: `${err.stdout}${err.stderr}` };
  }
}

let pbCount = 0;
async function play(hosts: string, steps: string[]): Promise<{ code: number; out: string; changed: number; runId: string }> {
  const file = path.join(work, `pb${++pbCount}.yml`);
  writeFileSync(file, [`- name: nfs steps test ${pbCount}`, `  hosts: ${hosts}`, '  steps:', ...steps.map((s) => `    - ${s}`)].join('\n') + '\n');
  const r = await baton(['run', '--yes', '-i', L().inventoryPath, file]);
  const changed = [...r.out.matchAll(/^\s*\S+\s+ok=\d+\s+changed=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  const runId = /run (\S+) (?:succeeded|FAILED)/.exec(r.out)?.[1] ?? '';
  return { ...r, changed, runId };
}

const exportStep = (node: string, extra = '') =>
  `export: { provider: ganesha, path: /srv/disk1, pseudo: /disk1, export_id: 101, fsid: 4711, squash: no_root_squash${extra} }  # ${node}`;
const unexportStep = () => 'unexport: { provider: ganesha, path: /srv/disk1, pseudo: /disk1, export_id: 101, fsid: 4711, squash: no_root_squash }';

async function exportIds(node: string): Promise<number[]> {
  return parseShowExports(await L().sshOk(node, ganeshaShowExportsArgv())).map((e) => e.id);
}

async function readV4(host: string, file: string) {
  return L().clientExec('c1', ['nfs-cat', `nfs://${host}/disk1/${file}?version=4`], { timeoutMs: 20_000 });
}

async function statdState(node: string): Promise<number> {
  return Number((await L().sshOk(node, ['od', '-An', '-tu4', `${STATE_DIR}/state`])).trim());
}

beforeAll(async () => {
  requireRoot();
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npx tsc -p .` before the lab tests');
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-nfs-steps-'));
  lab = await startLab({ name: NAME, subnet: SUBNET, nodes: 2, clients: 1, disks: 2 });
}, 60_000);

afterAll(async () => {
  // Also on failure: the client's statd and rpcbind run in the lab's client netns, outside any node.
  clientStatd?.stop();
  if (lab) await lab.down();
  if (work) rmSync(work, { recursive: true, force: true });
}, 60_000);

describe('export / unexport with provider ganesha', () => {
  const token = randomBytes(8).toString('hex');

  it('refuses to export a path with nothing mounted on it, and changes nothing', async () => {
    const r = await play('n1', [exportStep('n1')]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/\/srv\/disk1 is not a mount point/);
    expect(await exportIds('n1')).toEqual([0]);
  });

  it('exports a mounted disk: the client reads it over NFSv4 and v3; a second run changes nothing', async () => {
    await L().sshOk('n1', ['mount', '-o', 'loop', L().disks[0]!, '/srv/disk1']);
    await L().sshOk('n1', ['sh', '-c', 'cat > /srv/disk1/hello.txt'], { input: `${token}\n` });
    const n1 = L().node('n1').address;

    expect((await readV4(n1, 'hello.txt')).code).not.toBe(0);
    const first = await play('n1', [exportStep('n1')]);
    expect(first.code, first.out).toBe(0);
    expect(first.changed).toBe(1);
    expect(await exportIds('n1')).toEqual([0, 101]);
    expect((await readV4(n1, 'hello.txt')).stdout.trim()).toBe(token);
    const v3 = await L().clientExec('c1', ['nfs-cat', `nfs://${n1}/srv/disk1/hello.txt?version=3`], { timeoutMs: 20_000 });
    expect(v3.stdout.trim()).toBe(token);

    const again = await play('n1', [exportStep('n1')]);
    expect(again.code, again.out).toBe(0);
    expect(again.changed).toBe(0);
  });

  it('unexports: the client can no longer read; a second unexport changes nothing', async () => {
    const n1 = L().node('n1').address;
    const r = await play('n1', [unexportStep()]);
    expect(r.code, r.out).toBe(0);
    expect(r.changed).toBe(1);
    expect(await exportIds('n1')).toEqual([0]);
    expect((await readV4(n1, 'hello.txt')).code).not.toBe(0);
    expect((await play('n1', [unexportStep()])).changed).toBe(0);
  });

  it('rolls an export back when a later step fails: not exported, Ganesha as before', async () => {
    const n1 = L().node('n1').address;
    const before = await L().sshOk('n1', ganeshaShowExportsArgv());
    const r = await play('n1', [exportStep('n1'), 'command: [sh, -c, "exit 3"]']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/rolled back/);
    expect(await exportIds('n1')).toEqual([0]);
    expect(parseShowExports(await L().sshOk('n1', ganeshaShowExportsArgv()))).toEqual(parseShowExports(before));
    expect((await readV4(n1, 'hello.txt')).code).not.toBe(0);
    expect((await L().sshExec('n1', ['test', '-e', '/run/ganesha/baton/export-101.conf'])).code).toBe(1);
  });

  it('undo of an export run removes the export', async () => {
    const r = await play('n1', [exportStep('n1')]);
    expect(r.changed).toBe(1);
    expect(await exportIds('n1')).toEqual([0, 101]);
    const u = await baton(['undo', '--yes', '-i', L().inventoryPath, r.runId]);
    expect(u.code, u.out).toBe(0);
    expect(await exportIds('n1')).toEqual([0]);
  });

  it('moves the disk to n2 with the same fsid: the client reads the same bytes through n2', async () => {
    const n2 = L().node('n2').address;
    await L().sshOk('n1', ['umount', '/srv/disk1']);
    await L().sshOk('n2', ['mount', '-o', 'loop', L().disks[0]!, '/srv/disk1']);
    const r = await play('n2', [exportStep('n2')]);
    expect(r.code, r.out).toBe(0);
    expect(r.changed).toBe(1);
    expect(await exportIds('n2')).toEqual([0, 101]);
    expect((await readV4(n2, 'hello.txt')).stdout.trim()).toBe(token);
    // The same Filesystem_Id was written on both nodes.
    expect(await L().sshOk('n2', ['cat', '/run/ganesha/baton/export-101.conf'])).toMatch(/Filesystem_Id = 4711\.0;/);
  });
});

describe('restart_statd', () => {
  it('notifies a client from the VIP with a larger state number on every run', async () => {
    const { vip } = L();
    // sm-notify sends the VIP's host name as mon_name: the VIP must resolve on the node.
    // Appended to the node's own /etc/hosts (a file of this lab), the way an operator would.
    await L().sshOk('n2', ['sh', '-c', 'printf "%s %s\\n" "$1" "$2" >> /etc/hosts', 'baton-test', vip, VIP_NAME]);
    await L().sshOk('n2', ['ip', 'addr', 'add', `${vip}/24`, 'dev', 'eth0']);
    clientStatd = await startClientStatd(L());

    const step = `restart_statd: { vip: "{{ vip }}", state_dir: ${STATE_DIR} }`;
    const states: number[] = [];
    for (let round = 0; round < 2; round++) {
      await L().sshOk('n2', ['mkdir', '-p', `${STATE_DIR}/sm`]);
      await monitorClient(L(), 'n2', STATE_DIR);
      const r = await play('n2', [step]);
      expect(r.code, r.out).toBe(0);
      expect(r.changed).toBe(1);
      const state = await statdState('n2');
      expect(state % 2).toBe(1);
      states.push(state);
      const line = `Received SM_NOTIFY from ${VIP_NAME}, state: ${state}`;
      await clientStatd.waitFor(line);
      expect(clientStatd.log()).toContain(line);
      // The notify came from the VIP, not from the node's own address.
      expect(clientStatd.log()).toContain(`access by ${vip} ALLOWED`);
    }
    expect(states[1]!).toBeGreaterThan(states[0]!);
    // statd on n2 now runs on the shared directory under the VIP's name.
    const procs = await L().sshOk('n2', ['pgrep', '-a', '-x', 'rpc.statd']);
    expect(procs).toContain(`-P ${STATE_DIR} -n ${vip}`);
    expect(procs.trim().split('\n')).toHaveLength(1);
  });

  it('refuses to notify when the VIP has no host name on the node, before touching statd', async () => {
    const before = await L().sshOk('n1', ['pgrep', '-a', '-x', 'rpc.statd']);
    await L().sshOk('n1', ['mount', '-o', 'loop', L().disks[1]!, '/srv/disk2']);
    const r = await play('n1', ['restart_statd: { vip: 198.18.50.201, state_dir: /srv/disk2/.nfs-statd }']);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/has no host name/);
    expect(await L().sshOk('n1', ['pgrep', '-a', '-x', 'rpc.statd'])).toBe(before);
    await L().sshOk('n1', ['umount', '/srv/disk2']);
  });
});
