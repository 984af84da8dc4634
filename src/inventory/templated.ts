/**
 * Inventory vars that hold `{{ }}`, rendered as Ansible renders them when used — with baton's
 * template engine, which evaluates no code. A var that needs only other inventory vars and
 * the inventory's magic vars (inventory_hostname, inventory_hostname_short, group_names,
 * groups, hostvars, inventory_file, inventory_dir) is rendered here, once, and the result is data: it is never rendered
 * again, so a value that itself contains `{{` injects nothing.
 *
 * A var that needs something only a play knows (play vars, -e, facts, registered results), or
 * that baton's engine cannot parse, is left as written and listed in `deferred`, for the code
 * that knows the whole context. A var that refers to itself is an error at load.
 */
import path from 'node:path';
import { isTemplate, render, TemplateError, templateRefs } from '../playbook/template.js';
import type { Problem, SourceLocation } from '../util/errors.js';
import type { Group } from './model.js';

type Vars = Record<string, unknown>;

export const INVENTORY_MAGIC_VARS = ['inventory_hostname', 'inventory_hostname_short', 'group_names', 'groups', 'hostvars', 'inventory_dir', 'inventory_file'];

function hasTemplate(v: unknown): boolean {
  if (typeof v === 'string') return isTemplate(v);
  if (Array.isArray(v)) return v.some(hasTemplate);
  if (v && typeof v === 'object') return Object.values(v).some(hasTemplate);
  return false;
}

export function renderInventoryTemplates(
  merged: Map<string, { vars: Vars; locs: Record<string, SourceLocation> }>,
  hostGroups: Map<string, string[]>,
  groups: Map<string, Group>,
  problems: Problem[],
  /** The inventory file each host was first listed in: Ansible's inventory_file and inventory_dir. */
  sourceOf: Map<string, string> = new Map(),
): Map<string, { vars: Vars; deferred: Vars; templates: Vars }> {
  const groupsMagic: Record<string, string[]> = {};
  for (const g of groups.keys()) groupsMagic[g] = [];
  for (const [h, gs] of hostGroups) for (const g of gs) groupsMagic[g]?.push(h);

  const deferred = new Map<string, Set<string>>();
  for (const [host, { vars }] of merged) {
    const d = new Set<string>();
    const templated = Object.keys(vars).filter((k) => hasTemplate(vars[k]));
    const refsOf = new Map<string, string[]>();
    for (const k of templated) {
      try {
        refsOf.set(k, templateRefs(vars[k]));
      } catch (e) {
        if (!(e instanceof TemplateError)) throw e;
        // Jinja that baton's engine does not speak (e.g. `hostvars[groups['x'][0]]`): valid for
        // Ansible, so the inventory loads; the var is rendered only where it is used, or refused there.
        d.add(k);
      }
    }
    for (const [k, refs] of refsOf) if (refs.some((r) => !(r in vars) && !INVENTORY_MAGIC_VARS.includes(r))) d.add(k);
    // Needing a deferred var defers too: its value is not known before the play is.
    for (let changed = true; changed; ) {
      changed = false;
      for (const [k, refs] of refsOf) {
        if (!d.has(k) && refs.some((r) => d.has(r))) {
          d.add(k);
          changed = true;
        }
      }
    }
    deferred.set(host, d);
  }

  const resolved = new Map<string, Map<string, unknown>>();
  const resolving = new Set<string>();
  const views = new Map<string, Vars>();

  const get = (host: string, key: string): unknown => {
    const done = resolved.get(host)?.get(key);
    if (done !== undefined || resolved.get(host)?.has(key)) return done;
    const raw = merged.get(host)!.vars[key];
    if (!hasTemplate(raw) || deferred.get(host)!.has(key)) return raw;
    const id = `${host}\0${key}`;
    if (resolving.has(id)) throw new TemplateError(`variable "${key}" of host ${host} is defined in terms of itself`);
    resolving.add(id);
    try {
      const v = render(raw, context(host));
      if (!resolved.has(host)) resolved.set(host, new Map());
      resolved.get(host)!.set(key, v);
      return v;
    } finally {
      resolving.delete(id);
    }
  };

  /** A host's vars as templates see them: each read resolves that var (and only it). */
  const view = (host: string): Vars => {
    let v = views.get(host);
    if (v) return v;
    v = {};
    for (const k of Object.keys(merged.get(host)!.vars)) {
      Object.defineProperty(v, k, { enumerable: true, get: () => get(host, k) });
    }
    Object.defineProperty(v, 'inventory_hostname', { enumerable: true, value: host });
    views.set(host, v);
    return v;
  };

  const hostvars: Vars = {};
  for (const h of merged.keys()) Object.defineProperty(hostvars, h, { enumerable: true, get: () => view(h) });

  const context = (host: string): Vars => {
    const ctx: Vars = {};
    for (const k of Object.keys(merged.get(host)!.vars)) Object.defineProperty(ctx, k, { enumerable: true, get: () => get(host, k) });
    const magic = magicVars(host, hostGroups.get(host)!, groupsMagic, hostvars, sourceOf.get(host));
    for (const [k, v] of Object.entries(magic)) Object.defineProperty(ctx, k, { enumerable: true, value: v });
    return ctx;
  };

  const out = new Map<string, { vars: Vars; deferred: Vars; templates: Vars }>();
  for (const [host, { vars, locs }] of merged) {
    const final: Vars = {};
    const def: Vars = {};
    const templates: Vars = {};
    for (const k of Object.keys(vars)) {
      if (hasTemplate(vars[k])) templates[k] = vars[k];
      if (deferred.get(host)!.has(k)) {
        final[k] = vars[k];
        if (hasTemplate(vars[k])) def[k] = vars[k];
        continue;
      }
      try {
        final[k] = get(host, k);
      } catch (e) {
        if (!(e instanceof TemplateError)) throw e;
        problems.push({ loc: locs[k] ?? { file: '<inventory>', line: 1, col: 1 }, message: `inventory var "${k}" of host ${host}: ${e.message}` });
        final[k] = vars[k];
      }
    }
    out.set(host, { vars: final, deferred: def, templates });
  }
  return out;
}

/** Ansible's inventory_file and inventory_dir for a host first listed in `file` (absolute). */
/** The magic vars an inventory template sees for `host` (at load, and again with -e: inventory/connection.ts). */
export function magicVars(host: string, hostGroups: string[], groups: Record<string, string[]>, hostvars: Vars, file: string | undefined): Vars {
  return {
    inventory_hostname: host,
    inventory_hostname_short: host.split('.')[0],
    group_names: hostGroups.filter((g) => g !== 'all' && g !== 'ungrouped').sort(),
    groups,
    hostvars,
    ...inventoryFileVars(file),
  };
}

export function inventoryFileVars(file: string | undefined): Vars {
  if (!file || file.startsWith('<') || file === '-i') return { inventory_file: null, inventory_dir: null };
  const abs = path.resolve(file.replace(/ \(decrypted\)$/, ''));
  return { inventory_file: abs, inventory_dir: path.dirname(abs) };
}
