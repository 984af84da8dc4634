/**
 * Looking at an NFS service in the lab the way an operator would: who holds the VIP, where the
 * disk is attached and mounted, what is exported, what a client reads through the VIP.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Lab } from './lab.js';

const execFileP = promisify(execFile);
export const CLI = path.resolve('dist/cli/main.js');

export interface BatonResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the real CLI, non-interactively, with its own state dir. */
export async function baton(args: string[], stateDir: string): Promise<BatonResult> {
  try {
    const r = await execFileP('node', [CLI, ...args], {
      env: { ...process.env, BATON_STATE_DIR: stateDir, CI: 'true' },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** `changed=N` of a host in a run's recap, summed over hosts. */
export function changedCount(out: string): number {
  return [...out.matchAll(/changed=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
}

/** The run id from a run's closing lines (`undo:    baton undo ID` or `run ID succeeded`). */
export function runIdOf(out: string): string {
  const m = /(?:run|undo) (\d{8}T\d{6}Z-[0-9a-f]{6})/.exec(out);
  if (!m) throw new Error(`no run id in:\n${out}`);
  return m[1]!;
}

/** What an operator checks on a node: addresses, loop devices, mounts under /srv, exports. */
export interface NodeState {
  up: boolean;
  addresses: string[];
  loops: string[];
  mounts: string[];
  exports: string[];
}

export async function nodeState(lab: Lab, node: string): Promise<NodeState> {
  const probe = await lab.sshExec(
    node,
    [
      'sh',
      '-c',
      // A constant script: each section on its own, separated by markers.
      // Loop devices belong to the kernel all lab nodes share (`losetup -a` lists them on every
      // node): what a node holds is what it attached, recorded in its own /run by the step.
      'ip -o addr show dev eth0 | awk \'{print $4}\'; echo @@; grep -r -s "" /run/baton/loop; echo @@; ' +
        'findmnt -rn -o TARGET,SOURCE | grep "^/srv/" ; echo @@; ' +
        'dbus-send --system --print-reply --dest=org.ganesha.nfsd /org/ganesha/nfsd/ExportMgr org.ganesha.nfsd.exportmgr.ShowExports 2>/dev/null | grep -o \'string "/[^"]*"\' ; true',
    ],
    { timeoutMs: 10_000 },
  );
  if (probe.code === 255) return { up: false, addresses: [], loops: [], mounts: [], exports: [] };
  const [addr = '', loops = '', mounts = '', exports = ''] = probe.stdout.split('@@\n');
  const lines = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean).sort();
  return {
    up: true,
    addresses: lines(addr),
    loops: lines(loops).map((l) => l.replace(/^\/run\/baton\/loop\//, '')),
    mounts: lines(mounts).map((l) => l.split(' ')[0]!),
    exports: lines(exports),
  };
}

export async function clusterState(lab: Lab): Promise<Record<string, NodeState>> {
  const out: Record<string, NodeState> = {};
  for (const n of lab.nodes) out[n.name] = await nodeState(lab, n.name);
  return out;
}

/** Nodes on which the VIP is configured. */
export function vipHolders(state: Record<string, NodeState>, vip: string): string[] {
  return Object.entries(state)
    .filter(([, s]) => s.addresses.some((a) => a.startsWith(`${vip}/`)))
    .map(([n]) => n);
}

/** Nodes that attached the image as a loop device. */
export function diskHolders(state: Record<string, NodeState>, image: string): string[] {
  return Object.entries(state)
    .filter(([, s]) => s.loops.some((l) => l.includes(image)))
    .map(([n]) => n);
}

/** The client's argv to read a file through the VIP with NFSv4 (libnfs, no kernel client). */
export function nfsCatArgv(lab: Lab, file: string): string[] {
  return ['ip', 'netns', 'exec', lab.clients[0]!.netns, 'nfs-cat', `nfs://${lab.vip}${file}?version=4`];
}

/** Read a file through the VIP; resolves with its sha256, or throws with what the client saw. */
export async function clientSha256(lab: Lab, file: string): Promise<string> {
  const argv = nfsCatArgv(lab, file);
  const r = await execFileP(argv[0]!, argv.slice(1), { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: 15_000 });
  return createHash('sha256').update(r.stdout).digest('hex');
}

/** Read `name` under a service group's export through its VIP, with a 5 s bound: its sha256, or undefined when the read fails (for polling). */
export async function groupReadSha256(lab: Lab, vip: string, pseudo: string, name: string): Promise<string | undefined> {
  try {
    const r = await execFileP('ip', ['netns', 'exec', lab.clients[0]!.netns, 'nfs-cat', `nfs://${vip}${pseudo}/${name}?version=4`], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: 5_000 });
    return createHash('sha256').update(r.stdout).digest('hex');
  } catch {
    return undefined;
  }
}

/**
 * Write `bytes` of random data through the VIP as the client; returns its sha256. `file` is the
 * NFSv4 path (under the pseudo root); the write goes over NFSv3 to the same file under its real
 * path, because libnfs's NFSv4 write fails against this Ganesha (NFS4ERR_ACCESS at create, or a
 * failed WRITE) while NFSv3 writes and NFSv4 reads work.
 */
export async function clientWrite(lab: Lab, file: string, bytes: number, v3Path = file.replace(/^\/disk1\//, '/srv/disk1/')): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-client-'));
  try {
    const local = path.join(dir, 'payload');
    const data = randomBytes(bytes);
    writeFileSync(local, data);
    await execFileP('ip', ['netns', 'exec', lab.clients[0]!.netns, 'nfs-cp', local, `nfs://${lab.vip}${v3Path}?version=3`], { timeout: 30_000 });
    return createHash('sha256').update(readFileSync(local)).digest('hex');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
