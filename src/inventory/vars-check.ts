/**
 * The inventory schema's rules for variables (connection variables: `ansible_port` a port,
 * `ansible_connection` one baton speaks, …) applied to vars that came from somewhere other than a
 * YAML inventory document: a vars file, an INI inventory, an inventory script. A YAML inventory
 * is checked whole by the schema where it is read.
 */
import { checkAgainst, compileSchema } from '../playbook/schema-check.js';
import type { Problem, SourceLocation } from '../util/errors.js';
import type { InventoryData } from './data.js';
import { inventorySchema } from './sources.js';
import type { VarsLayer } from './vars-files.js';

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

/** The vars of every host and group that `file` wrote (an INI inventory, an inventory script). */
export function checkVarsFrom(file: string, data: InventoryData, problems: Problem[]): void {
  const owners = [...data.groups.values(), ...data.hosts.values()];
  for (const o of owners) {
    const keys = Object.keys(o.vars).filter((k) => o.varLocs[k]?.file === file);
    if (!keys.length) continue;
    checkVarsLayer({ vars: Object.fromEntries(keys.map((k) => [k, o.vars[k]])), locs: Object.fromEntries(keys.map((k) => [k, o.varLocs[k]!])) }, problems, file);
  }
}
