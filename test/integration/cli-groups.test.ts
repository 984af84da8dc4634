/**
 * Service groups moved in parallel, through the real CLI on the local transport (no root, no
 * SSH): a play that runs once per group, a group that fails rolled back alone and named, per-group
 * locks between two terminals, undo of such a run, and what `runs` says about it.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { baton as batonIn, runIdOf } from '../helpers/nfs-service.js';

const CLI = path.resolve('dist/cli/main.js');
let work: string;
let target: string;
let state: string;
const baton = (args: string[]) => batonIn(args, state);

/** One play per group: "raise" its VIP (a file), "mount" its path (a directory that must exist), "export" it. */
function playbook(): string {
  const file = path.join(work, 'service-move.yml');
  writeFileSync(
    file,
    `- name: move {{ group.name }}
  hosts: localhost
  loop: "{{ moves }}"
  loop_control: { loop_var: group, concurrency: 4 }
  lock: "service-{{ group.name }}"
  steps:
    - name: raise the VIP of {{ group.name }}
      command: { argv: [touch, "${target}/{{ group.name }}-vip"], creates: "${target}/{{ group.name }}-vip", revert: [rm, -f, "${target}/{{ group.name }}-vip"] }
    - name: wait for the go of {{ group.name }}
      command: { argv: [sh, -c, 'while [ ! -e "$0" ]; do sleep 0.05; done', "${work}/go-{{ group.name }}"] }
      when: group.hold is defined
    - name: mount {{ group.path }}
      command: { argv: [test, -d, "{{ group.path }}"] }
    - name: export {{ group.name }}
      command: { argv: [touch, "${target}/{{ group.name }}-export"], creates: "${target}/{{ group.name }}-export", revert: [rm, -f, "${target}/{{ group.name }}-export"] }
`,
  );
  return file;
}

function inventory(): string {
  const file = path.join(work, 'inv.yml');
  writeFileSync(file, `all:\n  hosts:\n    localhost:\n      ansible_connection: local\n`);
  return file;
}

const moves = (...groups: Array<{ name: string; path?: string; hold?: boolean }>) => JSON.stringify({ moves: groups.map((g) => ({ path: work, ...g })) });
const files = () => readdirSync(target).sort();

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
});
beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-groups-'));
  target = path.join(work, 'target');
  state = path.join(work, 'state');
  mkdirSync(target);
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

describe('service groups through the CLI', () => {
  it('one group failing (its mount path wrong) is rolled back alone; the other completes; exit 1 and the recap name the failed group; undo reverts the rest', async () => {
    const pb = playbook();
    const inv = inventory();
    const r = await baton(['run', pb, '-i', inv, '-e', moves({ name: 'nfs-a' }, { name: 'nfs-b', path: '/nonexistent/srv/b' }), '--yes']);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(files()).toEqual(['nfs-a-export', 'nfs-a-vip']);
    expect(r.stdout).toMatch(/^ {2}group nfs-a {2}succeeded$/m);
    expect(r.stdout).toMatch(/^ {2}group nfs-b {2}rolled back: failed at mount \/nonexistent\/srv\/b on localhost: /m);
    expect(r.stdout).toMatch(/^ {2}group nfs-b failed at mount \/nonexistent\/srv\/b on localhost: .*; rolled back$/m);
    expect(r.stdout).toMatch(/FAILED for group nfs-b \(rolled back\); nfs-a completed/);
    const runId = runIdOf(r.stdout);

    const runs = await baton(['runs']);
    expect(runs.stdout).toMatch(new RegExp(`${runId} .*failed-rolled-back \\(2 change\\(s\\) in place\\) \\[nfs-a: succeeded, nfs-b: rolled-back\\]`));

    const u = await baton(['undo', runId, '--yes']);
    expect(u.code, u.stdout + u.stderr).toBe(0);
    expect(files()).toEqual([]);
  });

  it('two terminals moving different groups both succeed; the same group twice: the second exits 5 naming the holder', async () => {
    const pb = playbook();
    const inv = inventory();
    // Terminal 1 moves nfs-a and holds it until the test says go.
    const first = spawn('node', [CLI, 'run', pb, '-i', inv, '-e', moves({ name: 'nfs-a', hold: true }), '--yes'], { env: { ...process.env, BATON_STATE_DIR: state, CI: 'true' } });
    let out1 = '';
    first.stdout.on('data', (d) => (out1 += d));
    first.stderr.on('data', (d) => (out1 += d));
    const exited = new Promise<number | null>((resolve) => first.on('exit', resolve));
    try {
      const until = Date.now() + 30_000;
      while (!existsSync(path.join(target, 'nfs-a-vip')) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(existsSync(path.join(target, 'nfs-a-vip')), out1).toBe(true);

      const other = await baton(['run', pb, '-i', inv, '-e', moves({ name: 'nfs-b' }), '--yes']);
      expect(other.code, other.stdout + other.stderr).toBe(0);
      const same = await baton(['run', pb, '-i', inv, '-e', moves({ name: 'nfs-c' }, { name: 'nfs-a' }), '--yes']);
      expect(same.code, same.stdout + same.stderr).toBe(5);
      expect(same.stdout + same.stderr).toMatch(/service-nfs-a/);
      // Nothing of the refused run happened, not even to the group nobody held.
      expect(files().filter((f) => f.startsWith('nfs-c'))).toEqual([]);
      writeFileSync(path.join(work, 'go-nfs-a'), '');
      expect(await exited, out1).toBe(0);
      // The refusal named the holder: terminal 1's run.
      expect(same.stdout + same.stderr).toContain(runIdOf(out1));
    } finally {
      writeFileSync(path.join(work, 'go-nfs-a'), '');
      if (first.exitCode === null) first.kill();
    }
    expect(files()).toEqual(['nfs-a-export', 'nfs-a-vip', 'nfs-b-export', 'nfs-b-vip']);
  });
});
