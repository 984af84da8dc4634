// Bundle the `baton` command for a faster start. Node loads each ES module on its own (resolve,
// read, compile, link): a `baton run` loaded about 200 of baton's modules before its first
// connection. esbuild (installed with vitest's vite) joins them into a few files under
// dist/bundle/, split at the command's lazy imports so `baton validate` still loads no ssh2, and
// dist/cli/main.js becomes a two-line entry that imports the bundle. The packages (ssh2, ajv,
// commander...) stay external, loaded from node_modules as before. The rest of dist/ stays as tsc
// wrote it: the probe agents, the keeper and the lab's SAN agent run from there as processes of
// their own (src/util/paths.ts scriptPath).
//
// Without esbuild (an install without dev dependencies), dist/cli/main.js stays tsc's: the same
// command, slower to start. Run by `npm run build`, after tsc and compile-schemas.
import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entry = path.join(root, 'dist/cli/main.js');
const outdir = path.join(root, 'dist/bundle');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.error('bundle: esbuild is not installed; dist/cli/main.js is left unbundled (slower start, same behaviour)');
  process.exit(0);
}

rmSync(outdir, { recursive: true, force: true });
// tsc's entry is kept beside the bundle's, for reading; the bundle is built from it.
const unbundled = path.join(root, 'dist/cli/main.unbundled.js');
renameSync(entry, unbundled);
try {
  await esbuild.build({
    entryPoints: { main: unbundled },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    // Every chunk sits in dist/bundle/, one level below dist/ as tsc's modules do, so a module's
    // paths from import.meta.url to the package root (src/util/paths.ts) hold there too.
    chunkNames: 'chunk-[hash]',
    logLevel: 'warning',
    legalComments: 'none',
  });
} catch (e) {
  renameSync(unbundled, entry);
  throw e;
}
const shebang = readFileSync(unbundled, 'utf8').startsWith('#!') ? '#!/usr/bin/env node\n' : '';
writeFileSync(entry, `${shebang}// The bundled command (scripts/bundle.mjs); tsc's entry is main.unbundled.js.\nimport '../bundle/main.js';\n`);
chmodSync(entry, 0o755);
