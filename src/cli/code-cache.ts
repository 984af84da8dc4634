import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

/**
 * Starting the bundled command (scripts/bundle.mjs) from V8's code cache.
 *
 * Before its first connection a `baton run` spent about a third of its start-up parsing and
 * compiling JavaScript: its own ~200 modules and ssh2's. V8 can hand back the bytecode of a
 * script it compiled before (`vm.Script` with `cachedData`), including every function that ran,
 * so the next start compiles almost nothing. Python keeps its `__pycache__` the same way: beside
 * the code, written by the first run that may write there, silently skipped where it may not.
 *
 * One cache per subcommand (`run` and `validate` run different code), named after the bundle's
 * build id: V8 itself only checks the source's length and its own version and flags, so a cache
 * must never outlive the bundle it was made from (a rebuild also empties dist/bundle/). A cache is
 * written when there was none (or V8 refused it) and the command exits 0, so a cache holds the
 * code of a command that did its job, not of one that stopped at its first error. Written to a
 * temporary name and renamed: two commands finishing at once leave one whole cache, never a torn one.
 * `BATON_CODE_CACHE=off` runs without it; `BATON_CODE_CACHE_DIR=DIR` keeps the caches in DIR
 * (an install baton may not write to).
 */

/** Where caches live: beside the bundle, or `BATON_CODE_CACHE_DIR`. */
function cacheDir(bundleFile: string): string {
  return process.env.BATON_CODE_CACHE_DIR || path.join(path.dirname(bundleFile), 'cache');
}

/** The cache file of one subcommand of one build of the bundle. */
export function cacheFileFor(bundleFile: string, buildId: string, command: string): string {
  return path.join(cacheDir(bundleFile), `${command}-${buildId}.v8`);
}

/** The subcommand a command line runs (`run`, `lab`...), as a safe file-name part. */
export function commandOf(argv: readonly string[]): string {
  const word = argv[2] ?? '';
  return /^[a-z][a-z0-9-]{0,31}$/.test(word) ? word : 'baton';
}

export interface LoadedBundle {
  script: Script;
  /** Whether V8 took the cached bytecode (else it compiled the source). */
  cached: boolean;
  /** Runs the bundle's top level, as Node runs a required module; returns its exports. */
  run(): unknown;
}

/** Compiles a CommonJS bundle, from `cacheFile` when there is one V8 accepts. */
export function loadBundle(bundleFile: string, cacheFile: string | undefined): LoadedBundle {
  // scripts/bundle.mjs writes ASCII only: latin1 reads it as UTF-8 would, without decoding.
  const source = readFileSync(bundleFile, 'latin1');
  let cachedData: Buffer | undefined;
  try {
    if (cacheFile) cachedData = readFileSync(cacheFile);
  } catch {
    // No cache yet.
  }
  // Node's own module wrapper, so the bundle sees exactly what a required module sees.
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const script = new Script(wrapped, { filename: bundleFile, cachedData });
  return {
    script,
    cached: cachedData !== undefined && !script.cachedDataRejected,
    run() {
      const module = { exports: {} };
      const fn = script.runInThisContext() as (e: object, r: NodeJS.Require, m: object, f: string, d: string) => void;
      fn(module.exports, createRequire(bundleFile), module, bundleFile, path.dirname(bundleFile));
      return module.exports;
    },
  };
}

/** Writes the bytecode V8 holds for the script now (every function that has run so far). */
export function saveCache(script: Script, file: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(tmp, script.createCachedData());
    renameSync(tmp, file);
  } catch {
    // A read-only install or a full disk: the next start compiles, as it would without a cache.
    rmSync(tmp, { force: true });
  }
}

/**
 * Runs the bundled command with V8's code cache for its subcommand; saves one at a successful
 * exit when there was none. Returns once the bundle's top level has run (the command goes on in
 * the event loop).
 */
export function runBundle(bundle: string | URL, buildId: string, command = commandOf(process.argv)): void {
  const bundleFile = typeof bundle === 'string' ? bundle : fileURLToPath(bundle);
  const cacheFile = process.env.BATON_CODE_CACHE === 'off' ? undefined : cacheFileFor(bundleFile, buildId, command);
  const loaded = loadBundle(bundleFile, cacheFile);
  if (cacheFile && !loaded.cached) {
    process.once('exit', (code) => {
      if (code === 0) saveCache(loaded.script, cacheFile);
    });
  }
  loaded.run();
}
