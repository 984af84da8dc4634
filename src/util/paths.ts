import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The package root (where schemas/, playbooks/, roles/ live), whether running from dist/ or src/. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const schemasDir = path.join(packageRoot, 'schemas');
export const rolesDir = path.join(packageRoot, 'roles');

/** Where scripts/bundle.mjs puts the bundled command. */
const bundleDir = path.join(packageRoot, 'dist', 'bundle');

/**
 * A script baton starts as a process of its own (a probe agent, the keeper), `dist/<fromDist>`:
 * the caller's neighbour of that name when the caller runs from dist/ as tsc wrote it (or from a copy of dist/, as the lab's
 * SAN runs one), else the one in the package's dist/: the caller was bundled into dist/bundle/
 * (scripts/bundle.mjs), whose neighbours are chunks, or runs from src/ under the tests.
 */
export function scriptPath(metaUrl: string, fromDist: string): string {
  const dir = path.dirname(fileURLToPath(metaUrl));
  const here = path.join(dir, path.basename(fromDist));
  return dir !== bundleDir && existsSync(here) ? here : path.join(packageRoot, 'dist', fromDist);
}
