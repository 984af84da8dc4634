import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../util/paths.js';

/**
 * The version in package.json, the one `npm pack` and `npm install` know the package by:
 * `baton --version` then tells which release is installed on a controller.
 */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown (package.json not found next to the program)';
  }
}
