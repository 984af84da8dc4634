/**
 * Ansible's YAML inventory format (the `yaml` inventory plugin): top-level keys are groups;
 * each group may have `hosts` (patterns with ranges and `:port`, each with its vars), `vars`
 * and `children` (groups, recursively). `hosts: name` and `children: name` are accepted as a
 * one-entry mapping, as in Ansible. Sections are walked in the order written, as Ansible
 * walks them: that order decides which listing of a host sets its port and its vars last.
 */
import type { ParsedYaml } from '../playbook/yaml-source.js';
import type { Problem } from '../util/errors.js';
import type { InventoryData } from './data.js';
import { HostPatternError, parseHostPattern } from './host-pattern.js';
import { openVaultedValues, type SecretBook } from './secrets.js';

type Path = Array<string | number>;
type Vars = Record<string, unknown>;

const isMapping = (v: unknown): v is Vars => v !== null && typeof v === 'object' && !Array.isArray(v);

export function readYamlInventory(doc: ParsedYaml, data: InventoryData, book: SecretBook, problems: Problem[]): void {
  const top = doc.value as Vars;
  for (const [name, raw] of Object.entries(top)) group(name, raw, [name]);

  function group(name: string, raw: unknown, path: Path): void {
    data.addGroup(name, doc.keyAt(path));
    if (!isMapping(raw)) return; // empty, or the schema check has said what is wrong
    for (const key of Object.keys(raw)) {
      let section = raw[key];
      if (typeof section === 'string' && key !== 'vars') section = { [section]: null };
      if (!isMapping(section)) continue;
      if (key === 'vars') {
        openVaultedValues(section, doc, [...path, 'vars'], book, problems);
        for (const [k, v] of Object.entries(section)) data.setGroupVar(name, k, v, doc.at([...path, 'vars', k]));
      } else if (key === 'children') {
        for (const [child, rawChild] of Object.entries(section)) {
          group(child, rawChild, [...path, 'children', child]);
          data.addChild(name, child, doc.keyAt([...path, 'children', child]));
        }
      } else if (key === 'hosts') {
        for (const [pattern, vars] of Object.entries(section)) hostEntry(name, pattern, vars, [...path, 'hosts', pattern]);
      }
    }
  }

  function hostEntry(groupName: string, pattern: string, vars: unknown, hpath: Path): void {
    let parsed: { names: string[]; port?: number };
    try {
      parsed = parseHostPattern(pattern);
    } catch (e) {
      if (!(e instanceof HostPatternError)) throw e;
      problems.push({ loc: doc.keyAt(hpath), message: `bad host "${pattern}": ${e.message}` });
      return;
    }
    const hv = isMapping(vars) ? vars : {};
    openVaultedValues(hv, doc, hpath, book, problems);
    for (const h of parsed.names) {
      data.addHost(h, groupName, parsed.port, doc.keyAt(hpath));
      for (const [k, v] of Object.entries(hv)) data.setHostVar(h, k, v, doc.at([...hpath, k]));
    }
  }
}
