import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { ValidationError, type Problem, type SourceLocation } from '../util/errors.js';
import { readSource } from './read-source.js';
import { rolesDir } from '../util/paths.js';
import { didYouMean } from './suggest.js';
import { parseYaml, YamlSyntaxError, type ParsedYaml } from './yaml-source.js';

/** A role as found on disk: its default vars and its step list, each with where it was written. */
export interface LoadedRole {
  name: string;
  dir: string;
  defaults: Record<string, unknown>;
  defaultsDoc?: ParsedYaml;
  steps: unknown[];
  stepsDoc?: ParsedYaml;
}

const DEFAULTS_FILES = ['defaults.yml', 'defaults.yaml', 'defaults/main.yml', 'defaults/main.yaml'];
const STEPS_FILES = ['steps.yml', 'steps.yaml', 'tasks/main.yml', 'tasks/main.yaml'];

/** Where roles are looked for, first hit wins: the explicit path(s), roles/ next to the playbook, the package's roles/. */
export function roleSearchPath(playbookFile: string, rolesPath?: string | string[]): string[] {
  const explicit = rolesPath === undefined ? [] : Array.isArray(rolesPath) ? rolesPath : rolesPath.split(path.delimiter);
  const dirs = [...explicit, path.join(path.dirname(playbookFile), 'roles'), rolesDir];
  return [...new Set(dirs.filter(Boolean))];
}

export class RoleLoader {
  private readonly cache = new Map<string, LoadedRole | undefined>();

  constructor(private readonly searchPath: string[]) {}

  /**
   * The role, or undefined after pushing a problem at `where` (not found, unreadable, wrong shape).
   * `stepsFrom` picks another step file of the role (Ansible's tasks_from): `release` reads
   * `release.yml` or `tasks/release.yml`.
   */
  load(name: string, where: SourceLocation, problems: Problem[], stepsFrom?: string): LoadedRole | undefined {
    const key = stepsFrom ? `${name}:${stepsFrom}` : name;
    if (this.cache.has(key)) return this.cache.get(key);
    const role = this.find(name, where, problems, stepsFrom);
    this.cache.set(key, role);
    return role;
  }

  private find(name: string, where: SourceLocation, problems: Problem[], stepsFrom?: string): LoadedRole | undefined {
    const dir = this.searchPath.map((d) => path.join(d, name)).find((d) => existsSync(d));
    if (!dir) {
      const known = this.searchPath.flatMap((d) => (existsSync(d) ? readdirSync(d) : []));
      problems.push({
        loc: where,
        message: `role "${name}" not found (looked in: ${this.searchPath.map(show).join(', ')})${didYouMean(name, known)}`,
      });
      return undefined;
    }
    const role: LoadedRole = { name, dir, defaults: {}, steps: [] };
    const defaultsFile = DEFAULTS_FILES.map((f) => path.join(dir, f)).find((f) => existsSync(f));
    if (defaultsFile) {
      const doc = parse(defaultsFile, problems);
      if (doc) {
        role.defaultsDoc = doc;
        if (doc.value === null || doc.value === undefined) role.defaults = {};
        else if (typeof doc.value === 'object' && !Array.isArray(doc.value)) role.defaults = doc.value as Record<string, unknown>;
        else problems.push({ loc: doc.at([]), message: `role defaults must be a mapping of variable names to values` });
      }
    }
    const candidates = stepsFrom ? [`${stepsFrom}.yml`, `${stepsFrom}.yaml`, `tasks/${stepsFrom}.yml`, `tasks/${stepsFrom}.yaml`] : STEPS_FILES;
    const stepsFile = candidates.map((f) => path.join(dir, f)).find((f) => existsSync(f));
    if (!stepsFile) {
      const wanted = stepsFrom ? `${stepsFrom}.yml (steps_from: ${stepsFrom})` : 'steps.yml (nor tasks/main.yml)';
      const others = readdirSync(dir).filter((f) => f.endsWith('.yml') && !f.startsWith('defaults')).map((f) => f.slice(0, -4));
      problems.push({ loc: where, message: `role "${name}" at ${show(dir)} has no ${wanted}${others.length ? `; it has: ${others.join(', ')}` : ''}` });
      return role;
    }
    const doc = parse(stepsFile, problems);
    if (doc) {
      role.stepsDoc = doc;
      if (Array.isArray(doc.value)) role.steps = doc.value;
      else if (doc.value !== null && doc.value !== undefined) {
        problems.push({ loc: doc.at([]), message: `a role's steps file must be a list of steps` });
      }
    }
    return role;
  }
}

function parse(file: string, problems: Problem[]): ParsedYaml | undefined {
  try {
    return parseYaml(readSource(file, 'role file'), file);
  } catch (err) {
    if (err instanceof YamlSyntaxError) {
      problems.push(err.problem);
      return undefined;
    }
    if (err instanceof ValidationError) {
      problems.push(...err.problems);
      return undefined;
    }
    throw err;
  }
}

function show(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') ? rel : p;
}
