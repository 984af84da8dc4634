import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { ValidationError, type Problem, type SourceLocation } from '../util/errors.js';
import { ansibleBool } from './connection.js';
import { InventoryData } from './data.js';
import type { Group, Host, Inventory } from './model.js';
import { renderInventoryTemplates } from './templated.js';
import { serviceGroupProblems } from './services.js';
import { SecretBook } from './secrets.js';
import { readSource } from './sources.js';
import { checkVarsLayer } from './vars-check.js';
import { varsFor, type DirListings, type VarsLayer } from './vars-files.js';
import type { VaultSecret } from './vault.js';

type Vars = Record<string, unknown>;

export const IMPLICIT_INVENTORY = '<implicit localhost>';

export interface LoadOptions {
  /** Passwords for vaulted files and `!vault` values (--vault-password-file, --vault-id). */
  vault?: VaultSecret[];
  /**
   * The playbook's directory: its group_vars/ and host_vars/ are read too, as ansible-playbook
   * reads them, each above the inventory's of the same kind.
   */
  playbookDir?: string;
}

/**
 * Load inventories as Ansible does: one source or several (`-i a -i b`, merged in order: a
 * later source adds hosts, groups and members, and its value for a var replaces an earlier
 * one). A source is a YAML or INI file, a directory of them, an executable inventory script, or
 * a `host1,host2,` list (see sources.ts). Without a source: one `localhost` reached locally, as
 * Ansible's implicit localhost.
 *
 * A host's vars merge lowest to highest (Ansible's VariableManager, docs "Understanding
 * variable precedence"):
 *   1. vars of group `all` written in an inventory source;
 *   2. group_vars/all files next to each source, sources in order;
 *   3. vars of the host's other groups written in a source: by depth (parents before
 *      children), then ansible_group_priority, then name;
 *   4. group_vars/GROUP files next to each source, sources in order, groups in that order;
 *   5. the host's own vars written in the sources (several listings: the later wins);
 *   6. host_vars/HOST files next to each source.
 * The playbook directory's group_vars/all, group_vars/GROUP and host_vars/HOST (when given and
 * not an inventory source's directory) come right after 2, 4 and 6 each.
 * Merging replaces whole values (no deep merge), as Ansible's default hash_behaviour=replace.
 * Vars holding `{{ }}` that only need inventory vars are rendered (see templated.ts).
 */
export function loadInventory(sources?: string | string[], opts: LoadOptions = {}): Inventory {
  const list = (Array.isArray(sources) ? sources : sources ? [sources] : []).filter(Boolean);
  if (!list.length) return implicitInventory();
  const problems: Problem[] = [];
  const data = new InventoryData(problems);
  const book = new SecretBook(opts.vault ?? []);
  for (const s of list) readSource(s, data, book, problems);
  if (problems.length) throw new ValidationError(problems);
  // Every var written in a vault-encrypted inventory file is a secret too.
  for (const holder of [...data.groups.values(), ...data.hosts.values()]) {
    for (const [k, loc] of Object.entries(holder.varLocs)) if (loc.file.endsWith(' (decrypted)')) book.remember(k, holder.vars[k]);
  }
  data.reconcile();
  if (problems.length) throw new ValidationError(problems);

  const baseDirs = list.flatMap((s) => {
    try {
      return [statSync(s).isDirectory() ? s : path.dirname(s)];
    } catch {
      return []; // a host list
    }
  });
  const real = (d: string): string => {
    try {
      return realpathSync(d);
    } catch {
      return path.resolve(d);
    }
  };
  const playDirs = opts.playbookDir && !baseDirs.some((d) => real(d) === real(opts.playbookDir!)) ? [opts.playbookDir] : [];
  const fileVars = new Map<string, VarsLayer | undefined>();
  const listings: DirListings = new Map();
  const filesOf = (kind: 'group_vars' | 'host_vars', name: string, dirs = baseDirs): VarsLayer[] =>
    dirs.flatMap((dir) => {
      const key = `${dir}\0${kind}\0${name}`;
      if (!fileVars.has(key)) {
        const layer = varsFor(dir, kind, name, book, problems, listings);
        if (layer) checkVarsLayer(layer, problems);
        fileVars.set(key, layer);
      }
      const l = fileVars.get(key);
      return l ? [l] : [];
    });

  const depth = data.depths();
  const order = (a: string, b: string): number => {
    const ga = data.groups.get(a)!;
    const gb = data.groups.get(b)!;
    return depth.get(a)! - depth.get(b)! || ga.priority - gb.priority || (a < b ? -1 : a > b ? 1 : 0);
  };

  const merged = new Map<string, { vars: Vars; locs: Record<string, SourceLocation> }>();
  const hostGroups = new Map<string, string[]>();
  for (const h of data.hosts.values()) {
    const groups = [...data.groupsOf(h.name)].filter((g) => g !== 'all').sort(order);
    hostGroups.set(h.name, ['all', ...groups]);
    const vars: Vars = {};
    const locs: Record<string, SourceLocation> = {};
    const apply = (v: Vars, l: Record<string, SourceLocation>) => {
      Object.assign(vars, v);
      Object.assign(locs, l);
    };
    const all = data.groups.get('all')!;
    // Ansible's VARIABLE_PRECEDENCE: all_inventory, groups_inventory, all_plugins_inventory,
    // all_plugins_play, groups_plugins_inventory, groups_plugins_play: a group's vars written in
    // the inventory lose to group_vars/all.
    apply(all.vars, all.varLocs);
    for (const g of groups) apply(data.groups.get(g)!.vars, data.groups.get(g)!.varLocs);
    for (const l of filesOf('group_vars', 'all')) apply(l.vars, l.locs);
    for (const l of filesOf('group_vars', 'all', playDirs)) apply(l.vars, l.locs);
    // group_vars files: source by source, then group by group in merge order.
    for (const dir of baseDirs) {
      for (const g of groups) {
        const key = `${dir}\0group_vars\0${g}`;
        if (!fileVars.has(key)) filesOf('group_vars', g);
        const l = fileVars.get(key);
        if (l) apply(l.vars, l.locs);
      }
    }
    for (const g of groups) for (const l of filesOf('group_vars', g, playDirs)) apply(l.vars, l.locs);
    apply(h.vars, h.varLocs);
    for (const l of filesOf('host_vars', h.name)) apply(l.vars, l.locs);
    for (const l of filesOf('host_vars', h.name, playDirs)) apply(l.vars, l.locs);
    merged.set(h.name, { vars, locs });
  }
  if (problems.length) throw new ValidationError(problems);

  const groups = new Map<string, Group>();
  for (const g of data.groups.values()) {
    groups.set(g.name, { name: g.name, hosts: g.hosts, children: g.children, vars: g.vars, loc: g.loc });
  }
  const sourceOf = new Map([...data.hosts.values()].flatMap((h) => (h.loc?.file ? [[h.name, h.loc.file] as [string, string]] : [])));
  const rendered = renderInventoryTemplates(merged, hostGroups, groups, problems, sourceOf);
  const hosts = new Map<string, Host>();
  for (const h of data.hosts.values()) {
    const r = rendered.get(h.name)!;
    const host: Host = { name: h.name, vars: r.vars, groups: hostGroups.get(h.name)!, loc: h.loc, varOrigins: merged.get(h.name)!.locs };
    if (Object.keys(r.deferred).length) host.deferred = r.deferred;
    if (Object.keys(r.templates).length) host.templates = r.templates;
    hosts.set(h.name, host);
  }
  checkBecomeMethods(hosts, problems);
  if (problems.length) throw new ValidationError(problems);
  const inventory: Inventory = {
    file: list[0]!,
    sources: list,
    hosts,
    groups,
    secretVars: book.names,
    secretValues: book.values,
  };
  // Service groups (baton_services) are part of the inventory: a bad one is invalid input for every command.
  problems.push(...serviceGroupProblems(inventory));
  if (problems.length) throw new ValidationError(problems);
  return inventory;
}

function implicitInventory(): Inventory {
  const vars = { ansible_connection: 'local' };
  const host: Host = { name: 'localhost', vars, groups: ['all', 'ungrouped'] };
  return {
    file: IMPLICIT_INVENTORY,
    sources: [],
    hosts: new Map([['localhost', host]]),
    groups: new Map<string, Group>([
      ['all', { name: 'all', hosts: [], children: ['ungrouped'], vars: {} }],
      ['ungrouped', { name: 'ungrouped', hosts: ['localhost'], children: [], vars: {} }],
    ]),
    secretVars: new Set(),
    secretValues: new Set(),
  };
}

/** Connection vars in vars files are checked like inline ones (types, the port's range). */
/**
 * baton becomes another user with `sudo -n` only; any other method is refused where it is set,
 * and so is an ansible_become that is no boolean (better at load than at the first command).
 */
function checkBecomeMethods(hosts: Map<string, Host>, problems: Problem[]): void {
  const reported = new Set<string>();
  for (const h of hosts.values()) {
    const b = h.vars.ansible_become;
    if (b !== undefined && b !== null && !(h.deferred && 'ansible_become' in h.deferred)) {
      try {
        ansibleBool(b, 'ansible_become');
      } catch (e) {
        const loc = h.varOrigins?.ansible_become ?? h.loc ?? { file: '<inventory>', line: 1, col: 1 };
        const key = `b:${loc.file}:${loc.line}:${loc.col}`;
        if (!reported.has(key)) problems.push({ loc, message: `${(e as Error).message} (host ${h.name})` });
        reported.add(key);
      }
    }
    const m = h.vars.ansible_become_method;
    if (m === undefined || m === null || m === 'sudo') continue;
    const loc = h.varOrigins?.ansible_become_method ?? h.loc ?? { file: '<inventory>', line: 1, col: 1 };
    const key = `${loc.file}:${loc.line}:${loc.col}`;
    if (reported.has(key)) continue;
    reported.add(key);
    problems.push({
      loc,
      message: `ansible_become_method ${JSON.stringify(m)} (host ${h.name}): baton becomes another user with "sudo -n" only; set it to sudo (with NOPASSWD rules for the commands baton runs) or remove it`,
    });
  }
}
