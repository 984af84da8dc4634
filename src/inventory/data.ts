/**
 * The inventory as Ansible's InventoryData builds it while sources are parsed: groups with
 * their own vars and members, hosts with their own vars, filled by every source in order (a
 * later source's value for the same var replaces an earlier one), then reconciled once.
 */
import { ValidationError, type Problem, type SourceLocation } from '../util/errors.js';
import { MAX_HOSTS } from './host-pattern.js';

type Vars = Record<string, unknown>;

export interface GroupData {
  name: string;
  hosts: string[];
  children: string[];
  vars: Vars;
  varLocs: Record<string, SourceLocation>;
  /** `ansible_group_priority`: among groups of one depth, higher priority merges later. */
  priority: number;
  loc?: SourceLocation;
}

export interface HostData {
  name: string;
  vars: Vars;
  varLocs: Record<string, SourceLocation>;
  /** Groups the host was added to directly. */
  direct: string[];
  loc?: SourceLocation;
}

export class InventoryData {
  readonly groups = new Map<string, GroupData>();
  readonly hosts = new Map<string, HostData>();
  /** Each group's members and parents as sets: a site's inventory may hold thousands of each. */
  private readonly members = new Map<string, Set<string>>();
  private readonly parents = new Map<string, Set<string>>();

  constructor(private readonly problems: Problem[]) {
    this.addGroup('all');
    this.addGroup('ungrouped');
    this.addChild('all', 'ungrouped');
  }

  addGroup(name: string, loc?: SourceLocation): GroupData {
    let g = this.groups.get(name);
    if (!g) {
      g = { name, hosts: [], children: [], vars: {}, varLocs: {}, priority: 1, loc };
      this.groups.set(name, g);
    } else if (!g.loc && loc) g.loc = loc;
    return g;
  }

  /** A host joins `group`; `port` applies when the host is first seen (Ansible keeps the first). */
  addHost(name: string, group: string | undefined, port: number | undefined, loc: SourceLocation): HostData {
    let h = this.hosts.get(name);
    if (!h) {
      if (this.hosts.size >= MAX_HOSTS) {
        throw new ValidationError([{ loc, message: `more than ${MAX_HOSTS} hosts in the inventory (${name} would be one more): is a host range mistyped?` }]);
      }
      h = { name, vars: {}, varLocs: {}, direct: [], loc };
      this.hosts.set(name, h);
      if (port !== undefined) this.setHostVar(name, 'ansible_port', port, loc);
    }
    if (group) {
      const g = this.addGroup(group);
      let m = this.members.get(group);
      if (!m) this.members.set(group, (m = new Set(g.hosts)));
      if (!m.has(name)) {
        m.add(name);
        g.hosts.push(name);
      }
      if (!h.direct.includes(group)) h.direct.push(group);
    }
    return h;
  }

  setHostVar(host: string, key: string, value: unknown, loc: SourceLocation): void {
    const h = this.hosts.get(host)!;
    h.vars[key] = value;
    h.varLocs[key] = loc;
  }

  setGroupVar(group: string, key: string, value: unknown, loc: SourceLocation): void {
    const g = this.addGroup(group);
    if (key === 'ansible_group_priority') {
      const n = Number(value);
      if (!Number.isInteger(n)) this.problems.push({ loc, message: `ansible_group_priority of group "${group}" must be a whole number, got ${JSON.stringify(value)}` });
      else g.priority = n;
      return;
    }
    g.vars[key] = value;
    g.varLocs[key] = loc;
  }

  /** `child` becomes a child of `parent`; a loop is an error, as in Ansible. */
  addChild(parent: string, child: string, loc?: SourceLocation): void {
    const p = this.addGroup(parent);
    this.addGroup(child);
    if (child === 'all') {
      this.problems.push({ loc: loc ?? p.loc ?? { file: '<inventory>', line: 1, col: 1 }, message: `group "all" cannot be a child of "${parent}": every group is already inside "all"` });
      return;
    }
    if (p.children.includes(child)) return;
    // A loop needs the child to have children and the parent to have parents: a chain of groups
    // declared in either order never searches (the search is the whole chain below the child).
    const mayLoop = this.groups.get(child)!.children.length > 0 && (this.parents.get(parent)?.size ?? 0) > 0;
    if (parent === child || (mayLoop && this.descendants(child).has(parent))) {
      this.problems.push({
        loc: loc ?? p.loc ?? { file: '<inventory>', line: 1, col: 1 },
        message: `group "${child}" cannot be a child of "${parent}": "${parent}" is already inside "${child}", which would make a loop`,
      });
      return;
    }
    p.children.push(child);
    let ps = this.parents.get(child);
    if (!ps) this.parents.set(child, (ps = new Set()));
    ps.add(parent);
  }

  private descendants(name: string): Set<string> {
    const out = new Set<string>();
    const stack = [name];
    while (stack.length) {
      for (const c of this.groups.get(stack.pop()!)?.children ?? []) {
        if (!out.has(c)) {
          out.add(c);
          stack.push(c);
        }
      }
    }
    return out;
  }

  parentsOf(name: string): string[] {
    return [...(this.parents.get(name) ?? [])];
  }

  /** Ansible's reconcile_inventory: every group hangs under `all`; `ungrouped` holds exactly the hosts in no other group. */
  reconcile(): void {
    for (const g of this.groups.values()) {
      if (g.name !== 'all' && this.parentsOf(g.name).length === 0) this.addChild('all', g.name);
    }
    const ungrouped = this.groups.get('ungrouped')!;
    for (const h of this.hosts.values()) {
      const mine = this.groupsOf(h.name);
      const others = [...mine].filter((g) => g !== 'all' && g !== 'ungrouped');
      if (others.length && h.direct.includes('ungrouped')) {
        h.direct = h.direct.filter((d) => d !== 'ungrouped');
        this.members.get('ungrouped')?.delete(h.name);
      } else if (!others.length && !mine.has('ungrouped')) {
        this.addHost(h.name, 'ungrouped', undefined, h.loc ?? { file: '<inventory>', line: 1, col: 1 });
      }
    }
    const left = this.members.get('ungrouped');
    if (left) ungrouped.hosts = ungrouped.hosts.filter((n) => left.has(n));
  }

  /** Every group holding the host, directly or through children; `all` included. */
  groupsOf(host: string): Set<string> {
    const out = new Set<string>(['all']);
    const stack = [...(this.hosts.get(host)?.direct ?? [])];
    while (stack.length) {
      const g = stack.pop()!;
      if (out.has(g) && g !== 'all') continue;
      out.add(g);
      stack.push(...this.parentsOf(g).filter((p) => !out.has(p)));
    }
    return out;
  }

  /**
   * Longest path from `all` (Ansible's group depth): the groups in topological order from `all`,
   * each relaxing its children. No recursion: a chain of thousands of `[g:children]` sections is
   * a loop, not a stack that overflows.
   */
  depths(): Map<string, number> {
    const depth = new Map<string, number>([['all', 0]]);
    const indegree = new Map<string, number>();
    const reach = ['all'];
    const seen = new Set(reach);
    for (let i = 0; i < reach.length; i++) {
      for (const c of this.groups.get(reach[i]!)?.children ?? []) {
        indegree.set(c, (indegree.get(c) ?? 0) + 1);
        if (!seen.has(c)) {
          seen.add(c);
          reach.push(c);
        }
      }
    }
    const ready = ['all'];
    while (ready.length) {
      const g = ready.pop()!;
      const d = depth.get(g)!;
      for (const c of this.groups.get(g)?.children ?? []) {
        if ((depth.get(c) ?? -1) < d + 1) depth.set(c, d + 1);
        const left = indegree.get(c)! - 1;
        indegree.set(c, left);
        if (left === 0) ready.push(c);
      }
    }
    for (const g of this.groups.keys()) if (!depth.has(g)) depth.set(g, 1);
    return depth;
  }
}
