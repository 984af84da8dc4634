import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheFileFor, commandOf, loadBundle, saveCache } from '../../src/cli/code-cache.js';

// The bundled command starts from V8's code cache (src/cli/code-cache.ts): the cache must be
// taken when it belongs to the bundle, ignored when it does not (never run stale code), and only
// a command that succeeded writes one.
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'baton-code-cache-'));
  dirs.push(d);
  return d;
}

const BUNDLE = `
const path = require('node:path');
function join(a, b) { return path.posix.join(a, b); }
module.exports = { joined: join('a', 'b'), file: path.basename(__filename), same: module.exports === exports };
`;

describe('code cache of the bundled command', () => {
  it('compiles without a cache, then runs from the one it saved, with the same result', () => {
    const dir = tmp();
    const bundle = path.join(dir, 'b.cjs');
    writeFileSync(bundle, BUNDLE);
    const cache = cacheFileFor(bundle, 'id1', 'run');
    const first = loadBundle(bundle, cache);
    expect(first.cached).toBe(false);
    expect(first.run()).toEqual({ joined: 'a/b', file: 'b.cjs', same: true });
    saveCache(first.script, cache);
    expect(existsSync(cache)).toBe(true);
    expect(readdirSync(path.dirname(cache))).toEqual([path.basename(cache)]); // no temporary left
    const second = loadBundle(bundle, cache);
    expect(second.cached).toBe(true);
    expect(second.run()).toEqual({ joined: 'a/b', file: 'b.cjs', same: true });
  });

  it('a torn or foreign cache is refused and the bundle still runs', () => {
    const dir = tmp();
    const bundle = path.join(dir, 'b.cjs');
    writeFileSync(bundle, BUNDLE);
    const cache = path.join(dir, 'junk.v8');
    writeFileSync(cache, Buffer.alloc(4096, 7));
    const loaded = loadBundle(bundle, cache);
    expect(loaded.cached).toBe(false);
    expect(loaded.run()).toMatchObject({ joined: 'a/b' });
  });

  it('each build and each subcommand has its own cache file', () => {
    expect(cacheFileFor('/x/bundle/baton.cjs', 'aaaa', 'run')).not.toBe(cacheFileFor('/x/bundle/baton.cjs', 'bbbb', 'run'));
    expect(cacheFileFor('/x/bundle/baton.cjs', 'aaaa', 'run')).not.toBe(cacheFileFor('/x/bundle/baton.cjs', 'aaaa', 'validate'));
    expect(commandOf(['node', 'baton', 'run', '-i', 'x'])).toBe('run');
    expect(commandOf(['node', 'baton', '--version'])).toBe('baton');
    expect(commandOf(['node', 'baton', '../../etc/passwd'])).toBe('baton');
    expect(commandOf(['node', 'baton'])).toBe('baton');
  });

  it('`baton validate`: a failing command writes no cache; a succeeding one writes one, which the next start takes', () => {
    const cli = path.resolve('dist/cli/main.js');
    if (!existsSync(cli)) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
    if (!existsSync(path.resolve('dist/bundle/baton.cjs'))) return; // built without esbuild: no bundle, no cache
    // The command reads its bundle as latin1 (src/cli/code-cache.ts): it must be ASCII only.
    expect(readFileSync(path.resolve('dist/bundle/baton.cjs')).some((b) => b > 0x7f)).toBe(false);
    const dir = tmp();
    const env = { ...process.env, BATON_CODE_CACHE_DIR: dir, BATON_STATE_DIR: path.join(dir, 'state'), CI: 'true' };
    const validate = (...extra: string[]) =>
      spawnSync(process.execPath, [cli, 'validate', '-i', 'inventory/lab.example.yml', 'playbooks/nfs-switchover.yml', ...extra], { env, encoding: 'utf8' });
    const bad = validate(); // `from` and `to` not given: bad input, exit 2
    expect(bad.status).toBe(2);
    // The bundle carries the precompiled validators itself: the same verdicts as tsc's entry.
    const wrong = path.join(dir, 'wrong.yml');
    writeFileSync(wrong, '- hosts: n1\n  steps:\n    - raise_vip: { address: 198.18.0.9, prefix: "x", colour: red }\n    - mount: { path: 5 }\n');
    const args = ['validate', '-i', 'inventory/lab.example.yml', wrong];
    const byTsc = spawnSync(process.execPath, [path.resolve('dist/cli/main.unbundled.js'), ...args], { env, encoding: 'utf8' });
    const byBundle = spawnSync(process.execPath, [cli, ...args], { env, encoding: 'utf8' });
    expect(byBundle.status).toBe(2);
    expect(byBundle.stderr).toMatch(/prefix/);
    expect(byBundle.stderr).toBe(byTsc.stderr);
    expect(readdirSync(dir).filter((f) => f.endsWith('.v8'))).toEqual([]);
    const good = validate('-e', 'from=n1', '-e', 'to=n2');
    expect(good.status, good.stderr).toBe(0);
    const caches = readdirSync(dir).filter((f) => f.endsWith('.v8'));
    expect(caches).toHaveLength(1);
    expect(caches[0]).toMatch(/^validate-[0-9a-f]{16}\.v8$/);
    const written = statSync(path.join(dir, caches[0])).mtimeMs;
    const again = validate('-e', 'from=n1', '-e', 'to=n2');
    expect(again.status).toBe(0);
    expect(again.stdout).toBe(good.stdout);
    // Taken, so not written again.
    expect(statSync(path.join(dir, caches[0])).mtimeMs).toBe(written);
  });
});
