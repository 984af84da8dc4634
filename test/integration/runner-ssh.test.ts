/**
 * The runner end to end over real SSH: the `baton` CLI (built to dist/) against a real sshd on
 * loopback started by the test. Needs root (sshd's privilege separation), as CI has.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshdInventory, startSshd, type Sshd } from '../helpers/sshd.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/cli/main.js');

let sshd: Sshd;
let work: string;
let inventory: string;

async function baton(args: string[], env: Record<string, string> = {}) {
  try {
    const r = await run('node', [CLI, ...args], { env: { ...process.env, BATON_STATE_DIR: path.join(work, 'state'), CI: 'true', ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

function writeInventory(file: string, knownHosts: string): void {
  writeFileSync(file, sshdInventory(sshd, knownHosts));
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does) before the integration tests');
  sshd = await startSshd();
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-runner-ssh-'));
  inventory = path.join(work, 'inventory.yml');
  writeInventory(inventory, sshd.knownHosts);
});

afterAll(async () => {
  await sshd?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('baton run over real SSH', () => {
  it('runs a 20-step play over exactly one TCP connection, and a second run changes nothing', async () => {
    const target = path.join(work, 'twenty');
    const steps = Array.from({ length: 20 }, (_, i) =>
      [
        `    - command:`,
        `        argv: [mkdir, -p, "${target}/d${i}"]`,
        `        creates: "${target}/d${i}"`,
        `        revert: [rmdir, "${target}/d${i}"]`,
      ].join('\n'),
    ).join('\n');
    const pb = path.join(work, 'twenty.yml');
    writeFileSync(pb, `- name: twenty steps\n  hosts: node1\n  steps:\n${steps}\n`);

    const before = sshd.connectionCount();
    const first = await baton(['run', '--yes', '-i', inventory, pb]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/node1\s+ok=0\s+changed=20/);
    await sshd.waitForConnections(before + 1);
    expect(sshd.connectionCount() - before).toBe(1);
    expect(readdirSync(target)).toHaveLength(20);

    const second = await baton(['run', '--yes', '-i', inventory, pb]);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/node1\s+ok=20\s+changed=0/);
  });

  it('a variable holding shell syntax reaches the node as one literal argument', async () => {
    const canary = path.join(work, 'pwned');
    const nasty = [`; touch ${canary}`, `$(touch ${canary})`, `\`touch ${canary}\``, `'"*?[a]`, 'line1\nline2', '-n', '  spaced  ', 'ünïcødé'];
    const out = path.join(work, 'echoed');
    const pb = path.join(work, 'inject.yml');
    writeFileSync(
      pb,
      [
        '- name: injection',
        '  hosts: node1',
        '  steps:',
        '    - command:',
        `        argv: [sh, -c, 'for a in "$@"; do printf "%s\\0" "$a"; done > "$0"', "${out}", "{{ v0 }}", "{{ v1 }}", "{{ v2 }}", "{{ v3 }}", "{{ v4 }}", "{{ v5 }}", "{{ v6 }}", "{{ v7 }}"]`,
      ].join('\n') + '\n',
    );
    const varsFile = path.join(work, 'vars.json');
    writeFileSync(varsFile, JSON.stringify(Object.fromEntries(nasty.map((v, i) => [`v${i}`, v]))));
    const r = await baton(['run', '--yes', '-i', inventory, '-e', `@${varsFile}`, pb]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(out, 'utf8').split('\0').slice(0, -1)).toEqual(nasty);
    expect(existsSync(canary)).toBe(false);
  });

  it('refuses a host whose key changed, names the key, and changes nothing (exit 4)', async () => {
    const wrongKnownHosts = path.join(work, 'wrong_known_hosts');
    const other = path.join(work, 'otherkey');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const otherPub = readFileSync(`${other}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
    writeFileSync(wrongKnownHosts, `[${sshd.host}]:${sshd.port} ${otherPub}\n`);
    const inv = path.join(work, 'wrong-inventory.yml');
    writeInventory(inv, wrongKnownHosts);
    const marker = path.join(work, 'should-not-exist');
    const pb = path.join(work, 'one.yml');
    writeFileSync(pb, `- name: one\n  hosts: node1\n  steps:\n    - command: { argv: [touch, "${marker}"], creates: "${marker}" }\n`);
    const r = await baton(['run', '--yes', '-i', inv, pb]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/node1/);
    expect(r.stderr).toMatch(/SHA256:/);
    expect(existsSync(marker)).toBe(false);
  });

  it('a step timeout kills the command on the node', async () => {
    const marker = `baton-remote-timeout-${Date.now()}`;
    const pb = path.join(work, 'timeout.yml');
    writeFileSync(pb, `- name: slow\n  hosts: node1\n  steps:\n    - command: [sh, -c, "sleep 120", "${marker}"]\n      timeout: 1\n`);
    const r = await baton(['run', '--yes', '-i', inventory, pb]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/timed out/);
    const left = await run('pgrep', ['-f', marker]).then(
      (x) => x.stdout,
      () => '',
    );
    expect(left).toBe('');
  });
});
