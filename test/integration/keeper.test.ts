/**
 * `baton check --persist` end to end: the CLI (dist/) against a real sshd on loopback, with the
 * keeper it starts. Needs root (sshd's privilege separation). Each test leaves no keeper behind.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sshdInventory, startSshd, type Sshd } from '../helpers/sshd.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/cli/main.js');

let sshd: Sshd;
let work: string;
let state: string;
let inventory: string;
let playbook: string;

const sock = () => path.join(state, 'keeper', 'keeper.sock');

async function baton(args: string[], env: Record<string, string> = {}) {
  try {
    const r = await run('node', [CLI, ...args], { env: { ...process.env, BATON_STATE_DIR: state, CI: 'true', ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** Keeper processes serving this test file's socket (pgrep -f on the socket path). */
async function keepers(): Promise<number[]> {
  try {
    const r = await run('pgrep', ['-f', sock()]);
    return r.stdout.split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when none matches
  }
}

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

/** `baton keeper stop`, then SIGKILL whatever still serves our socket: a failed test must not leak one. */
async function killKeepers(): Promise<void> {
  await baton(['keeper', 'stop']);
  for (const pid of await keepers()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function writeInventory(file: string, knownHosts: string): void {
  writeFileSync(file, sshdInventory(sshd, knownHosts));
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does) before the integration tests');
  sshd = await startSshd();
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-keeper-'));
  state = path.join(work, 'state');
  inventory = path.join(work, 'inventory.yml');
  writeInventory(inventory, sshd.knownHosts);
  playbook = path.join(work, 'health.yml');
  writeFileSync(
    playbook,
    ['- name: tiny health', '  hosts: node1', '  steps:', '    - name: root fs', '      disk_free: { path: /, min_free_percent: 1 }', '    - name: sshd', '      service_running: { process: sshd }'].join('\n') + '\n',
  );
});

afterEach(killKeepers);

afterAll(async () => {
  await killKeepers().catch(() => undefined);
  await sshd?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('baton check --persist', () => {
  it('two runs share one SSH connection held by the keeper; status shows it; stop ends it', async () => {
    const before = sshd.connectionCount();
    const first = await baton(['check', '--persist', '30', '-i', inventory, playbook]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const second = await baton(['check', '-i', inventory, playbook], { BATON_PERSIST: '30' });
    expect(second.code, second.stdout + second.stderr).toBe(0);
    await sshd.waitForConnections(before + 2, 500);
    expect(sshd.connectionCount() - before).toBe(1);

    const dir = path.join(state, 'keeper');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(sock()).mode & 0o777).toBe(0o600);

    const st = await baton(['keeper', 'status']);
    expect(st.code, st.stdout + st.stderr).toBe(0);
    const pid = Number(readFileSync(path.join(dir, 'keeper.pid'), 'utf8'));
    expect(st.stdout).toContain(`pid ${pid}`);
    expect(st.stdout).toMatch(/exits after 30 s/);
    expect(st.stdout).toMatch(new RegExp(`node1\\s+${sshd.user}@127\\.0\\.0\\.1:${sshd.port}\\s+connected`));
    expect(await keepers()).toEqual([pid]);

    const stop = await baton(['keeper', 'stop']);
    expect(stop.code, stop.stdout + stop.stderr).toBe(0);
    expect(await keepers()).toEqual([]);
    expect(existsSync(sock())).toBe(false);
    expect((await baton(['keeper', 'status'])).code).toBe(1);
  });

  it('a changed host key is refused through the keeper: UNKNOWN (3), the fingerprint named', async () => {
    const other = path.join(work, 'otherkey');
    rmSync(other, { force: true });
    rmSync(`${other}.pub`, { force: true });
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const otherPub = readFileSync(`${other}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
    const wrongKnown = path.join(work, 'wrong_known_hosts');
    writeFileSync(wrongKnown, `[${sshd.host}]:${sshd.port} ${otherPub}\n`);
    const inv = path.join(work, 'wrong-inventory.yml');
    writeInventory(inv, wrongKnown);
    // A good connection held first: the changed key must not ride on it.
    expect((await baton(['check', '--persist', '30', '-i', inventory, playbook])).code).toBe(0);
    const r = await baton(['check', '--persist', '30', '-i', inv, playbook]);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).toMatch(/HOST KEY CHANGED for node1/);
    expect(r.stdout).toMatch(/SHA256:/);
  });

  it('exits by itself after the idle time, removing its socket', async () => {
    const r = await baton(['check', '--persist', '2', '-i', inventory, playbook]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await keepers()).toHaveLength(1);
    expect(await waitFor(async () => (await keepers()).length === 0, 6000)).toBe(true);
    expect(existsSync(sock())).toBe(false);
  });

  it('refuses a keeper directory others can enter, and says so', async () => {
    const dir = path.join(state, 'keeper');
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    try {
      const r = await baton(['check', '--persist', '30', '-i', inventory, playbook]);
      expect(r.code).toBe(3);
      expect(r.stdout).toMatch(/refusing to use the connection keeper directory .* mode 0755/);
      expect(await keepers()).toEqual([]);
    } finally {
      chmodSync(dir, 0o700);
    }
  });
});
