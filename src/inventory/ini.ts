/**
 * Ansible's INI inventory format, read with the semantics of ansible-core's `ini` inventory
 * plugin:
 *  - lines before any section list hosts of `ungrouped`;
 *  - `[group]` lists hosts: a host word (ranges and `:port` allowed) then `key=value` words,
 *    split like a POSIX shell (quotes removed, `#` starts a comment);
 *  - `[group:vars]` holds `key=value` lines: everything after the first `=` is the value;
 *  - `[group:children]` names child groups, which may be declared later in the file;
 *  - values are typed like Python literals (`5`, `True`, `'text'`, `[1, 2]`), else kept as text;
 *  - blank lines and lines starting with `#` or `;` are skipped.
 * Every problem is reported at file:line:col.
 */
import type { Problem, SourceLocation } from '../util/errors.js';
import type { InventoryData } from './data.js';
import { HostPatternError, parseHostPattern } from './host-pattern.js';
import { iniValue } from './py-literal.js';
import { ShlexError, shlexSplit } from './shlex.js';
import { VAULT_HEADER } from './vault.js';

const SECTION = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$/;
const GROUP_NAME = /^([^:\]\s]+)\s*(?:#.*)?$/;

export function parseIniInventory(text: string, file: string, data: InventoryData, problems: Problem[]): void {
  const lines = text.split(/\r?\n/);
  let group = 'ungrouped';
  let state: 'hosts' | 'vars' | 'children' = 'hosts';
  // Children named before their group is declared, and :vars of groups never declared.
  const pendingChildren = new Map<string, { parents: string[]; loc: SourceLocation }>();
  const pendingVars = new Map<string, SourceLocation>();

  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    const indent = raw.length - raw.trimStart().length;
    const line = raw.trim();
    const at = (offset = 0): SourceLocation => ({ file, line: lineNo, col: indent + offset + 1 });
    if (!line || line[0] === '#' || line[0] === ';') return;

    const sec = SECTION.exec(line);
    if (sec) {
      group = sec[1]!;
      const kind = sec[2] ?? 'hosts';
      if (kind !== 'hosts' && kind !== 'vars' && kind !== 'children') {
        problems.push({ loc: at(), message: `section [${group}:${kind}] has an unknown type "${kind}": use [${group}], [${group}:vars] or [${group}:children]` });
        state = 'hosts';
        group = `${group}:${kind}`;
        return;
      }
      state = kind;
      // [g:vars] alone does not declare g (earlier sources count: groups are shared).
      if (kind === 'vars' && !data.groups.has(group) && !pendingChildren.has(group)) pendingVars.set(group, at());
      data.addGroup(group, at(1));
      if (kind !== 'vars') {
        pendingVars.delete(group);
        resolvePending(group);
      }
      return;
    }
    if (line.startsWith('[') && line.endsWith(']')) {
      problems.push({ loc: at(), message: `invalid section "${line}": a section is [group], [group:vars] or [group:children], with no spaces` });
      return;
    }
    if (group.includes(':')) return; // inside a section already reported as unknown

    if (state === 'hosts') hostLine(line, lineNo, indent);
    else if (state === 'vars') varLine(line, at);
    else {
      const m = GROUP_NAME.exec(line);
      if (!m) {
        problems.push({ loc: at(), message: `expected a group name in [${group}:children], got "${line}"` });
        return;
      }
      const child = m[1]!;
      if (data.groups.has(child)) data.addChild(group, child, at());
      else {
        const p = pendingChildren.get(child) ?? { parents: [], loc: at() };
        p.parents.push(group);
        pendingChildren.set(child, p);
      }
    }
  });

  for (const [name, loc] of pendingVars) {
    problems.push({ loc, message: `section [${name}:vars] sets vars of group "${name}", which this file never declares (add a [${name}] or [${name}:children] section)` });
  }
  for (const [name, p] of pendingChildren) {
    problems.push({ loc: p.loc, message: `[${p.parents[p.parents.length - 1]}:children] names group "${name}", which this file never declares (add a [${name}] section, even an empty one)` });
  }

  function resolvePending(name: string): void {
    const p = pendingChildren.get(name);
    if (!p) return;
    pendingChildren.delete(name);
    for (const parent of p.parents) {
      data.addChild(parent, name, p.loc);
      // A parent still pending as someone's child is declared by its own [parent:children].
      resolvePending(parent);
    }
  }

  function varLine(line: string, at: (o?: number) => SourceLocation): void {
    const eq = line.indexOf('=');
    if (eq < 0) {
      problems.push({ loc: at(), message: `expected key=value in [${group}:vars], got "${line}"` });
      return;
    }
    const key = line.slice(0, eq).trim();
    const text = line.slice(eq + 1).trim();
    const valueCol = line.indexOf(text, eq + 1);
    data.setGroupVar(group, key, iniValue(text), at(valueCol < 0 ? eq + 1 : valueCol));
  }

  function hostLine(line: string, lineNo: number, indent: number): void {
    const at = (offset = 0): SourceLocation => ({ file, line: lineNo, col: indent + offset + 1 });
    let words: string[];
    try {
      words = shlexSplit(line);
    } catch (e) {
      problems.push({ loc: at(), message: `cannot split host line "${line}": ${(e as ShlexError).message}` });
      return;
    }
    if (!words.length) return;
    if (words[0]!.startsWith(VAULT_HEADER)) {
      problems.push({ loc: at(), message: `this INI file holds Ansible Vault text; vault-encrypt a vars file (host_vars/, group_vars/) or a YAML inventory instead` });
      return;
    }
    let hosts: { names: string[]; port?: number };
    try {
      hosts = parseHostPattern(words[0]!);
    } catch (e) {
      if (!(e instanceof HostPatternError)) throw e;
      problems.push({ loc: at(), message: `bad host "${words[0]}": ${e.message}` });
      return;
    }
    const vars: Array<[string, unknown, SourceLocation]> = [];
    let searchFrom = words[0]!.length;
    for (const w of words.slice(1)) {
      const col = Math.max(0, line.indexOf(w.split('=')[0]!, searchFrom));
      searchFrom = col + 1;
      const eq = w.indexOf('=');
      if (eq < 0) {
        problems.push({
          loc: at(col),
          message: `expected key=value after host ${words[0]}, got "${w}" (quote values that hold spaces: key="a b")`,
        });
        continue;
      }
      vars.push([w.slice(0, eq), iniValue(w.slice(eq + 1)), at(col)]);
    }
    for (const name of hosts.names) {
      data.addHost(name, group, hosts.port, at());
      for (const [k, v, loc] of vars) data.setHostVar(name, k, v, loc);
    }
  }
}
