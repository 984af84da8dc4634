/**
 * Two controllers (two state dirs) against the same nodes, with the real CLI over real SSH: the
 * loopback sshd plays two nodes, each with its own lock directory (baton_lock_dir). Root only
 * (sshd), as CI has.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { entryName } from '../../src/engine/locks/node.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/cli/main.js');
const LOCK = 'maintenance';

let sshd: Sshd;
let work: string;
let inventory: string;
let playbook: string;
const children: ChildProcess[] = [];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function env(state: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, BATON_STATE_DIR: path.join(work, state), CI: 'true', ...extra };
}

async function baton(state: string, args: string[], extra: Record<string, string> = {}): Promise<Result> {
  try {
    const r = await run('node', [CLI, ...args], { env: env(state, extra) });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const runArgs = (pause: number, marker = path.join(work, 'marker')) => ['run', '--yes', '-i', inventory, playbook, '-e', `pause=${pause}`, '-e', `marker=${marker}`];

function lockDir(host: string): string {
  return path.join(work, host, 'locks');
}

function ownerOn(host: string): string | undefined {
  const f = path.join(lockDir(host), entryName(LOCK), 'run');
  return existsSync(f) ? readFileSync(f, 'utf8').trim() : undefined;
}

async function until(what: string, fn: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Start a run in the background; resolves once its lock entries are on both nodes. */
async function startHolder(state: string, pause: number, extra: Record<string, string>): Promise<{ child: ChildProcess; runId: string; done: Promise<Result> }> {
  const child = spawn('node', [CLI, ...runArgs(pause)], { env: env(state, extra), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<Result>((resolve) => child.on('exit', (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr })));
  await until('the run to hold its lock on both nodes', () => Boolean(ownerOn('node1') && ownerOn('node2')));
  return { child, runId: ownerOn('node1')!, done };
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does) before the integration tests');
  sshd = await startSshd();
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-node-lock-'));
  inventory = path.join(work, 'inventory.yml');
  const host = (name: string) => [
    `    ${name}:`,
    `      ansible_host: ${sshd.host}`,
    `      ansible_port: ${sshd.port}`,
    `      ansible_user: ${sshd.user}`,
    `      ansible_ssh_private_key_file: ${sshd.clientKey}`,
    `      baton_known_hosts: ${sshd.knownHosts}`,
    `      baton_lock_dir: ${lockDir(name)}`,
  ];
  writeFileSync(inventory, ['all:', '  hosts:', ...host('node1'), ...host('node2'), ''].join('\n'));
  playbook = path.join(work, 'maintenance.yml');
  writeFileSync(
    playbook,
    [
      '- name: maintenance on both nodes',
      '  hosts: all',
      `  lock: ${LOCK}`,
      '  steps:',
      '    - command: { argv: [touch, "{{ marker }}.before"], creates: "{{ marker }}.before", revert: [rm, -f, "{{ marker }}.before"] }',
      '    - command: [sleep, "{{ pause }}"]',
      '    - command: { argv: [touch, "{{ marker }}"], creates: "{{ marker }}", revert: [rm, -f, "{{ marker }}"] }',
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await sshd?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the run lock across controllers, over SSH', () => {
  it('two controllers starting the same playbook at once: one runs, the other exits 5 naming the holder (3 times)', async () => {
    for (let i = 0; i < 3; i++) {
      const [a, b] = await Promise.all([baton('state-a', runArgs(2)), baton('state-b', runArgs(2))]);
      const codes = [a.code, b.code].sort();
      expect(codes, a.stdout + a.stderr + b.stdout + b.stderr).toEqual([0, 5]);
      const [winner, loser] = a.code === 0 ? [a, b] : [b, a];
      const winnerId = /run (\d{8}T\d{6}Z-[0-9a-f]{6})/.exec(winner.stdout)?.[1];
      expect(winnerId).toBeDefined();
      expect(loser.stderr).toContain(`another run holds the lock "${LOCK}" on node node1: run ${winnerId}, pid `);
      expect(loser.stderr).toContain(`on ${os.hostname()}`);
      expect(loser.stderr).toContain('Nothing was changed');
      // Both gave their entries back.
      expect(ownerOn('node1')).toBeUndefined();
      expect(ownerOn('node2')).toBeUndefined();
    }
  });

  it('a controller SIGKILLed mid-run: another controller is refused until the lease runs out, then takes over', async () => {
    // Long enough that the refused run surely starts within it on a busy machine.
    const lease = { BATON_LOCK_LEASE_S: '10' };
    const a = await startHolder('state-a', 30, { ...lease, BATON_CONTROLLER: 'laptop-a' });
    a.child.kill('SIGKILL');
    await a.done;
    const early = await baton('state-b', runArgs(0), { ...lease, BATON_CONTROLLER: 'laptop-b' });
    expect(early.code, early.stdout + early.stderr).toBe(5);
    expect(early.stderr).toContain(`run ${a.runId}, pid ${a.child.pid} on laptop-a`);
    expect(ownerOn('node1')).toBe(a.runId);

    await new Promise((r) => setTimeout(r, 11_000));
    const later = await baton('state-b', runArgs(0), { ...lease, BATON_CONTROLLER: 'laptop-b' });
    expect(later.code, later.stdout + later.stderr).toBe(0);
    expect(later.stdout).toMatch(new RegExp(`took over a stale lock "${LOCK}" on node1, node2 from run ${a.runId} \\(not renewed for \\d+ s, past its 10 s lease\\)`));
    expect(ownerOn('node1')).toBeUndefined();
  });

  it('a run from the same controller takes over at once when the holder\'s pid is dead', async () => {
    // The default lease (60 s) is far from over: only the dead pid lets the second run in.
    const a = await startHolder('state-a', 30, {});
    a.child.kill('SIGKILL');
    await a.done;
    const b = await baton('state-b', runArgs(0));
    expect(b.code, b.stdout + b.stderr).toBe(0);
    expect(b.stdout).toContain(`took over a stale lock "${LOCK}" on node1, node2 from run ${a.runId} (pid ${a.child.pid} on ${os.hostname()} is gone)`);
  });

  it('a run whose lock was taken over stops before its next change and says so', async () => {
    const marker = path.join(work, 'after-loss');
    const child = spawn('node', [CLI, ...runArgs(5, marker)], { env: env('state-a', { BATON_LOCK_LEASE_S: '3' }), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const done = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    await until('the run to hold its lock', () => Boolean(ownerOn('node1') && ownerOn('node2')));
    const runId = ownerOn('node1')!;
    // What another controller leaves when it found this run's entry stale (a suspended laptop).
    const entry = path.join(lockDir('node1'), entryName(LOCK));
    writeFileSync(path.join(entry, 'run'), 'run-elsewhere\n');
    writeFileSync(path.join(entry, 'holder'), JSON.stringify({ runId: 'run-elsewhere', controller: 'laptop-x', pid: 4242 }) + '\n');
    const code = await done;
    // Exit 3: changes are in place; the rollback is refused too, since the other run owns the nodes now.
    expect(code, out).toBe(3);
    expect(existsSync(`${marker}.before`), 'the change made before the loss is left for `baton undo`').toBe(true);
    expect(out).toContain(`the lock "${LOCK}" was taken over on node1 by run run-elsewhere (pid 4242 on laptop-x)`);
    expect(out).toContain(`baton undo ${runId}`);
    expect(existsSync(marker), 'the step after the loss must not have run').toBe(false);
    // The other run's entry is left alone; this run's own entry on node2 is given back.
    expect(ownerOn('node1')).toBe('run-elsewhere');
    expect(ownerOn('node2')).toBeUndefined();
    rmSync(entry, { recursive: true, force: true });
  });

  it('a --check run takes no lock', async () => {
    const a = await startHolder('state-a', 3, {});
    const check = await baton('state-b', ['run', '--check', '-i', inventory, playbook, '-e', 'pause=0', '-e', `marker=${path.join(work, 'm')}`]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect((await a.done).code).toBe(0);
    expect(readdirSync(lockDir('node1')).filter((f) => !f.startsWith('.'))).toEqual([]);
  });
});
