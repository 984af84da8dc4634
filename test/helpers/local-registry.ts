/**
 * A throwaway npm registry on loopback that serves exactly the runtime dependencies already in
 * this checkout's node_modules, so a test can `npm install -g` a packed tarball the way a user
 * does (resolving semver ranges, checking integrity) without reaching any outside address.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

interface PackageJson {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  [k: string]: unknown;
}

interface Served {
  manifest: PackageJson;
  tarball: Buffer;
  integrity: string;
}

/** Node's lookup: NAME in node_modules of `from` or any directory above it. */
function findPackage(name: string, from: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return realpathSync(candidate);
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** The package's files as npm would ship them, under package/ (its own node_modules left out). */
function tarballOf(dir: string): Buffer {
  return execFileSync('tar', ['-czf', '-', '--exclude=./node_modules', '--transform', 's,^\\.,package,', '-C', dir, '.'], { maxBuffer: 256 * 1024 * 1024 });
}

/** Every runtime dependency of the package at `root`, transitively, as found on disk. */
export function runtimeClosure(root: string): Map<string, Served> {
  const served = new Map<string, Served>();
  const seen = new Set<string>();
  const visit = (dir: string, manifest: PackageJson) => {
    const deps = { ...manifest.dependencies, ...manifest.optionalDependencies };
    for (const name of Object.keys(deps)) {
      const found = findPackage(name, dir);
      if (!found) continue; // an optional dependency not installed here (another platform's)
      if (seen.has(found)) continue;
      seen.add(found);
      const pkg = JSON.parse(readFileSync(path.join(found, 'package.json'), 'utf8')) as PackageJson;
      const tarball = tarballOf(found);
      served.set(`${pkg.name}@${pkg.version}`, { manifest: pkg, tarball, integrity: `sha512-${createHash('sha512').update(tarball).digest('base64')}` });
      visit(found, pkg);
    }
  };
  visit(root, JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as PackageJson);
  return served;
}

export interface LocalRegistry {
  url: string;
  packages: number;
  close(): Promise<void>;
}

export async function startLocalRegistry(root: string): Promise<LocalRegistry> {
  const served = runtimeClosure(root);
  const byName = new Map<string, Served[]>();
  for (const s of served.values()) byName.set(s.manifest.name, [...(byName.get(s.manifest.name) ?? []), s]);
  let base = '';
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const tgz = /^\/-\/(.+)\/(.+)\.tgz$/.exec(url);
    if (tgz) {
      const s = served.get(`${tgz[1]}@${tgz[2]}`);
      if (!s) return void res.writeHead(404).end();
      return void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(s.tarball);
    }
    const versions = byName.get(url.slice(1));
    if (!versions) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    const latest = versions[versions.length - 1]!.manifest.version;
    const doc = {
      name: url.slice(1),
      'dist-tags': { latest },
      versions: Object.fromEntries(
        versions.map((s) => [
          s.manifest.version,
          {
            ...s.manifest,
            dist: { tarball: `${base}/-/${encodeURIComponent(s.manifest.name)}/${s.manifest.version}.tgz`, integrity: s.integrity },
          },
        ]),
      ),
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    packages: served.size,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
