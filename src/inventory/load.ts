import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ValidationError, type Problem, type SourceLocation } from '../util/errors.js';
import { schemasDir } from '../util/paths.js';
import { checkAgainst, compileSchema } from '../playbook/schema-check.js';
import { parseYaml, YamlSyntaxError, type ParsedYaml } from '../playbook/yaml-source.js';
import type { Group, Host, Inventory } from './model.js';

type Vars = Record<string, unknown>;

export const IMPLICIT_INVENTORY = '<implicit localhost>';

/**
 * Load an Ansible-shaped YAML inventory. Without a file: one `localhost` reached locally,
 * as Ansible's implicit localhost.
 *
 * Vars merge, lowest to highest (Ansible's order, docs "Understanding variable precedence"):
 *   1. group vars written in the inventory file: `all` first, then by group depth (parents
 *      before children), then by group name;
 *   2. group_vars/all file;
 *   3. group_vars/GROUP files, in the same depth-then-name order;
 *   4. host vars written in the inventory file (a host listed in several groups: later listings win);
 *   5. host_vars/HOST file.
 * Merging replaces whole values (no deep merge), as Ansible's default hash_behaviour=replace.
 */
export function loadInventory(file?: string): Inventory {
  if (!file) return implicitInventory();
  const problems: Problem[] = [];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ValidationError([{ loc: { file, line: 1, col: 1 }, message: `cannot read inventory: ${(err as Error).message}` }]);
  }
  const doc = parseOrThrow(text, file);
  const data = doc.value ?? {};
  const schema = inventorySchema();
  const validate = compileSchema('inventory', schema);
  problems.push(...checkAgainst(validate, data, { doc, basePath: [], rootLabel: 'the inventory' }));
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ValidationError(problems.length ? problems : [{ loc: doc.at([]), message: 'an inventory must be a mapping of groups (e.g. "all:")' }]);
  }
  if (problems.length) throw new ValidationError(problems);

  const b = new Builder(file, doc, problems);
  const top = data as Record<string, unknown>;
  b.group('all', (top.all ?? {}) as RawGroup, ['all'], undefined);
  for (const [name, raw] of Object.entries(top)) {
    if (name === 'all') continue;
    b.group(name, (raw ?? {}) as RawGroup, [name], 'all');
  }
  b.addVarFiles(path.dirname(file));
  if (problems.length) throw new ValidationError(problems);
  return b.finish();
}

function implicitInventory(): Inventory {
  const vars = { ansible_connection: 'local' };
  const host: Host = { name: 'localhost', vars, groups: ['all', 'ungrouped'] };
  return {
    file: IMPLICIT_INVENTORY,
    hosts: new Map([['localhost', host]]),
    groups: new Map<string, Group>([
      ['all', { name: 'all', hosts: [], children: ['ungrouped'], vars: {} }],
      ['ungrouped', { name: 'ungrouped', hosts: ['localhost'], children: [], vars: {} }],
    ]),
  };
}

interface RawGroup {
  hosts?: Record<string, Vars | null> | null;
  children?: Record<string, RawGroup | null> | null;
  vars?: Vars | null;
}

class Builder {
  private readonly groups = new Map<string, Group>();
  /** Host vars from each listing in the file, in order. */
  private readonly hostListings = new Map<string, { vars: Vars; loc: SourceLocation }[]>();
  private readonly groupFileVars = new Map<string, Vars>();
  private readonly hostFileVars = new Map<string, Vars>();

  constructor(
    private readonly file: string,
    private readonly doc: ParsedYaml,
    private readonly problems: Problem[],
  ) {}

  group(name: string, raw: RawGroup, docPath: Array<string | number>, parent: string | undefined): void {
    let g = this.groups.get(name);
    if (!g) {
      g = { name, hosts: [], children: [], vars: {}, loc: this.doc.keyAt(docPath) };
      this.groups.set(name, g);
    }
    if (parent) {
      const p = this.groups.get(parent)!;
      if (!p.children.includes(name)) p.children.push(name);
    }
    Object.assign(g.vars, raw.vars ?? {});
    for (const [host, vars] of Object.entries(raw.hosts ?? {})) {
      if (!g.hosts.includes(host)) g.hosts.push(host);
      const listings = this.hostListings.get(host) ?? [];
      listings.push({ vars: vars ?? {}, loc: this.doc.keyAt([...docPath, 'hosts', host]) });
      this.hostListings.set(host, listings);
    }
    for (const [child, rawChild] of Object.entries(raw.children ?? {})) {
      if (child === 'all') {
        this.problems.push({ loc: this.doc.keyAt([...docPath, 'children', child]), message: `group "all" cannot be a child of "${name}": every group is already inside "all"` });
        continue;
      }
      this.group(child, (rawChild ?? {}) as RawGroup, [...docPath, 'children', child], name);
    }
  }

  addVarFiles(dir: string): void {
    for (const name of this.groups.keys()) {
      const v = readVarsNear(path.join(dir, 'group_vars'), name, this.problems);
      if (v) this.groupFileVars.set(name, v);
    }
    for (const name of this.hostListings.keys()) {
      const v = readVarsNear(path.join(dir, 'host_vars'), name, this.problems);
      if (v) this.hostFileVars.set(name, v);
    }
  }

  finish(): Inventory {
    const all = this.groups.get('all')!;
    // Hosts listed directly under `all` and in no other group are Ansible's `ungrouped`.
    const inOther = new Set<string>();
    for (const g of this.groups.values()) if (g.name !== 'all') g.hosts.forEach((h) => inOther.add(h));
    const ungrouped = all.hosts.filter((h) => !inOther.has(h));
    if (!this.groups.has('ungrouped')) {
      this.groups.set('ungrouped', { name: 'ungrouped', hosts: ungrouped, children: [], vars: {} });
      all.children.push('ungrouped');
    }

    const depth = this.depths();
    const hosts = new Map<string, Host>();
    for (const [name, listings] of this.hostListings) {
      const groups = this.groupsOf(name);
      const ordered = [...groups].sort((a, b) => depth.get(a)! - depth.get(b)! || (a === b ? 0 : a < b ? -1 : 1));
      const vars: Vars = {};
      for (const g of ordered) Object.assign(vars, this.groups.get(g)!.vars);
      for (const g of ordered) Object.assign(vars, this.groupFileVars.get(g) ?? {});
      for (const l of listings) Object.assign(vars, l.vars);
      Object.assign(vars, this.hostFileVars.get(name) ?? {});
      hosts.set(name, { name, vars, groups: ordered, loc: listings[0]!.loc });
    }
    return { file: this.file, hosts, groups: this.groups };
  }

  /** Every group containing the host, directly or through children; `all` always. */
  private groupsOf(host: string): Set<string> {
    const out = new Set<string>(['all']);
    const parents = new Map<string, string[]>();
    for (const g of this.groups.values()) for (const c of g.children) parents.set(c, [...(parents.get(c) ?? []), g.name]);
    const stack = [...this.groups.values()].filter((g) => g.hosts.includes(host)).map((g) => g.name);
    while (stack.length) {
      const g = stack.pop()!;
      if (out.has(g) && g !== 'all') continue;
      out.add(g);
      stack.push(...(parents.get(g) ?? []).filter((p) => !out.has(p)));
    }
    return out;
  }

  /** Longest path from `all`; a cycle in children is reported, not followed forever. */
  private depths(): Map<string, number> {
    const depth = new Map<string, number>();
    const visit = (name: string, d: number, trail: string[]): void => {
      if (trail.includes(name)) {
        const g = this.groups.get(name)!;
        this.problems.push({ loc: g.loc ?? { file: this.file, line: 1, col: 1 }, message: `group "${name}" contains itself through ${[...trail.slice(trail.indexOf(name)), name].join(' -> ')}` });
        return;
      }
      if ((depth.get(name) ?? -1) >= d) return;
      depth.set(name, d);
      for (const c of this.groups.get(name)?.children ?? []) visit(c, d + 1, [...trail, name]);
    };
    visit('all', 0, []);
    for (const g of this.groups.keys()) if (!depth.has(g)) depth.set(g, 1);
    if (this.problems.length) throw new ValidationError(this.problems);
    return depth;
  }
}

/** group_vars/NAME.yml|.yaml|.json|NAME, or every YAML file in group_vars/NAME/ (sorted, later wins). */
function readVarsNear(dir: string, name: string, problems: Problem[]): Vars | undefined {
  const files: string[] = [];
  for (const ext of ['', '.yml', '.yaml', '.json']) {
    const f = path.join(dir, name + ext);
    if (!existsSync(f)) continue;
    if (statSync(f).isDirectory()) {
      for (const e of readdirSync(f).sort()) if (/\.(ya?ml|json)$/.test(e)) files.push(path.join(f, e));
    } else files.push(f);
  }
  if (!files.length) return undefined;
  const out: Vars = {};
  const validate = compileSchema('inventory', inventorySchema());
  for (const f of files) {
    let doc: ParsedYaml;
    try {
      doc = parseYaml(readFileSync(f, 'utf8'), f);
    } catch (err) {
      if (err instanceof YamlSyntaxError) {
        problems.push(err.problem);
        continue;
      }
      throw err;
    }
    if (doc.value === null || doc.value === undefined) continue;
    if (typeof doc.value !== 'object' || Array.isArray(doc.value)) {
      problems.push({ loc: doc.at([]), message: `a vars file must be a mapping of names to values` });
      continue;
    }
    // Check the connection vars the same way as inline ones, through a one-host wrapper.
    const wrapped = { all: { vars: doc.value } };
    const found = checkAgainst(validate, wrapped, { doc: shiftedDoc(doc, 2), basePath: [], rootLabel: 'the vars file' });
    problems.push(...found);
    Object.assign(out, doc.value);
  }
  return out;
}

/** View `doc` as if it sat `depth` levels down (`all.vars`), so wrapped paths locate in the real file. */
function shiftedDoc(doc: ParsedYaml, depth: number): ParsedYaml {
  return { ...doc, at: (p) => doc.at(p.slice(depth)), keyAt: (p) => doc.keyAt(p.slice(depth)) };
}

function parseOrThrow(text: string, file: string): ParsedYaml {
  try {
    return parseYaml(text, file);
  } catch (err) {
    if (err instanceof YamlSyntaxError) throw new ValidationError([err.problem]);
    throw err;
  }
}

let schemaCache: object | undefined;
function inventorySchema(): object {
  schemaCache ??= JSON.parse(readFileSync(path.join(schemasDir, 'inventory.json'), 'utf8')) as object;
  return schemaCache;
}
