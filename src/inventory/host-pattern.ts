/**
 * Host names as Ansible's inventory plugins read them: an optional `:port` and `[x:y(:step)]`
 * ranges. Semantics follow ansible-core's address parser and range expander
 * (parsing/utils/addresses.py, plugins/inventory/__init__.py): a port is split off only when
 * what precedes it is a valid host name or IPv4 address (IPv6 needs `[addr]:port`), and a range
 * is numeric (zero-padded when its start is) or a single letter each side.
 */

export class HostPatternError extends Error {}

const RANGE = String.raw`\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]`;
const NUM_RANGE = String.raw`\[[0-9]+:[0-9]+(?::[0-9]+)?\]`;
const HEX_RANGE = String.raw`\[[0-9a-f]+:[0-9a-f]+(?::[0-9]+)?\]`;
const LABEL = String.raw`(?:[\p{L}\p{N}_]|${RANGE})(?:[\p{L}\p{N}_-]|${RANGE})*(?<![_-])`;
const HOSTNAME = new RegExp(String.raw`^${LABEL}(?:\.${LABEL})*$`, 'iu');
const V4_PART = String.raw`(?:[01]?[0-9]{1,2}|2[0-4][0-9]|25[0-5]|${NUM_RANGE})`;
const IPV4 = new RegExp(String.raw`^(?:${V4_PART}\.){3}${V4_PART}$`, 'i');
const V6_PART = String.raw`(?:[0-9a-f]{1,4}|${HEX_RANGE})`;
const BRACKETED_PORT = /^\[(.+)\]:([0-9]+)$/;
const HOST_PORT = /^((?:[^:[\]]|\[[^\]]*\])*):([0-9]+)$/;

function looksLikeIpv6(s: string): boolean {
  if (!s.includes(':')) return false;
  // Enough of RFC 4291's shapes for inventory names: hex groups (or ranges) around colons,
  // at most one `::`, an optional embedded IPv4 tail.
  const [head, ...rest] = s.split('::');
  if (rest.length > 1) return false;
  const groups = [...(head ? head.split(':') : []), ...(rest[0] ? rest[0].split(':') : [])];
  const last = groups[groups.length - 1];
  if (last !== undefined && last.includes('.') && IPV4.test(last)) groups.pop();
  const re = new RegExp(`^${V6_PART}$`, 'i');
  return groups.every((g) => re.test(g)) && (rest.length === 1 ? groups.length <= 7 : groups.length === 8);
}

/** `name[:port]` → name and port; a string that is no valid address keeps its colon, as in Ansible. */
export function splitHostPort(pattern: string): { name: string; port?: number } {
  let address = pattern;
  let port: number | undefined;
  for (const re of [BRACKETED_PORT, HOST_PORT]) {
    const m = re.exec(address);
    if (m) {
      address = m[1]!;
      port = Number(m[2]);
    }
  }
  if (IPV4.test(address) || looksLikeIpv6(address) || HOSTNAME.test(address)) return { name: address, port };
  return { name: pattern };
}

/**
 * The most hosts one pattern may stand for. A site's largest ranges are thousands; a typo such as
 * `web[1:99999999]` would otherwise fill the memory before any error could be said.
 */
export const MAX_HOSTS_PER_PATTERN = 100_000;
/** Hosts in one inventory load, all sources together: patterns under the per-pattern cap still add up. */
export const MAX_HOSTS = 200_000;
const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Every host a pattern stands for: `www[01:50:2].example.com`, `db-[a:f]`, several ranges in one name. */
export function expandHostRange(name: string): string[] {
  const count = countHostRange(name);
  if (count > MAX_HOSTS_PER_PATTERN) {
    throw new HostPatternError(`"${name}" stands for ${count > 1e15 ? 'more than 10^15' : count} hosts; at most ${MAX_HOSTS_PER_PATTERN} are read from one pattern: is a range bound mistyped?`);
  }
  return expandRanges(name);
}

/** How many hosts a pattern stands for, counted without listing them (ranges multiply). */
function countHostRange(name: string): number {
  let count = 1;
  for (const m of name.matchAll(/\[([^\]]*)\]/g)) {
    const [beg = '0', end = '', step = '1'] = m[1]!.split(':');
    const st = /^[0-9]+$/.test(step) && Number(step) > 0 ? Number(step) : 1;
    // Letters run through a-z then A-Z, as Ansible's ascii_letters: [a:Z] is 52 hosts, and five
    // of them in one name are 380 million.
    const letter = (c: string) => (/^[a-zA-Z]$/.test(c) ? LETTERS.indexOf(c) : -1);
    const [b, e] = letter(beg) >= 0 && letter(end) >= 0 ? [letter(beg), letter(end)] : [/^[0-9]+$/.test(beg || '0') ? Number(beg || '0') : 0, /^[0-9]+$/.test(end) ? Number(end) : 0];
    // Anything malformed is expandRanges' to explain.
    count *= e >= b ? Math.floor((e - b) / st) + 1 : 1;
  }
  return count;
}

function expandRanges(name: string): string[] {
  const open = name.indexOf('[');
  if (open < 0) return [name];
  const close = name.indexOf(']', open);
  if (close < 0) throw new HostPatternError(`"${name}": "[" opens a host range that is never closed with "]"`);
  const head = name.slice(0, open);
  const tail = name.slice(close + 1);
  const bounds = name.slice(open + 1, close).split(':');
  if (bounds.length !== 2 && bounds.length !== 3) throw new HostPatternError(`"${name}": a host range is [begin:end] or [begin:end:step]`);
  const beg = bounds[0] || '0';
  const end = bounds[1]!;
  if (!end) throw new HostPatternError(`"${name}": the host range has no end value`);
  const stepText = bounds[2] ?? '1';
  if (!/^[0-9]+$/.test(stepText) || Number(stepText) === 0) throw new HostPatternError(`"${name}": the range step must be a positive whole number`);
  const step = Number(stepText);
  let width = 0;
  if (beg.length > 1 && beg.startsWith('0')) {
    if (beg.length !== end.length) throw new HostPatternError(`"${name}": a zero-padded range needs begin and end of the same width (${beg} vs ${end})`);
    width = beg.length;
  }
  const items: string[] = [];
  if (/^[a-zA-Z]$/.test(beg) && /^[a-zA-Z]$/.test(end)) {
    const b = LETTERS.indexOf(beg);
    const e = LETTERS.indexOf(end);
    if (b > e) throw new HostPatternError(`"${name}": the range begins after it ends`);
    for (let i = b; i <= e; i += step) items.push(LETTERS[i]!);
  } else if (/^[0-9]+$/.test(beg) && /^[0-9]+$/.test(end)) {
    for (let i = Number(beg); i <= Number(end); i += step) items.push(width ? String(i).padStart(width, '0') : String(i));
  } else {
    throw new HostPatternError(`"${name}": a host range is numeric ([01:50]) or one letter each side ([a:f])`);
  }
  return items.flatMap((x) => expandRanges(head + x + tail));
}

/** A host key or INI host word: the hosts it names, and the port they share. */
export function parseHostPattern(pattern: string): { names: string[]; port?: number } {
  const { name, port } = splitHostPort(pattern);
  if (pattern.trim().endsWith(':') && port === undefined) {
    throw new HostPatternError(`"${pattern}": a trailing ":" must be followed by a port number`);
  }
  const names = expandHostRange(name);
  if (names.some((n) => n.trim() === '---')) throw new HostPatternError(`"${pattern}" is a YAML document marker, not a host: is this a YAML file?`);
  return { names, port };
}
