import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The package root (where schemas/, playbooks/, roles/ live), whether running from dist/ or src/. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const schemasDir = path.join(packageRoot, 'schemas');
export const rolesDir = path.join(packageRoot, 'roles');
