import type { Host, Inventory } from './model.js';

/**
 * Ansible host patterns, for `hosts:` and `--limit`:
 *   `all` or `*`            every host
 *   `nas1`, `storage`       a host, or every host of a group (children included)
 *   `nas*`, `web-?`         globs over host and group names
 *   `~nas[12]`              a regular expression over host and group names
 *   `a:b`, `a,b`            union
 *   `a:!b`                  minus
 *   `a:&b`                  intersection
 * As in Ansible, unions are taken first, then intersections, then exclusions, whatever the
 * order written.
 */
export interface Selection {
  /** Matching hosts, in inventory order. */
  hosts: Host[];
  /** Terms that matched no host or group name (with `!`/`&` stripped). */
  unknown: string[];
}

export function selectHosts(inv: Inventory, pattern: string, limit?: string): Selection {
  const first = evalPattern(inv, pattern);
  let names = first.names;
  const unknown = [...first.unknown];
  if (limit !== undefined && limit.trim() !== '') {
    const lim = evalPattern(inv, limit);
    names = new Set([...names].filter((n) => lim.names.has(n)));
    unknown.push(...lim.unknown.filter((u) => !unknown.includes(u)));
  }
  const hosts = [...inv.hosts.values()].filter((h) => names.has(h.name));
  return { hosts, unknown };
}

export function splitPattern(pattern: string): string[] {
  return pattern
    .split(/[:,]/)
    .map((t) => t.trim())
    .filter(Boolean);
}

function evalPattern(inv: Inventory, pattern: string): { names: Set<string>; unknown: string[] } {
  const unions: string[] = [];
  const intersections: string[] = [];
  const exclusions: string[] = [];
  for (const term of splitPattern(pattern)) {
    if (term.startsWith('!')) exclusions.push(term.slice(1));
    else if (term.startsWith('&')) intersections.push(term.slice(1));
    else unions.push(term);
  }
  const unknown: string[] = [];
  const match = (term: string): Set<string> => {
    const m = matchTerm(inv, term);
    if (m === undefined) {
      unknown.push(term);
      return new Set();
    }
    return m;
  };
  // `!b` alone means "all but b", as Ansible reads it.
  const names = new Set<string>();
  if (!unions.length && (intersections.length || exclusions.length)) unions.push('all');
  for (const t of unions) for (const n of match(t)) names.add(n);
  for (const t of intersections) {
    const m = match(t);
    for (const n of [...names]) if (!m.has(n)) names.delete(n);
  }
  for (const t of exclusions) for (const n of match(t)) names.delete(n);
  return { names, unknown };
}

/** The host names a term stands for, or undefined when it names nothing in the inventory. */
function matchTerm(inv: Inventory, term: string): Set<string> | undefined {
  if (term === 'all' || term === '*') return new Set(inv.hosts.keys());
  if (inv.hosts.has(term)) return new Set([term]);
  if (inv.groups.has(term)) return hostsOfGroup(inv, term);
  let test: ((name: string) => boolean) | undefined;
  if (term.startsWith('~')) {
    let re: RegExp;
    try {
      // Sticky: matched from the name's start, as Ansible's re.match (`~nas1` is not old-nas1).
      re = new RegExp(term.slice(1), 'y');
    } catch {
      return undefined;
    }
    test = (n) => {
      re.lastIndex = 0;
      return re.test(n);
    };
  } else if (/[*?]/.test(term)) {
    const re = globToRegExp(term);
    test = (n) => re.test(n);
  }
  if (!test) return undefined;
  const out = new Set<string>();
  let any = false;
  for (const h of inv.hosts.keys()) if (test(h)) (out.add(h), (any = true));
  for (const g of inv.groups.keys()) if (test(g)) for (const h of hostsOfGroup(inv, g)) (out.add(h), (any = true));
  return any ? out : undefined;
}

export function hostsOfGroup(inv: Inventory, group: string): Set<string> {
  if (group === 'all') return new Set(inv.hosts.keys());
  const out = new Set<string>();
  for (const h of inv.hosts.values()) if (h.groups.includes(group)) out.add(h.name);
  return out;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}
