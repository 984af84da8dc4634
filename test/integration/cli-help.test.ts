/**
 * What the CLI tells a person before anything runs: --version, the exit codes in each command's
 * --help, how to quote an -e value the shell or the key=value parser split, and shell completion
 * and the man page made from the same command definitions (exercised in real bash and zsh).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const execFileP = promisify(execFile);
const CLI = path.resolve('dist/cli/main.js');
let tmp: string;

async function baton(args: string[], cwd?: string) {
  try {
    const r = await execFileP('node', [CLI, ...args], { cwd, env: { ...process.env, CI: 'true', BATON_STATE_DIR: path.join(tmp, 'state') } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** Candidates bash completion offers for the words typed so far (the last one is being completed). */
async function bashCandidates(script: string, words: string[], cwd = tmp): Promise<string[]> {
  const line = `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _baton; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = await execFileP('bash', ['--norc', '--noprofile', '-c', line], { cwd });
  return r.stdout.split('\n').filter(Boolean).sort();
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-help-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('--version and --help', () => {
  it('--version prints the version in package.json', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(await baton(['--version'])).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });

  it.each([
    ['run', ['0  succeeded', '3  a step failed and changes are still in place', '4  a host was unreachable', '5  the lock is held', '6  --check --detailed-exitcode']],
    ['check', ['0  OK', '1  WARNING', '2  CRITICAL', '3  UNKNOWN']],
    ['validate', ['0  valid', '2  invalid input']],
    ['undo', ['0  reverted', '3  some changes could not be reverted']],
    ['drill', ['0  passed', '1  a limit was broken']],
  ])('%s --help ends with its exit codes', async (cmd, lines) => {
    const r = await baton([cmd, '--help']);
    expect(r.code).toBe(0);
    const tail = r.stdout.slice(r.stdout.lastIndexOf('Exit codes:'));
    expect(tail.startsWith('Exit codes:'), r.stdout).toBe(true);
    for (const l of lines) expect(tail).toContain(l);
  });
});

describe('-e errors say how to quote', () => {
  it('a value with a space and a ; (split by the key=value reading): the quoted form and JSON are suggested, nothing runs', async () => {
    const r = await baton(['validate', 'playbooks/nfs-switchover.yml', '-e', 'x=; touch /tmp/x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('extra var "touch" is not key=value');
    expect(r.stderr).toContain(`-e "x='; touch /tmp/x'"`);
    expect(r.stderr).toContain(`-e '{"x":"; touch /tmp/x"}'`);
  });

  it('the suggested forms really pass the value through a shell as one variable, run as data, not as a command', async () => {
    const out = path.join(tmp, 'x.out');
    const pwned = path.join(tmp, 'pwned');
    const pb = path.join(tmp, 'echo.yml');
    writeFileSync(pb, `- name: x\n  hosts: localhost\n  steps:\n    - command: { argv: [sh, -c, 'printf %s "$1" > "$0"', "${out}", "{{ x }}"] }\n`);
    const value = `; touch ${pwned}`;
    const r0 = await baton(['validate', pb, '-e', `x=${value}`]);
    expect(r0.code).toBe(2);
    const advice = r0.stderr.slice(r0.stderr.indexOf('inside the argument:'));
    const suggested = [...advice.matchAll(/(-e "[^"]+"|-e '[^']+')/g)].map((m) => m[1]!);
    expect(suggested).toHaveLength(2);
    for (const form of suggested) {
      rmSync(out, { force: true });
      const r = await execFileP('sh', ['-c', `node ${CLI} run --yes ${pb} ${form}`], { env: { ...process.env, CI: 'true', BATON_STATE_DIR: path.join(tmp, 'state') } }).then(
        (o) => ({ code: 0, ...o }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
      expect(r.code, `${form}: ${r.stdout}${r.stderr}`).toBe(0);
      expect(readFileSync(out, 'utf8'), form).toBe(value);
    }
    expect(existsSync(pwned)).toBe(false);
  });
});

describe('a playbook by name', () => {
  it('a bare name that is no file here is the shipped playbook; a file of that name here wins', async () => {
    const inventory = path.resolve('inventory/lab.example.yml');
    const dir = mkdtempSync(path.join(tmp, 'cwd-'));
    const shipped = await baton(['plan', 'nfs-switchover', '-i', inventory, '-e', 'from=n1', '-e', 'to=n2'], dir);
    expect(shipped.code, shipped.stderr).toBe(0);
    expect(shipped.stdout).toContain(`PLAN for ${path.resolve('playbooks/nfs-switchover.yml')}`);
    writeFileSync(path.join(dir, 'nfs-switchover.yml'), '- name: mine\n  hosts: localhost\n  steps:\n    - command: ["true"]\n');
    const local = await baton(['plan', 'nfs-switchover.yml'], dir);
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout).toContain(`PLAN for ${path.join(realpathSync(dir), 'nfs-switchover.yml')}`);
  });
});

describe('shell completion and man page from the command definitions', () => {
  let bashScript: string;
  beforeAll(async () => {
    bashScript = path.join(tmp, 'baton.bash');
    const r = await baton(['completion', 'bash']);
    expect(r.code).toBe(0);
    writeFileSync(bashScript, r.stdout);
  });

  it('bash: after sourcing, `complete -p baton` names the function', async () => {
    const r = await execFileP('bash', ['--norc', '--noprofile', '-c', `source ${bashScript}; complete -p baton`]);
    expect(r.stdout.trim()).toBe('complete -F _baton baton');
  });

  it('bash: baton r<TAB> offers run and runs; subcommands, options, choices and shipped playbooks are completed', async () => {
    expect(await bashCandidates(bashScript, ['baton', 'r'])).toEqual(['run', 'runs']);
    expect(await bashCandidates(bashScript, ['baton', 'lab', 'po'])).toEqual(['power']);
    expect(await bashCandidates(bashScript, ['baton', 'lab', 'power', 'n1', 'o'])).toEqual(['off', 'on']);
    expect(await bashCandidates(bashScript, ['baton', 'completion', ''])).toEqual(['bash', 'zsh']);
    expect(await bashCandidates(bashScript, ['baton', 'run', '--det'])).toEqual(['--detailed-exitcode']);
    // An option's value is not taken for the playbook: after -e VALUE the playbook is completed.
    expect(await bashCandidates(bashScript, ['baton', 'plan', '-e', 'from=n1', 'nfs-sw'])).toEqual(['nfs-switchover']);
    writeFileSync(path.join(tmp, 'my-move.yml'), '[]\n');
    expect(await bashCandidates(bashScript, ['baton', 'run', 'my-'])).toEqual(['my-move.yml']);
  });

  it('zsh: the script loads under compinit and registers _baton for baton', async () => {
    const zshScript = path.join(tmp, '_baton');
    writeFileSync(zshScript, (await baton(['completion', 'zsh'])).stdout);
    const r = await execFileP('zsh', ['-f', '-c', `autoload -U compinit; compinit -u -D; source ${zshScript}; print -r -- \${_comps[baton]}; whence -w _baton_cmd_run _baton_cmd_lab_power`], { cwd: tmp });
    expect(r.stdout.split('\n')).toEqual(['_baton', '_baton_cmd_run: function', '_baton_cmd_lab_power: function', '']);
  });

  it('an unknown shell is invalid input (exit 2)', async () => {
    const r = await baton(['completion', 'fish']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bash, zsh/);
  });

  it('man: every command and option of --help is in the page, with exit codes, and man renders it', async () => {
    const r = await baton(['man']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\.TH BATON 1 /);
    const page = path.join(tmp, 'baton.1');
    writeFileSync(page, r.stdout);
    const shown = await execFileP('man', ['-l', page], { env: { ...process.env, MANWIDTH: '200', MAN_KEEP_FORMATTING: '', PAGER: 'cat' } });
    const text = shown.stdout.replace(/.\x08/g, '');
    for (const s of ['baton run [options] <playbook>', 'baton lab power [options] <node> <action>', '--detailed-exitcode', '--then-after', 'baton completion [options] <shell>']) {
      expect(text, s).toContain(s);
    }
    expect(text).toMatch(/Exit codes:\s+0\s+OK\s+1\s+WARNING/);
  });
});
