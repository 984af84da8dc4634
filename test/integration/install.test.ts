/**
 * Installing baton on a controller as the README says: `npm pack` in a fresh clone (which must
 * build dist/ itself), `npm install -g` of the tarball into a prefix, then `baton` used from a
 * directory that has nothing of baton's, finding its shipped playbooks, roles and schemas.
 *
 * The clone shares this checkout's node_modules (for the build's tsc); the install resolves the
 * package's dependencies from a registry on loopback that serves the ones already on disk, so
 * nothing outside this machine is reached and the test takes seconds, not a download.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalRegistry, type LocalRegistry } from '../helpers/local-registry.js';

const execFileP = promisify(execFile);
const repo = path.resolve('.');
const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

let tmp: string;
let registry: LocalRegistry | undefined;
let prefix: string;
let elsewhere: string;
const timings: Record<string, number> = {};

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    timings[what] = Date.now() - t0;
  }
}

/** npm with nothing from the user's or the machine's npm config: our registry, our cache. */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  writeFileSync(path.join(tmp, 'npmrc-user'), '');
  writeFileSync(path.join(tmp, 'npmrc-global'), '');
  return { ...env, npm_config_userconfig: path.join(tmp, 'npmrc-user'), npm_config_globalconfig: path.join(tmp, 'npmrc-global'), npm_config_cache: path.join(tmp, 'npm-cache'), npm_config_update_notifier: 'false' };
}

async function installed(args: string[], cwd = elsewhere) {
  try {
    const r = await execFileP(path.join(prefix, 'bin', 'baton'), args, { cwd, env: { ...process.env, BATON_STATE_DIR: path.join(tmp, 'state'), CI: 'true' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

beforeAll(async () => {
  tmp = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'baton-install-')));
  prefix = path.join(tmp, 'prefix');
  elsewhere = path.join(tmp, 'elsewhere');
  await execFileP('mkdir', ['-p', elsewhere]);
  const clone = path.join(tmp, 'clone');
  await timed('clone', () => execFileP('git', ['clone', '-q', '--no-hardlinks', repo, clone]));
  // Only what the build needs from outside the clone: the installed dev dependencies (tsc).
  symlinkSync(realpathSync(path.join(repo, 'node_modules')), path.join(clone, 'node_modules'));
  const env = npmEnv();
  await timed('pack', () => execFileP('npm', ['pack', '--pack-destination', tmp], { cwd: clone, env, maxBuffer: 64 * 1024 * 1024 }));
  registry = await timed('registry', () => startLocalRegistry(repo));
  const tarball = path.join(tmp, `baton-${version}.tgz`);
  await timed('install', () =>
    execFileP(
      'npm',
      ['install', '-g', '--prefix', prefix, '--registry', registry!.url, '--no-audit', '--no-fund', '--ignore-scripts', tarball],
      { cwd: elsewhere, env, maxBuffer: 64 * 1024 * 1024 },
    ),
  );
}, 240_000);

afterAll(async () => {
  await registry?.close();
  console.log(`[install] ${Object.entries(timings).map(([k, v]) => `${k} ${v} ms`).join(', ')}; ${registry?.packages ?? 0} dependencies served`);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('npm pack of a fresh clone, npm install -g of the tarball', () => {
  it('the tarball holds the built program, the precompiled schemas, the shipped playbooks and roles, and the man page', async () => {
    const { stdout } = await execFileP('tar', ['-tzf', path.join(tmp, `baton-${version}.tgz`)]);
    const files = stdout.split('\n');
    for (const f of ['package/dist/cli/main.js', 'package/dist/schemas/index.js', 'package/dist/man/baton.1', 'package/playbooks/nfs-switchover.yml', 'package/roles/vip/takeover.yml', 'package/schemas/playbook.json']) {
      expect(files, f).toContain(f);
    }
    // What only the developers need stays out.
    expect(files.filter((f) => f.startsWith('package/test/') || f.startsWith('package/src/') || f.startsWith('package/node_modules/'))).toEqual([]);
  });

  it('`baton` runs from another directory: --version from package.json, validate and plan of a shipped playbook by name', async () => {
    expect(readdirSync(elsewhere)).toEqual([]);
    const v = await installed(['--version']);
    expect(v).toMatchObject({ code: 0, stdout: `${version}\n` });

    const inventory = path.join(prefix, 'lib', 'node_modules', 'baton', 'inventory', 'lab.example.yml');
    expect(existsSync(inventory), inventory).toBe(true);
    const ok = await installed(['validate', 'nfs-switchover', '-i', inventory, '-e', 'from=n1', '-e', 'to=n2']);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^1 playbook\(s\), \d+ step\(s\): valid$/m);
    // A name that is neither a file here nor shipped is an error, not some other playbook.
    const none = await installed(['validate', 'nfs-switchoverr', '-i', inventory]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('nfs-switchoverr');

    const plan = await installed(['plan', 'nfs-switchover.yml', '-i', inventory, '-e', 'from=n1', '-e', 'to=n2']);
    expect(plan.code, plan.stderr).toBe(0);
    // The roles the playbook uses were found in the installed package: their steps are in the plan.
    expect(plan.stdout).toMatch(/raise_vip|ip addr add/);
    expect(plan.stdout).toContain(path.join(prefix, 'lib', 'node_modules', 'baton', 'playbooks', 'nfs-switchover.yml'));

    // A bad playbook is still reported with file:line:col through the precompiled schemas.
    writeFileSync(path.join(elsewhere, 'bad.yml'), '- name: x\n  hosts: localhost\n  steps:\n    - comand: [true]\n');
    const bad = await installed(['validate', 'bad.yml']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('bad.yml:4:7: unknown step kind "comand"');
  });

  it('the man page is installed where man finds it', async () => {
    const page = path.join(prefix, 'share', 'man', 'man1', 'baton.1');
    expect(existsSync(page), page).toBe(true);
    const text = readFileSync(page, 'utf8');
    expect(text).toMatch(/^\.TH BATON 1 /);
    expect(text).toContain(`baton ${version}`);
  });
});
