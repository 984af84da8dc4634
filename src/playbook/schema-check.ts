import { createRequire } from 'node:module';
import path from 'node:path';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import type { Problem } from '../util/errors.js';
import { packageRoot } from '../util/paths.js';
import { typeName } from './expr.js';
import type { ParsedYaml } from './yaml-source.js';

/**
 * ajv, turned into problems a person can act on: each located at the offending key or
 * value, naming it, and saying what was expected (unknown keys list the allowed ones).
 *
 * `baton validate` has to start fast, and importing ajv and compiling the schemas used to
 * be most of its time. So `npm run build` compiles every shipped schema ahead of time
 * (scripts/compile-schemas.mjs, into dist/schemas/), and ajv itself is loaded
 * only for a schema that has no precompiled validator: a schema edited since the build, a
 * test registry's inline schema, or no build at all (tests run from src/).
 */
const require = createRequire(import.meta.url);

/** The options both paths compile with: the precompiled code must report errors exactly as ajv would here. */
export const AJV_OPTIONS = { allErrors: true, strict: false, verbose: true } as const;

/**
 * A precompiled validator is found by the schema's exact JSON text (and that of the schemas
 * it `$ref`s), never by name: whatever schema a caller holds, it gets code compiled from that
 * very schema, or none.
 */
export function schemaKey(schema: object, deps: object[] = []): string {
  return JSON.stringify(deps.length ? [schema, ...deps] : schema);
}

const precompiledDir = path.join(packageRoot, 'dist', 'schemas');
/** Schema key -> module file, from the build's index; empty when there is no build. */
let precompiledIndex: Map<string, string> | undefined;

/**
 * The precompiled validators inside the bundled command (scripts/bundle.mjs puts them there, so
 * they start from its code cache instead of being read and compiled at every start).
 */
interface BundledValidators {
  validators: Array<[string, string]>;
  load(file: string): { validate: ValidateFunction } | undefined;
}
const bundled = (globalThis as { __batonValidators?: BundledValidators }).__batonValidators;

export function precompiledValidator(schema: object, deps: object[] = []): ValidateFunction | undefined {
  if (!precompiledIndex) {
    precompiledIndex = new Map();
    try {
      // Synchronous on purpose (require of an ES module, Node >= 20.19): loading a playbook is synchronous.
      const index = bundled ?? (require(path.join(precompiledDir, 'index.js')) as { validators: Array<[string, string]> });
      precompiledIndex = new Map(index.validators);
    } catch {
      // Not built: ajv compiles at first use instead, slower but the same checks.
    }
  }
  const file = precompiledIndex.get(schemaKey(schema, deps));
  if (!file) return undefined;
  try {
    return (bundled?.load(file) ?? (require(path.join(precompiledDir, file)) as { validate: ValidateFunction })).validate;
  } catch {
    // A build half-replaced under us: compiling is still correct.
    return undefined;
  }
}

/** ajv's constructor, required on first need only. */
export function loadAjv(): typeof Ajv {
  return (require('ajv') as typeof import('ajv')).Ajv;
}

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

function instance(): Ajv {
  // optimize:false halves compile time; these validators run once per load, not in a hot loop.
  ajv ??= new (loadAjv())({ ...AJV_OPTIONS, code: { optimize: false } });
  return ajv;
}

/** Compile `schema` once under `cacheKey`; other schemas it `$ref`s by `$id` must be passed as `deps`. */
export function compileSchema(cacheKey: string, schema: object, deps: object[] = []): ValidateFunction {
  let v = compiled.get(cacheKey) ?? precompiledValidator(schema, deps);
  if (!v) {
    const a = instance();
    for (const d of deps) {
      const id = (d as { $id?: string }).$id;
      if (id && !a.getSchema(id)) a.addSchema(d);
    }
    const id = (schema as { $id?: string }).$id;
    v = id && a.getSchema(id) ? a.getSchema(id)! : a.compile(schema);
  }
  compiled.set(cacheKey, v);
  return v;
}

export interface CheckOptions {
  doc: ParsedYaml;
  /** Where `data` sits inside doc (for step arguments: `[0, 'steps', 3, 'command']`). */
  basePath: Array<string | number>;
  /** How to name `data` itself in messages: `the playbook`, `"command" arguments`. */
  rootLabel: string;
  /** A `{{ template }}` string may stand for any value: schema complaints about one are dropped. */
  allowTemplates?: boolean;
}

/** YAML 1.1 booleans, which Ansible playbooks use (`become: yes`); YAML 1.2 reads them as strings. */
const YAML11_BOOLEAN = /^(?:(yes|on|true)|(no|off|false))$/i;

/**
 * Where the schema wants true or false and finds `yes`, `no`, `on` or `off` (any case), the
 * value becomes the boolean, in `data` itself, as Ansible reads it. Only there: a string
 * field keeps the text `yes`. Returns whether anything changed.
 */
function coerceYaml11Booleans(errors: ErrorObject[], data: unknown): boolean {
  let changed = false;
  for (const e of errors) {
    if (e.keyword !== 'type') continue;
    const types = Array.isArray(e.schema) ? (e.schema as unknown[]) : [e.schema];
    if (!types.includes('boolean')) continue;
    const path = pointerToPath(e.instancePath);
    const key = path[path.length - 1];
    if (key === undefined) continue;
    const parent = valueAt(data, path.slice(0, -1));
    const value = valueAt(data, path);
    const m = typeof value === 'string' ? YAML11_BOOLEAN.exec(value) : null;
    if (!m || parent === null || typeof parent !== 'object') continue;
    (parent as Record<string | number, unknown>)[key] = m[1] !== undefined;
    changed = true;
  }
  return changed;
}

export function checkAgainst(validate: ValidateFunction, data: unknown, opts: CheckOptions): Problem[] {
  if (validate(data)) return [];
  // Each round settles the booleans ajv reported; a value inside a branch it had not reached
  // shows up in the next round. A handful of rounds covers any real nesting.
  for (let round = 0; round < 4 && coerceYaml11Booleans(validate.errors ?? [], data); round++) {
    if (validate(data)) return [];
  }
  let errors = validate.errors ?? [];
  if (opts.allowTemplates) {
    errors = errors.filter((e) => {
      const v = valueAt(data, pointerToPath(e.instancePath));
      return !(typeof v === 'string' && v.includes('{{'));
    });
  }
  return toProblems(errors, data, opts);
}

function toProblems(errors: ErrorObject[], data: unknown, opts: CheckOptions): Problem[] {
  const drop = new Set<ErrorObject>();
  const extra: Problem[] = [];
  for (const e of errors) {
    // A bad variable name under propertyNames: report it once, at the name.
    if (e.keyword === 'propertyNames') drop.add(e);
    const badName = (e as ErrorObject & { propertyName?: string }).propertyName;
    if (badName !== undefined && e.keyword !== 'propertyNames') {
      drop.add(e);
      extra.push({
        loc: opts.doc.keyAt([...opts.basePath, ...pointerToPath(e.instancePath), badName]),
        message: `"${badName}" is not a valid variable name (letters, digits and _, not starting with a digit)`,
      });
      continue;
    }
    if (e.keyword !== 'oneOf' && e.keyword !== 'anyOf') continue;
    drop.add(e);
    const branches = ((e.parentSchema as Record<string, unknown[]> | undefined)?.[e.keyword] ?? []).length;
    const typeMisses = errors.filter((x) => x.keyword === 'type' && x.instancePath === e.instancePath);
    if (branches > 0 && typeMisses.length >= branches) {
      // No alternative takes a value of this type: say which types would do.
      typeMisses.forEach((x) => drop.add(x));
      const wanted = [...new Set(typeMisses.flatMap((x) => typeWords(x.schema)))];
      const expected = (e.parentSchema as { 'x-expected'?: string } | undefined)?.['x-expected'];
      if (expected) wanted.splice(0, wanted.length, expected);
      const path = pointerToPath(e.instancePath);
      const value = valueAt(data, path);
      extra.push({
        loc: opts.doc.at([...opts.basePath, ...path]),
        message: `${label(path, opts.rootLabel)} must be ${wanted.join(' or ')}, got ${describeValue(value)}`,
      });
    } else {
      // One alternative fits the type: its own complaints are the useful ones.
      typeMisses.forEach((x) => drop.add(x));
    }
  }
  const out: Problem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (drop.has(e)) continue;
    const p = one(e, data, opts);
    const key = `${p.loc.line}:${p.loc.col}:${p.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(p);
    }
  }
  return [...extra, ...out];
}

function one(e: ErrorObject, data: unknown, opts: CheckOptions): Problem {
  const path = pointerToPath(e.instancePath);
  const full = [...opts.basePath, ...path];
  const value = valueAt(data, path);
  const what = label(path, opts.rootLabel);
  const title = (e.parentSchema as { title?: string } | undefined)?.title;
  const inWhat = title ? ` in ${title}` : path.length ? ` in ${what}` : '';
  // A schema may say in words what it wants (`x-expected`), better than "must match pattern".
  const expected = (e.parentSchema as { 'x-expected'?: string } | undefined)?.['x-expected'];
  if (expected && ['type', 'pattern', 'minimum', 'maximum', 'enum'].includes(e.keyword)) {
    return { loc: opts.doc.at(full), message: `${what} must be ${expected}, got ${describeValue(value)}` };
  }
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return {
        loc: opts.doc.keyAt([...full, key]),
        message: `unknown key "${key}"${inWhat} (allowed: ${allowed.join(', ')})`,
      };
    }
    case 'required': {
      const key = (e.params as { missingProperty: string }).missingProperty;
      return { loc: opts.doc.at(full), message: `missing required key "${key}"${inWhat}` };
    }
    case 'type':
      return { loc: opts.doc.at(full), message: `${what} must be ${typeWords(e.schema).join(' or ')}, got ${describeValue(value)}` };
    case 'enum': {
      const allowed = (e.schema as unknown[]).map((x) => JSON.stringify(x)).join(', ');
      return { loc: opts.doc.at(full), message: `${what} must be one of ${allowed}, got ${describeValue(value)}` };
    }
    case 'const':
      return { loc: opts.doc.at(full), message: `${what} must be ${JSON.stringify(e.schema)}, got ${describeValue(value)}` };
    case 'propertyNames':
      return { loc: opts.doc.at(full), message: `${what} has a key that ${e.message ?? 'is not allowed'}` };
    default:
      return { loc: opts.doc.at(full), message: `${what} ${e.message ?? 'is invalid'}${valueSuffix(value)}` };
  }
}

function valueSuffix(value: unknown): string {
  return value === undefined || (typeof value === 'object' && value !== null) ? '' : `, got ${describeValue(value)}`;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  null: 'empty',
};

function typeWords(schemaType: unknown): string[] {
  const types = Array.isArray(schemaType) ? schemaType : [schemaType];
  return types.map((t) => TYPE_WORDS[String(t)] ?? String(t));
}

export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'an empty value';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeName(v)} (${String(v)})`;
  return typeName(v);
}

/** `"retries"`, `item 2 of "argv"`, or the root's label. */
export function label(path: Array<string | number>, rootLabel: string): string {
  const last = path[path.length - 1];
  if (last === undefined) return rootLabel;
  if (typeof last === 'number') {
    const parent = path[path.length - 2];
    return `item ${last + 1} of ${parent === undefined ? rootLabel : `"${String(parent)}"`}`;
  }
  return `"${last}"`;
}

function pointerToPath(pointer: string): Array<string | number> {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function valueAt(data: unknown, path: Array<string | number>): unknown {
  let cur = data;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg as string];
  }
  return cur;
}
