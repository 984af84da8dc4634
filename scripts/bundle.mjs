// Bundle the `baton` command for a faster start. Node loads each ES module on its own (resolve,
// read, compile, link), and a `baton run` loaded about 200 of baton's modules and ssh2's before
// its first connection. esbuild (installed with vitest's vite) joins the command and the packages
// it uses into one CommonJS file, dist/bundle/baton.cjs, and dist/cli/main.js becomes a short
// entry that runs it from V8's code cache (src/cli/code-cache.ts): the bytecode of an earlier
// run of the same subcommand, so a start compiles almost nothing. The lazy imports stay lazy:
// esbuild turns each into a function that runs its module on first call, so `baton validate`
// still runs no ssh2. Native addons (ssh2's sshcrypto, cpu-features) stay outside, required from
// node_modules by package path. The rest of dist/ stays as tsc wrote it: the probe agents, the
// keeper and the lab's SAN agent run from there as processes of their own
// (src/util/paths.ts scriptPath).
//
// Without esbuild (an install without dev dependencies), dist/cli/main.js stays tsc's: the same
// command, slower to start. Run by `npm run build`, after tsc and compile-schemas.
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entry = path.join(root, 'dist/cli/main.js');
const outdir = path.join(root, 'dist/bundle');
const outfile = path.join(outdir, 'baton.cjs');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.error('bundle: esbuild is not installed; dist/cli/main.js is left unbundled (slower start, same behaviour)');
  process.exit(0);
}

/** A native addon is required by its package path (`ssh2/lib/…/sshcrypto.node`), found from dist/bundle/ as from the package. */
const nativeAddons = {
  name: 'native-addons',
  setup(build) {
    build.onResolve({ filter: /\.node$/ }, (args) => {
      const file = path.resolve(args.resolveDir, args.path);
      const at = file.lastIndexOf(`${path.sep}node_modules${path.sep}`);
      if (at < 0) return { errors: [{ text: `native addon outside node_modules: ${args.path}` }] };
      return { path: file.slice(at + '/node_modules/'.length).split(path.sep).join('/'), external: true };
    });
  },
};

rmSync(outdir, { recursive: true, force: true });
// tsc's entry is kept beside the bundle's, for reading; the bundle is built from it.
const unbundled = path.join(root, 'dist/cli/main.unbundled.js');
renameSync(entry, unbundled);
try {
  await esbuild.build({
    entryPoints: [unbundled],
    outfile,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    plugins: [nativeAddons],
    // import() of Node's own modules becomes require(): the bundle runs as a vm.Script, which has no ES module loader.
    supported: { 'dynamic-import': false },
    // Every module's import.meta.url is the bundle's: it sits in dist/bundle/, one level below
    // dist/ as tsc's modules do, so paths from it to the package root (src/util/paths.ts) hold.
    define: { 'import.meta.url': '__batonBundleUrl' },
    banner: { js: 'var __batonBundleUrl = require("node:url").pathToFileURL(__filename).href;' },
    logLevel: 'warning',
    legalComments: 'none',
    charset: 'ascii',
  });
} catch (e) {
  renameSync(unbundled, entry);
  throw e;
}
// The bundle runs inside a function (Node's module wrapper), where a #! line cannot stand.
// esbuild writes code as ASCII (charset ascii, its default) but keeps comments as they are: their
// few other characters become \\uXXXX (text in a comment, the same character anywhere else), so
// the command reads its 2 MB as latin1, a copy, instead of decoding UTF-8 (7 ms less at each start).
const code = readFileSync(outfile, 'utf8')
  .replace(/^#!.*\n/, '')
  .replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
writeFileSync(outfile, code);
const buildId = createHash('sha256').update(code).digest('hex').slice(0, 16);
const shebang = readFileSync(unbundled, 'utf8').startsWith('#!') ? '#!/usr/bin/env node\n' : '';
writeFileSync(
  entry,
  `${shebang}// The bundled command (scripts/bundle.mjs), started from V8's code cache; tsc's entry is main.unbundled.js.\n` +
    `import { runBundle } from './code-cache.js';\n` +
    `runBundle(new URL('../bundle/baton.cjs', import.meta.url), '${buildId}');\n`,
);
chmodSync(entry, 0o755);
