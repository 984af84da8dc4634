import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInputs } from '../../src/cli/inputs.js';
import { connectionFor } from '../../src/inventory/connection.js';
import { loadInventory } from '../../src/inventory/load.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import type { Playbook } from '../../src/playbook/model.js';
import { ValidationError, type Problem } from '../../src/util/errors.js';
import { testRegistry } from './fixtures/kinds.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const inventoryFile = path.join(here, 'fixtures/inv/prod.yml');
const inventory = loadInventory(inventoryFile);
const execFileP = promisify(execFile);
const CLI = path.resolve('dist/cli/main.js');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'baton-habits-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Write `files` under a fresh directory; the first is the playbook. */
function project(files: Record<string, string>): string {
  const d = mkdtempSync(path.join(dir, 'p-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(d, name)), { recursive: true });
    writeFileSync(path.join(d, name), text);
  }
  return path.join(d, Object.keys(files)[0]!);
}

const load = (file: string): Playbook => loadPlaybook(file, { inventory, extraVars: { to: 'nas2' }, registry: testRegistry() });

function problemsOf(file: string): Problem[] {
  try {
    load(file);
  } catch (err) {
    if (err instanceof ValidationError) return err.problems;
    throw err;
  }
  throw new Error(`${file} loaded without a problem`);
}

describe('playbooks written by Ansible habit', () => {
  it('accepts gather_facts, ignores it, and says so in a notice (shown with -v)', () => {
    const pb = load(project({ 'pb.yml': '- hosts: nas1\n  gather_facts: false\n  steps:\n    - command: [uptime]\n' }));
    expect(pb.plays[0]!.steps).toHaveLength(1);
    expect(pb.notices).toEqual([{ loc: { file: pb.file, line: 2, col: 3 }, message: expect.stringContaining('gather_facts is ignored') }]);
  });

  it('passes become and become_user through on plays and steps, untouched', () => {
    const pb = load(
      project({
        'pb.yml': '- hosts: nas1\n  become: true\n  become_user: nfs\n  steps:\n    - command: [uptime]\n      become: false\n    - command: [id]\n      become_user: backup\n',
      }),
    );
    const play = pb.plays[0]!;
    expect([play.become, play.becomeUser]).toEqual([true, 'nfs']);
    expect(play.steps.map((s) => [s.become, s.becomeUser])).toEqual([
      [false, undefined],
      [undefined, 'backup'],
    ]);
  });

  it('reads YAML 1.1 booleans (yes/no/on/off, any case) where a boolean is expected, and only there', () => {
    const pb = load(
      project({
        'pb.yml': [
          '- name: "yes"',
          '  hosts: nas1',
          '  become: YES',
          '  gather_facts: off',
          '  steps:',
          '    - name: no',
          '      command: [uptime]',
          '      run_once: yes',
          '      ignore_errors: On',
          '    - command: [echo, "no"]',
          '      ignore_errors: No',
          '',
        ].join('\n'),
      }),
    );
    const play = pb.plays[0]!;
    expect(play.name).toBe('yes');
    expect(play.become).toBe(true);
    expect(play.steps.map((s) => [s.name, s.runOnce, s.ignoreErrors, s.args])).toEqual([
      ['no', true, true, ['uptime']],
      [undefined, false, false, ['echo', 'no']],
    ]);
  });

  it('still refuses a string that is no boolean where one is expected', () => {
    const [p] = problemsOf(project({ 'pb.yml': '- hosts: nas1\n  steps:\n    - command: [uptime]\n      run_once: sure\n' }));
    expect(p!.message).toBe('"run_once" must be true or false, got the string "sure"');
    expect([p!.loc.line, p!.loc.col]).toEqual([4, 17]);
  });

  it('loads vars_files relative to the playbook; they win over vars, a later file over an earlier one', () => {
    const file = project({
      'pb.yml': '- hosts: nas1\n  vars: { a: play, b: play }\n  vars_files: [vars/one.yml, "vars/{{ to }}.yml"]\n  steps:\n    - command: [echo, "{{ a }}", "{{ b }}", "{{ c }}"]\n',
      'vars/one.yml': 'a: one\nc: one\n',
      'vars/nas2.yml': 'c: "two {{ b }}"\n',
    });
    const play = load(file).plays[0]!;
    expect(play.vars).toEqual({ a: 'one', b: 'play', c: 'two {{ b }}' });
  });

  it('reports a missing vars file at its item, and problems inside one at their place in that file', () => {
    const file = project({
      'pb.yml': '- hosts: nas1\n  vars_files:\n    - vars/nope.yml\n    - vars/list.yml\n    - vars/broken.yml\n    - vars/undefined.yml\n  steps:\n    - command: [uptime]\n',
      'vars/list.yml': '- a\n- b\n',
      'vars/broken.yml': 'a: 1\n  b: 2\n',
      'vars/undefined.yml': 'x: "{{ nowhere }}"\n',
    });
    const d = path.dirname(file);
    const got = problemsOf(file).map((p) => `${path.relative(d, p.loc.file)}:${p.loc.line}:${p.loc.col}: ${p.message}`);
    expect(got.sort()).toEqual([
      `pb.yml:3:7: vars_files: no file ${path.join(d, 'vars/nope.yml')}`,
      'vars/broken.yml:2:4: YAML syntax error: bad indentation of a mapping entry (check that this key lines up with the keys above it)',
      'vars/list.yml:1:1: a vars file must be a mapping of names to values, got a list',
      expect.stringMatching(/^vars\/undefined\.yml:1:4: undefined variable "nowhere" in vars file undefined\.yml "\{\{ nowhere \}\}"/),
    ]);
  });

  it('reads vars files with the same bounds as playbooks: invalid UTF-8 is reported in the vars file', () => {
    const file = project({ 'pb.yml': '- hosts: nas1\n  vars_files: [site.yml]\n  steps:\n    - command: [uptime]\n' });
    const vars = path.join(path.dirname(file), 'site.yml');
    writeFileSync(vars, Buffer.concat([Buffer.from('a: 1\nsite: "caf'), Buffer.from([0xe9]), Buffer.from('"\n')]));
    const [p] = problemsOf(file);
    expect(p).toEqual({ loc: { file: vars, line: 2, col: 11 }, message: expect.stringContaining('invalid UTF-8 in vars file (byte 0xe9)') });
  });

  it.each([
    ['block', 'baton has no block/rescue/always: when a step fails, every change of the run is reverted'],
    ['rescue', 'baton has no block/rescue/always'],
    ['include_tasks', 'baton has no include_tasks: put the steps in a role and use it as { role: NAME, steps_from: FILE }'],
    ['import_tasks', 'baton has no import_tasks: put the steps in a role and use it as { role: NAME, steps_from: FILE }'],
    ['include_role', 'baton has no include_role: list the role under the play\'s "roles:"'],
    ['notify', 'baton has no handlers: register the step ("register: NAME") and give the follow-up step "when: NAME is changed"'],
  ])('a step with "%s" is told what to use instead', (key, message) => {
    const value = key === 'notify' ? 'restart nfs' : key.endsWith('tasks') || key === 'include_role' ? 'other.yml' : '[{ command: [uptime] }]';
    const extra = key === 'notify' ? '      command: [uptime]\n' : '';
    const [p] = problemsOf(project({ 'pb.yml': `- hosts: nas1\n  steps:\n    - name: x\n      ${key}: ${value}\n${extra}` }));
    expect(p!.message).toContain(`"${key}": ${message}`);
    expect([p!.loc.line, p!.loc.col]).toEqual([4, 7]);
  });

  it('an import_playbook entry is told what to do, without "missing hosts"', () => {
    const problems = problemsOf(project({ 'pb.yml': '- import_playbook: other.yml\n- hosts: nas1\n  steps:\n    - command: [uptime]\n' }));
    expect(problems.map((p) => [p.loc.line, p.loc.col, p.message])).toEqual([
      [1, 3, '"import_playbook": baton has no import_playbook: run the playbooks one after the other, or put their plays in one file'],
    ]);
  });

  it.each([
    ['handlers', '[{ name: h, command: [uptime] }]', 'baton has no handlers'],
    ['pre_tasks', '[{ command: [uptime] }]', 'baton has no pre_tasks: put these steps first in "steps:"'],
    ['import_playbook', 'other.yml', 'baton has no import_playbook: run the playbooks one after the other'],
  ])('a play with "%s" is told what to use instead', (key, value, message) => {
    const problems = problemsOf(project({ 'pb.yml': `- hosts: nas1\n  ${key}: ${value}\n  steps:\n    - command: [uptime]\n` }));
    expect(problems.map((p) => [p.loc.line, p.loc.col, p.message])).toEqual([[2, 3, expect.stringContaining(`"${key}": ${message}`)]]);
  });
});

describe('-u and -f', () => {
  const pbFile = () => project({ 'pb.yml': '- hosts: storage\n  steps:\n    - command: [uptime]\n- hosts: nas1\n  forks: 3\n  steps:\n    - command: [uptime]\n' });

  it('-u is the user of hosts whose inventory names none; ansible_user in the inventory wins', () => {
    const inputs = loadInputs(pbFile(), { inventory: inventoryFile, extraVars: [], user: 'ops' });
    const user = (h: string) => connectionFor(inputs.inventory.hosts.get(h)!).user;
    // nas2's host_vars file and client1's inventory entry name their users.
    expect([user('nas1'), user('nas2'), user('client1')]).toEqual(['ops', 'admin', 'tester']);
    const without = loadInputs(pbFile(), { inventory: inventoryFile, extraVars: [] });
    expect(connectionFor(without.inventory.hosts.get('nas1')!).user).toBeUndefined();
  });

  it('-f sets forks for plays that set none', () => {
    const inputs = loadInputs(pbFile(), { inventory: inventoryFile, extraVars: [], forks: 2 });
    expect(inputs.playbook.plays.map((p) => p.forks)).toEqual([2, 3]);
  });
});

describe('--list-hosts, --list-tasks, --list-tags, --syntax-check', () => {
  let inv: string;
  let pb: string;
  let marker: string;
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
    marker = path.join(dir, 'views-marker');
    inv = path.join(dir, 'views-inv.yml');
    writeFileSync(inv, 'all:\n  children:\n    here:\n      hosts:\n        local1: { ansible_connection: local }\n        local2: { ansible_connection: local }\n');
    pb = project({
      'pb.yml': [
        '- name: make the marker',
        '  hosts: here',
        '  tags: [demo]',
        '  steps:',
        '    - name: touch {{ marker }}',
        '      command: { argv: [touch, "{{ marker }}"], creates: "{{ marker }}" }',
        '      tags: [files]',
        '    - name: say hello',
        '      command: [echo, hello]',
        '      tags: [talk]',
        '',
      ].join('\n'),
    });
  });

  const baton = async (args: string[]) => {
    try {
      const r = await execFileP('node', [CLI, ...args], { env: { ...process.env, BATON_STATE_DIR: path.join(dir, 'state'), CI: 'true' } });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  it.each([['run'], ['plan']])('%s --list-hosts --list-tasks --list-tags prints the views and runs nothing', async (cmd) => {
    const r = await baton([cmd, pb, '-i', inv, '-e', `marker=${marker}`, '--limit', 'local2', '--list-hosts', '--list-tasks', '--list-tags', '--skip-tags', 'talk']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        '',
        `playbook: ${pb}`,
        '',
        '  play #1 (here): make the marker\tTAGS: [demo]',
        "    pattern: ['here']",
        '    hosts (1):',
        '      local2',
        '    tasks:',
        `      touch ${marker}\tTAGS: [files, demo, command]`,
        '      TASK TAGS: [command, demo, files]',
        '',
      ].join('\n'),
    );
    expect(existsSync(marker)).toBe(false);
  });

  it('run --syntax-check exits 0 on a sound playbook and 2 on a broken one, running nothing', async () => {
    const ok = await baton(['run', pb, '-i', inv, '-e', `marker=${marker}`, '--syntax-check']);
    expect([ok.code, ok.stdout]).toEqual([0, `\nplaybook: ${pb}\n`]);
    const broken = project({ 'pb.yml': '- hosts: here\n  steps:\n    - command: { argv: [touch, "{{ marker }}"] }\n      whn: true\n' });
    const bad = await baton(['run', broken, '-i', inv, '-e', `marker=${marker}`, '--syntax-check']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${broken}:4:7: unknown key "whn" in step (did you mean "when"?)`);
    expect(existsSync(marker)).toBe(false);
  });

  it('-v says that gather_facts is ignored; without -v nothing is said', async () => {
    const f = project({ 'pb.yml': '- hosts: here\n  gather_facts: yes\n  steps:\n    - command: [uptime]\n' });
    const quiet = await baton(['validate', f, '-i', inv]);
    const loud = await baton(['validate', f, '-i', inv, '-v']);
    expect([quiet.code, loud.code]).toEqual([0, 0]);
    expect(quiet.stderr).toBe('');
    expect(loud.stderr).toContain(`${f}:2:3: note: gather_facts is ignored: baton gathers no facts, each step probes what it needs on the node`);
  });

  it('--list-tasks names a role\'s steps "role : name", as ansible-playbook does', async () => {
    const r = await baton(['plan', path.resolve('playbooks/nfs-failover.yml'), '-i', path.resolve('inventory/lab.example.yml'), '-e', 'from=n1', '-e', 'to=n2', '--list-tasks']);
    expect(r.code).toBe(0);
    const tasks = r.stdout.split('\n').filter((l) => l.startsWith('      ')).map((l) => l.trim().split('\t')[0]);
    expect(tasks.slice(0, 3)).toEqual([
      'fencing : fence n1 (power off through its BMC)',
      'volume : attach the shared volume /var/lib/baton-lab/lab/disks/disk1.img',
      'volume : mount /var/lib/baton-lab/lab/disks/disk1.img on /srv/disk1',
    ]);
  });

  it('-f refuses anything but a positive whole number (exit 2)', async () => {
    const r = await baton(['plan', pb, '-i', inv, '-e', `marker=${marker}`, '-f', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('expected a whole number of hosts, 1 or more, got "0"');
  });
});
