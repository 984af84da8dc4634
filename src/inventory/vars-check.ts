/**
 * The inventory schema's rules for variables (connection variables: `ansible_port` a port,
 * `ansible_connection` one baton speaks, …) applied to vars that came from somewhere other than a
 * YAML inventory document: a vars file, an INI inventory, an inventory script. A YAML inventory
 * is checked whole by the schema where it is read.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { checkAgainst, compileSchema } from '../playbook/schema-check.js';
import type { Problem, SourceLocation } from '../util/errors.js';
import { schemasDir } from '../util/paths.js';
import type { InventoryData } from './data.js';
import type { VarsLayer } from './vars-files.js';

let schemaCache: object | undefined;
/** schemas/inventory.json, read once: YAML inventories (sources.ts) and every other vars layer. */
export function inventorySchema(): object {
  schemaCache ??= JSON.parse(readFileSync(path.join(schemasDir, 'inventory.json'), 'utf8')) as object;
  return schemaCache;
}

/** Check one layer of vars, each problem at the place its var was written. */
export function checkVarsLayer(layer: VarsLayer, problems: Problem[], label = 'the vars file'): void {
  const validate = compileSchema('inventory', inventorySchema());
  const at = (p: Array<string | number>): SourceLocation => layer.locs[String(p[2])] ?? { file: `<${label}>`, line: 1, col: 1 };
  problems.push(
    ...checkAgainst(validate, { all: { vars: layer.vars } }, {
      doc: { file: '', value: undefined, root: undefined, at, keyAt: at },
      basePath: [],
      rootLabel: label,
    }),
  );
}

/** The vars the schema wants as strings (`ansible_user`, `ansible_password`…). */
let stringVars: Set<string> | undefined;
function wantsString(key: string): boolean {
  if (!stringVars) {
    const props = (inventorySchema() as { definitions?: { vars?: { properties?: Record<string, { type?: unknown }> } } }).definitions?.vars?.properties ?? {};
    stringVars = new Set(Object.entries(props).filter(([, p]) => p.type === 'string').map(([k]) => k));
  }
  return stringVars.has(key);
}

/**
 * The vars of every host and group that `file` wrote (an INI inventory, an inventory script).
 * INI values are typed as Python literals, so `ansible_password=123456` or `ansible_user=1000`
 * arrive as numbers: where the schema wants a string, a number or boolean is read as its text, as
 * Ansible uses it.
 */
export function checkVarsFrom(file: string, data: InventoryData, problems: Problem[]): void {
  const owners = [...data.groups.values(), ...data.hosts.values()];
  for (const o of owners) {
    const keys = Object.keys(o.vars).filter((k) => o.varLocs[k]?.file === file);
    if (!keys.length) continue;
    const value = (k: string): unknown => {
      const v = o.vars[k];
      return wantsString(k) && (typeof v === 'number' || typeof v === 'boolean') ? String(v) : v;
    };
    checkVarsLayer({ vars: Object.fromEntries(keys.map((k) => [k, value(k)])), locs: Object.fromEntries(keys.map((k) => [k, o.varLocs[k]!])) }, problems, file);
  }
}
