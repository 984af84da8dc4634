/**
 * The `baton` CLI as an operator and a CI job use it, on the local transport (no root, no SSH):
 * exit codes, refusing to act without --yes off a terminal, locks, undo, runs, secrets, JSON.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { baton as batonIn } from '../helpers/nfs-service.js';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const execFileP = promisify(execFile);
const CLI = path.resolve('dist/cli/main.js');

let work: string;
let target: string;
let state: string;

/** The real CLI, non-interactive, with this test's state dir. */
const baton = (args: string[]) => batonIn(args, state);

/** Three reversible steps on the local machine, the middle one using a secret from the inventory. */
function playbook(extra = ''): string {
  const file = path.join(work, 'pb.yml');
  writeFileSync(
    file,
    `- name: local moves
  hosts: localhost
  steps:
    - name: make a
      command: { argv: [touch, "${target}/a"], creates: "${target}/a", revert: [rm, -f, "${target}/a"] }
    - name: write the secret where only the node sees it
      command: { argv: [sh, -c, 'printf %s "$1" > "$0"', "${target}/b", "{{ db_password }}"], creates: "${target}/b", revert: [rm, -f, "${target}/b"] }
    - name: make c
      command: { argv: [touch, "${target}/c"], creates: "${target}/c", revert: [rm, -f, "${target}/c"] }
${extra}`,
  );
  return file;
}

function inventory(): string {
  const file = path.join(work, 'inv.yml');
  writeFileSync(file, `all:\n  hosts:\n    localhost:\n      ansible_connection: local\n      db_password: s3cr3t-v4lue\n`);
  return file;
}

const files = () => readdirSync(target).sort();

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
});
beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-cli-'));
  target = path.join(work, 'target');
  state = path.join(work, 'state');
  mkdirSync(target);
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

describe('baton CLI, local transport', () => {
  it('validate reports every problem with file:line:col and exits 2', async () => {
    const bad = path.join(work, 'bad.yml');
    writeFileSync(bad, '- name: x\n  hosts: localhost\n  steps:\n    - comand: [true]\n    - command: [ls]\n      retries: many\n');
    const r = await baton(['validate', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}:4:7: unknown step kind "comand" (did you mean "command"?)`);
    expect(r.stderr).toMatch(new RegExp(`${bad}:6:16: .*retries`));
  });

  it('without a terminal and without --yes, run changes nothing and exits 2', async () => {
    const r = await baton(['run', '-i', inventory(), playbook()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--yes/);
    expect(files()).toEqual([]);
  });

  it('run, re-run (zero changes), runs, undo: the node ends as it began', async () => {
    const pb = playbook();
    const inv = inventory();
    const first = await baton(['run', '--yes', '-i', inv, pb]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(files()).toEqual(['a', 'b', 'c']);
    expect(first.stdout).toMatch(/localhost\s+ok=0\s+changed=3/);
    const runId = /undo:\s+baton undo (\S+)/.exec(first.stdout)![1]!;

    const second = await baton(['run', '--yes', '-i', inv, pb]);
    expect(second.stdout).toMatch(/localhost\s+ok=3\s+changed=0/);
    expect(second.stdout).not.toMatch(/undo:/);

    const runs = await baton(['runs']);
    expect(runs.stdout).toContain(`${runId}  run   succeeded (3 change(s) in place)`);

    const undo = await baton(['undo', '--yes', runId]);
    expect(undo.code, undo.stdout + undo.stderr).toBe(0);
    expect(files()).toEqual([]);
    expect((await baton(['runs'])).stdout).toMatch(new RegExp(`${runId}  run   succeeded, undone by`));

    const again = await baton(['undo', '--yes', runId]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing to undo/);
  });

  it('a failing step rolls everything back: exit 1, the node as before', async () => {
    writeFileSync(path.join(target, 'keep'), '');
    const pb = playbook(`    - name: fail
      command: [sh, -c, 'echo "no space left on device" >&2; exit 4']
`);
    const r = await baton(['run', '--yes', '-i', inventory(), pb]);
    expect(r.code).toBe(1);
    expect(files()).toEqual(['keep']);
    expect(r.stdout).toMatch(/exited 4: no space left on device/);
    expect(r.stdout).toMatch(/every change was rolled back/);
  });

  it('secrets never reach the output or the journal', async () => {
    const r = await baton(['run', '--yes', '-v', '-i', inventory(), playbook()]);
    expect(r.code).toBe(0);
    expect(readFileSync(path.join(target, 'b'), 'utf8')).toBe('s3cr3t-v4lue');
    expect(r.stdout + r.stderr).not.toContain('s3cr3t-v4lue');
    const journals = readdirSync(path.join(state, 'runs'));
    for (const j of journals) expect(readFileSync(path.join(state, 'runs', j), 'utf8')).not.toContain('s3cr3t-v4lue');
    const plan = await baton(['plan', '-i', inventory(), playbook()]);
    expect(plan.stdout).not.toContain('s3cr3t-v4lue');
  });

  it('--check changes nothing; with --detailed-exitcode it exits 6 when changes would be made', async () => {
    const r = await baton(['run', '--check', '--detailed-exitcode', '-i', inventory(), playbook()]);
    expect(r.code).toBe(6);
    expect(r.stdout).toMatch(/would-change=3/);
    expect(files()).toEqual([]);
  });

  it('--json prints one JSON object per line, the summary last', async () => {
    const r = await baton(['run', '--yes', '--json', '-i', inventory(), playbook()]);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; outcome?: string });
    expect(lines.filter((l) => l.type === 'step-end')).toHaveLength(3);
    expect(lines.at(-1)).toMatchObject({ type: 'summary', outcome: 'succeeded' });
  });

  it('--tags and --skip-tags select steps', async () => {
    const pb = path.join(work, 'tags.yml');
    writeFileSync(
      pb,
      `- hosts: localhost
  steps:
    - command: { argv: [touch, "${target}/net"], creates: "${target}/net" }
      tags: [network]
    - command: { argv: [touch, "${target}/sto"], creates: "${target}/sto" }
      tags: [storage]
`,
    );
    await baton(['run', '--yes', '--tags', 'storage', pb]);
    expect(files()).toEqual(['sto']);
    await baton(['run', '--yes', '--skip-tags', 'storage', pb]);
    expect(files()).toEqual(['net', 'sto']);
  });

  it('a second run while the lock is held fails at once with exit 5, naming the holder', async () => {
    const lockPb = path.join(work, 'locked.yml');
    writeFileSync(lockPb, readFileSync(playbook(), 'utf8').replace('  hosts: localhost', '  hosts: localhost\n  lock: svc-lock'));
    // Hold the lock from this (live) test process, as another run would.
    const { acquireLock } = await import('../../src/engine/lock.js');
    const held = acquireLock('svc-lock', 'other-run-id', path.join(state, 'locks'));
    try {
      const r = await baton(['run', '--yes', '-i', inventory(), lockPb]);
      expect(r.code).toBe(5);
      expect(r.stderr).toContain('run other-run-id');
      expect(r.stderr).toContain(`pid ${process.pid}`);
      expect(files()).toEqual([]);
    } finally {
      held.release();
    }
  });

  it('a stale lock (its run died) is taken over, and the output says so', async () => {
    const lockPb = path.join(work, 'locked.yml');
    writeFileSync(lockPb, readFileSync(playbook(), 'utf8').replace('  hosts: localhost', '  hosts: localhost\n  lock: svc-lock'));
    const { acquireLock } = await import('../../src/engine/lock.js');
    const held = acquireLock('svc-lock', 'dead-run-id', path.join(state, 'locks'));
    const dead = Number((await execFileP('sh', ['-c', 'echo $$'])).stdout.trim());
    writeFileSync(held.file, JSON.stringify({ ...held.holder, pid: dead }));
    const r = await baton(['run', '--yes', '-i', inventory(), lockPb]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/took over a stale lock "svc-lock" from run dead-run-id/);
  });

  it('an unreachable host stops the run before any change (exit 4)', async () => {
    const inv = path.join(work, 'unreach.yml');
    writeFileSync(inv, `all:\n  hosts:\n    localhost:\n      ansible_connection: local\n    ghost:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n`);
    const pb = path.join(work, 'two.yml');
    writeFileSync(pb, `- hosts: all\n  steps:\n    - command: { argv: [touch, "${target}/x"], creates: "${target}/x" }\n`);
    const r = await baton(['run', '--yes', '-i', inv, pb]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/ghost/);
    expect(r.stderr).toMatch(/nothing was changed/);
    expect(files()).toEqual([]);
  });

  /** A run whose second step sleeps: touch a, sleep, touch b — long enough to interrupt. */
  function slowPlaybook(): string {
    const file = path.join(work, 'slow.yml');
    writeFileSync(
      file,
      `- name: slow
  hosts: localhost
  lock: slow-lock
  steps:
    - command: { argv: [touch, "${target}/a"], creates: "${target}/a", revert: [rm, -f, "${target}/a"] }
    - command: { argv: [sh, -c, 'sleep 2; touch "$0"', "${target}/mid"], creates: "${target}/mid", revert: [rm, -f, "${target}/mid"] }
    - command: { argv: [touch, "${target}/b"], creates: "${target}/b", revert: [rm, -f, "${target}/b"] }
`,
    );
    return file;
  }

  function startRun(pb: string) {
    const child = spawn('node', [CLI, 'run', '--yes', pb], { env: { ...process.env, BATON_STATE_DIR: state, CI: 'true' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    return { child, done, out: () => out };
  }

  async function waitForFile(file: string, ms = 10_000): Promise<void> {
    for (let waited = 0; !existsSync(file); waited += 20) {
      if (waited > ms) throw new Error(`${file} never appeared`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('Ctrl-C finishes the step in flight, then rolls everything back (exit 1)', async () => {
    const r = startRun(slowPlaybook());
    await waitForFile(path.join(target, 'a'));
    await new Promise((res) => setTimeout(res, 300));
    r.child.kill('SIGINT');
    const code = await r.done;
    expect(code, r.out()).toBe(1);
    expect(r.out()).toMatch(/Interrupted/);
    expect(files()).toEqual([]);
  });

  it("the watcher's runs (onInterrupt: finish): SIGTERM lets the run go on to its end, not rolled back; a second leaves at once", async () => {
    const viteNode = path.join(path.dirname(createRequire(import.meta.url).resolve('vite-node/package.json')), 'vite-node.mjs');
    const start = () => {
      const child = spawn(process.execPath, [viteNode, path.resolve('test/helpers/run-session-main.ts'), slowPlaybook(), 'finish'], { env: { ...process.env, BATON_STATE_DIR: state, CI: 'true' } });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      return { child, done: new Promise<number | null>((res) => child.on('close', (code) => res(code))), out: () => out };
    };
    const r = start();
    await waitForFile(path.join(target, 'a'), 30_000);
    await new Promise((res) => setTimeout(res, 300));
    r.child.kill('SIGTERM');
    expect(await r.done, r.out()).toBe(0);
    expect(r.out()).toMatch(/goes on to its end, not rolled back/);
    expect(files()).toEqual(['a', 'b', 'mid']);

    rmSync(target, { recursive: true, force: true });
    mkdirSync(target);
    const again = start();
    await waitForFile(path.join(target, 'a'), 30_000);
    await new Promise((res) => setTimeout(res, 300));
    again.child.kill('SIGTERM');
    await new Promise((res) => setTimeout(res, 100));
    again.child.kill('SIGTERM');
    // Left at once with its changes in place (exit 3): nothing rolled back, `b` never made.
    expect(await again.done, again.out()).toBe(3);
    expect(files()).toContain('a');
    expect(files()).not.toContain('b');
  });

  it('a controller killed mid-run leaves a journal: runs shows it, undo reverts it, the stale lock is taken over', async () => {
    const pb = slowPlaybook();
    const r = startRun(pb);
    await waitForFile(path.join(target, 'a'));
    await new Promise((res) => setTimeout(res, 300));
    r.child.kill('SIGKILL');
    await r.done;
    // Step 2 was in flight when the controller died; its sleep goes on and may still create `mid`.
    await new Promise((res) => setTimeout(res, 2500));
    expect(files()).toContain('a');

    const runs = await baton(['runs', '--json']);
    const row = JSON.parse(runs.stdout.trim().split('\n').at(-1)!) as { runId: string; outcome: string; changesInPlace: number };
    expect(row.outcome).toMatch(/interrupted/);
    expect(row.changesInPlace).toBe(2);

    // The dead run's lock is still on disk: undo takes it over (it is the run's lock) and says so.
    const undo = await baton(['undo', '--yes', row.runId]);
    expect(undo.code, undo.stdout + undo.stderr).toBe(0);
    expect(undo.stdout).toMatch(new RegExp(`took over a stale lock "slow-lock" from run ${row.runId}`));
    expect(files()).toEqual([]);

    // And a re-run completes from scratch.
    const again = await baton(['run', '--yes', pb]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(files()).toEqual(['a', 'b', 'mid']);
  });
});
