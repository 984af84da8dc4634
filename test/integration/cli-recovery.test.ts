/**
 * Recovery paths of the `baton` CLI on the local transport (no root): a failed step fails the
 * run, a damaged journal is refused by undo, a re-run finishes what a killed run owed, empty
 * selections are errors, and undo's journal holds no secret.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { baton as batonIn } from '../helpers/nfs-service.js';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const CLI = path.resolve('dist/cli/main.js');

let work: string;
let target: string;
let state: string;

/** The real CLI, non-interactive, with this test's state dir. */
const baton = (args: string[]) => batonIn(args, state);

const files = () => readdirSync(target).sort();
const journalFile = (runId: string) => path.join(state, 'runs', `${runId}.jsonl`);
const runIdOf = (out: string) => /undo:\s+baton undo (\S+)/.exec(out)?.[1];

function write(name: string, text: string): string {
  const file = path.join(work, name);
  writeFileSync(file, text);
  return file;
}

function inventory(): string {
  return write('inv.yml', `all:\n  hosts:\n    n1:\n      ansible_connection: local\n      db_password: s3cr3t-v4lue\n    n2:\n      ansible_connection: local\n`);
}

/** Five reversible file steps on n1. */
function fiveSteps(): string {
  const steps = ['a', 'b', 'c', 'd', 'e']
    .map((f) => `    - name: make ${f}\n      command: { argv: [touch, "${target}/${f}"], creates: "${target}/${f}", revert: [rm, -f, "${target}/${f}"] }\n`)
    .join('');
  return write('five.yml', `- name: five files\n  hosts: n1\n  steps:\n${steps}`);
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
});
beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-recovery-'));
  target = path.join(work, 'target');
  state = path.join(work, 'state');
  mkdirSync(target);
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

describe('a failed step fails the run (defect 1)', () => {
  it('arguments invalid after templating: exit 1, the next step never runs', async () => {
    const pb = write(
      'pb.yml',
      `- name: typed
  hosts: n1
  vars: { n: 5 }
  steps:
    - command: { argv: [touch, "{{ n }}"] }
    - command: { argv: [touch, "${target}/second"], creates: "${target}/second" }
`,
    );
    const r = await baton(['run', '--yes', '-i', inventory(), pb]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).not.toMatch(/succeeded/);
    expect(files()).toEqual([]);
  });
});

describe('a journal is trusted only whole (defect 3)', () => {
  async function finishedRun(): Promise<string> {
    const r = await baton(['run', '--yes', '-i', inventory(), fiveSteps()]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(files()).toEqual(['a', 'b', 'c', 'd', 'e']);
    return runIdOf(r.stdout)!;
  }

  it('a record altered in the middle: undo refuses with the line number and touches nothing', async () => {
    const id = await finishedRun();
    const lines = readFileSync(journalFile(id), 'utf8').split('\n');
    const i = lines.findIndex((l) => l.includes('"t":"intent"') && l.includes(`${target}/c`));
    lines[i] = lines[i]!.replace(`${target}/c`, `${target}/x`);
    writeFileSync(journalFile(id), lines.join('\n'));
    const r = await baton(['undo', '--yes', id]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`damaged at line ${i + 1}`);
    expect(files()).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('a journal cut at a line boundary: undo refuses (its seal counts the records) and touches nothing', async () => {
    const id = await finishedRun();
    const lines = readFileSync(journalFile(id), 'utf8').split('\n');
    writeFileSync(journalFile(id), lines.slice(0, 6).join('\n') + '\n');
    const r = await baton(['undo', '--yes', id]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/sealed it with \d+ records, but 6 whole records are here/);
    expect(files()).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('a record removed from the middle: undo refuses at that line', async () => {
    const id = await finishedRun();
    const lines = readFileSync(journalFile(id), 'utf8').split('\n');
    lines.splice(3, 1);
    writeFileSync(journalFile(id), lines.join('\n'));
    const r = await baton(['undo', '--yes', id]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/damaged at line 4: its hash does not follow/);
    expect(files()).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('a torn last line (a crash mid-write) is expected: undo reverts the rest and says so', async () => {
    const id = await finishedRun();
    const lines = readFileSync(journalFile(id), 'utf8').split('\n').filter(Boolean);
    // The crash came before the end record was whole: no seal either.
    rmSync(journalFile(id).replace(/\.jsonl$/, '.seal'));
    writeFileSync(journalFile(id), lines.slice(0, -1).join('\n') + '\n' + lines.at(-1)!.slice(0, 20));
    const r = await baton(['undo', '--yes', id]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/torn/);
    expect(files()).toEqual([]);
  });
});

describe('a re-run finishes what a killed run owed (defect 7)', () => {
  it('a step triggered by `is changed` runs on the re-run although its trigger is now ok', async () => {
    // The second step kills the controller (its parent) once, as a SIGKILL between raise_vip and garp would.
    const pb = write(
      'owed.yml',
      `- name: owed
  hosts: n1
  steps:
    - name: raise
      command: { argv: [touch, "${target}/raised"], creates: "${target}/raised", revert: [rm, -f, "${target}/raised"] }
      register: raised
    - name: the controller dies here
      command: { argv: [sh, -c, 'touch "$0"; kill -KILL $PPID; sleep 5', "${target}/killed"], creates: "${target}/killed" }
    - name: announce
      command: { argv: [touch, "${target}/announced"] }
      when: raised is changed
`,
    );
    const inv = inventory();
    const first = await baton(['run', '--yes', '-i', inv, pb]);
    expect(first.code).not.toBe(0);
    expect(files()).toEqual(['killed', 'raised']);

    const again = await baton(['run', '--yes', '-i', inv, pb]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(files()).toEqual(['announced', 'killed', 'raised']);
    expect(again.stdout + again.stderr).toMatch(/this run finishes it/);

    // Once finished, nothing is owed any more: a third run changes nothing and announces nothing new.
    rmSync(path.join(target, 'announced'));
    const third = await baton(['run', '--yes', '-i', inv, pb]);
    expect(third.code).toBe(0);
    expect(files()).toEqual(['killed', 'raised']);
  });
});

describe('a re-run finishes what a run that could not roll back owed', () => {
  it('a step triggered by `is changed` runs on the re-run after a failure left the trigger in place', async () => {
    const blocker = path.join(target, 'blocker');
    writeFileSync(blocker, '');
    const pb = write(
      'stuck.yml',
      `- name: stuck
  hosts: n1
  on_failure: stop
  steps:
    - name: raise
      command: { argv: [touch, "${target}/raised"], creates: "${target}/raised", revert: [rm, -f, "${target}/raised"] }
      register: raised
    - name: the link to the new holder is down
      command: [sh, -c, 'test ! -e "$0"', "${blocker}"]
    - name: announce
      command: { argv: [touch, "${target}/announced"] }
      when: raised is changed
`,
    );
    const inv = inventory();
    const first = await baton(['run', '--yes', '-i', inv, pb]);
    expect(first.code).toBe(3);
    expect(files()).toEqual(['blocker', 'raised']);
    rmSync(blocker);
    const again = await baton(['run', '--yes', '-i', inv, pb]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(files()).toEqual(['announced', 'raised']);
  });
});

describe('selections that match nothing are errors (defect 10)', () => {
  for (const limit of ['nosuchhost', '!!&&:[']) {
    it(`--limit '${limit}' exits 2 and changes nothing`, async () => {
      const r = await baton(['run', '--yes', '-i', inventory(), '-l', limit, fiveSteps()]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/matches no host|no host selected/);
      expect(files()).toEqual([]);
    });
  }

  it('a two-sided move limited to one side exits 2 before releasing anything', async () => {
    const pb = write(
      'move.yml',
      `- name: release on {{ from }}
  hosts: "{{ from }}"
  steps:
    - command: { argv: [touch, "${target}/released"], creates: "${target}/released" }
- name: take over on {{ to }}
  hosts: "{{ to }}"
  steps:
    - command: { argv: [touch, "${target}/taken"], creates: "${target}/taken" }
`,
    );
    const r = await baton(['run', '--yes', '-i', inventory(), '-e', 'from=n1', '-e', 'to=n2', '-l', 'n1', pb]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no host selected for play 2 "take over on n2"/);
    expect(files()).toEqual([]);
  });
});

describe('secrets (defect 12)', () => {
  it("undo's journal holds no secret either", async () => {
    const pb = write(
      'secret.yml',
      `- name: secret
  hosts: n1
  steps:
    - command: { argv: [sh, -c, 'printf %s "$1" > "$0"', "${target}/b", "{{ db_password }}"], creates: "${target}/b", revert: [sh, -c, 'echo "cannot log in to the database with $1" >&2; exit 1', "${target}/b", "{{ db_password }}"] }
`,
    );
    const r = await baton(['run', '--yes', '-i', inventory(), pb]);
    expect(r.code).toBe(0);
    const id = runIdOf(r.stdout)!;
    // The revert fails and its stderr holds the secret: the error is journaled, masked.
    const u = await baton(['undo', '--yes', id]);
    expect(u.code, u.stdout + u.stderr).toBe(3);
    expect(u.stdout).toMatch(/cannot log in to the database with \*{8}/);
    expect(u.stdout + u.stderr).not.toContain('s3cr3t-v4lue');
    for (const f of readdirSync(path.join(state, 'runs'))) expect(readFileSync(path.join(state, 'runs', f), 'utf8')).not.toContain('s3cr3t-v4lue');
  });

  it('-e wins over the inventory for a secret too', async () => {
    const pb = write(
      'pw.yml',
      `- name: pw
  hosts: n2
  steps:
    - command: { argv: [sh, -c, 'printf %s "$1" > "$0"', "${target}/pw", "{{ hostvars['n1'].db_password }}"], creates: "${target}/pw" }
`,
    );
    const r = await baton(['run', '--yes', '-i', inventory(), '-e', 'db_password=n3w-fr0m-e', pb]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(path.join(target, 'pw'), 'utf8')).toBe('n3w-fr0m-e');
  });
});

describe('baton runs and baton show', () => {
  it('runs shows the move, its duration and its fate; show lists each change and what became of it', async () => {
    const inv = inventory();
    const pb = fiveSteps();
    const r = await baton(['run', '--yes', '-i', inv, '-e', 'to=n1', pb]);
    expect(r.code).toBe(0);
    const id = runIdOf(r.stdout)!;
    const u = await baton(['undo', '--yes', id]);
    expect(u.code).toBe(0);
    const runs = await baton(['runs']);
    expect(runs.stdout).toMatch(new RegExp(`${id}  run   succeeded, undone by \\S+  five\\.yml to=n1  \\d+\\.\\d s`));
    const json = (await baton(['runs', '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(json.find((x) => x.runId === id)).toMatchObject({ playbook: 'five.yml', vars: 'to=n1', outcome: 'succeeded' });
    const show = await baton(['show', id]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/outcome: succeeded, undone by/);
    expect(show.stdout.match(/changed\s+make [a-e]/g)).toHaveLength(5);
  });
});
