import os from 'node:os';
import path from 'node:path';
import { magicVars } from './templated.js';
import { render } from '../playbook/template.js';
import type { ConnectionSpec, Host } from './model.js';

/**
 * How to reach a host, from Ansible's connection variables:
 *   ansible_connection (local|ssh), ansible_host (ansible_ssh_host), ansible_port
 *   (ansible_ssh_port), ansible_user (ansible_ssh_user),
 *   ansible_ssh_private_key_file, ansible_password (ansible_ssh_pass), ansible_timeout,
 *   ansible_ssh_common_args / ansible_ssh_extra_args: `-o UserKnownHostsFile=...`,
 *   `-o StrictHostKeyChecking=...`, `-o ConnectTimeout=...` are understood, the rest ignored;
 *   baton_known_hosts: an extra known_hosts file, relative to the inventory file;
 *   ansible_become, ansible_become_user, ansible_become_method (sudo only): see becomeFor.
 *
 * `StrictHostKeyChecking=no` is read as accept-new: baton pins a key it has not seen, but a
 * changed key is never accepted — a failover must not talk to an impostor.
 *
 * `inventoryDir` defaults to the directory of the file the host was listed in.
 */
/** The vars connectionFor reads: each is needed before a play runs, to reach the host. */
export const CONNECTION_VARS = [
  'ansible_connection', 'ansible_host', 'ansible_ssh_host', 'ansible_port', 'ansible_ssh_port', 'ansible_user', 'ansible_ssh_user',
  'ansible_ssh_private_key_file', 'ansible_private_key_file', 'ansible_password', 'ansible_ssh_pass', 'ansible_timeout',
  'ansible_ssh_common_args', 'ansible_ssh_extra_args', 'ansible_become', 'ansible_become_user', 'ansible_become_method', 'baton_known_hosts',
];

/**
 * Connection vars left for play context (`ansible_user: "{{ deploy_user }}"` with `-e
 * deploy_user=ops`) rendered with the extra vars, once, before any host is contacted: as data
 * from then on (they failed at their host's connect: the extra vars were not in their context).
 * One that still needs something undefined stays as written: it is an error only if the run
 * reaches that host (a host no play selects must not stop the run).
 */
export function resolveConnectionVars(hosts: Iterable<Host>, extraVars: Record<string, unknown>): void {
  const all = [...hosts];
  const magic = Object.keys(extraVars).length ? magicOf(all) : undefined;
  for (const host of all) {
    if (magic) withExtraVars(host, extraVars, magic(host));
    for (const k of CONNECTION_VARS) {
      if (!host.deferred || !(k in host.deferred)) continue;
      try {
        host.vars[k] = render(host.deferred[k], { inventory_hostname: host.name, ...host.vars, ...extraVars });
        delete host.deferred[k];
      } catch {
        // Left for connectionFor, which says what is missing when the host is reached.
      }
    }
  }
}

/**
 * `-e` wins over everything, as in Ansible: a connection var given with -e (`-e
 * ansible_user=breakglass`) is the one the host is reached with, and an inventory template that
 * reads an extra var (`vip_interface: "{{ iface }}"` with `-e iface=bond0`) is rendered again with
 * it (it was rendered when the inventory loaded, without the extra vars). Templates that read
 * templates settle in as many rounds as there are templates.
 */
function withExtraVars(host: Host, extraVars: Record<string, unknown>, magic: Record<string, unknown>): void {
  // A var the host has (its vip_interface, say) is the -e value for everything that reads the
  // host's vars: placement and the implied group too, not only the steps.
  for (const [k, v] of Object.entries(extraVars)) if (k in host.vars) host.vars[k] = v;
  const templates = Object.entries(host.templates ?? {}).filter(([k]) => !(k in extraVars));
  for (let round = 0; round < templates.length; round++) {
    let changed = false;
    for (const [k, t] of templates) {
      let now: unknown;
      try {
        now = render(t, { ...host.vars, ...magic, ...extraVars });
      } catch {
        continue; // as it rendered at load
      }
      if (JSON.stringify(now) !== JSON.stringify(host.vars[k])) {
        host.vars[k] = now;
        changed = true;
      }
    }
    if (!changed) break;
  }
  for (const k of CONNECTION_VARS) {
    if (!(k in extraVars)) continue;
    host.vars[k] = extraVars[k];
    if (host.deferred) delete host.deferred[k];
  }
}

/** The magic vars inventory templates saw when the inventory loaded (inventory/templated.ts), per host. */
function magicOf(hosts: Host[]): (host: Host) => Record<string, unknown> {
  const groups: Record<string, string[]> = {};
  for (const h of hosts) for (const g of h.groups) (groups[g] ??= []).push(h.name);
  const hostvars = Object.fromEntries(hosts.map((h) => [h.name, h.vars]));
  return (host) => magicVars(host.name, host.groups, groups, hostvars, host.loc?.file);
}

export function connectionFor(host: Host, inventoryDir?: string): ConnectionSpec {
  // Inventory templates were rendered at load (templated.ts): a value is data here, never
  // rendered again. Only a var left for play context is rendered, against the host's vars.
  const v = (name: string): unknown => {
    const raw = host.vars[name];
    return host.deferred && name in host.deferred ? render(raw, { inventory_hostname: host.name, ...host.vars }) : raw;
  };
  const str = (name: string): string | undefined => {
    const x = v(name);
    return x === undefined || x === null || x === '' ? undefined : String(x);
  };
  const baseDir = inventoryDir ?? (host.loc?.file ? path.dirname(host.loc.file) : process.cwd());

  const spec: ConnectionSpec = {
    host: host.name,
    connection: str('ansible_connection') === 'local' ? 'local' : 'ssh',
    // ansible_ssh_host/_port/_user are Ansible's older names, and they win when both are set
    // (wherever each was set): the ssh plugin lists them after the new ones, and Ansible takes
    // the last one defined (checked with ansible 2.14's -vvv).
    address: str('ansible_ssh_host') ?? str('ansible_host') ?? host.name,
  };
  const port = str('ansible_ssh_port') ?? str('ansible_port');
  if (port !== undefined) spec.port = Number.parseInt(port, 10);
  const user = str('ansible_ssh_user') ?? str('ansible_user');
  if (user) spec.user = user;
  const key = str('ansible_ssh_private_key_file') ?? str('ansible_private_key_file');
  if (key) spec.privateKeyFile = expandHome(key);
  const password = str('ansible_ssh_password') ?? str('ansible_ssh_pass') ?? str('ansible_password');
  if (password) spec.password = password;
  const timeout = str('ansible_timeout');
  if (timeout && /^\d+$/.test(timeout)) spec.connectTimeoutMs = Number(timeout) * 1000;
  const become = becomeFor(host, v);
  if (become) spec.become = become;

  const opts = sshOptions(`${str('ansible_ssh_common_args') ?? ''} ${str('ansible_ssh_extra_args') ?? ''}`);
  // All of them go to OpenSSH's own resolution (ProxyCommand, ProxyJump, HostKeyAlias…); the
  // few below are also read here, for the parser fallback and for baton's own checks.
  if (opts.size) spec.sshOptions = [...opts].map(([k, val]) => `${k}=${val}`);
  const known = opts.get('userknownhostsfile');
  if (known) spec.knownHostsFile = expandHome(known.split(/\s+/)[0]!);
  const strict = opts.get('stricthostkeychecking')?.toLowerCase();
  if (strict === 'accept-new' || strict === 'no' || strict === 'off') spec.hostKeyChecking = 'accept-new';
  else if (strict === 'yes' || strict === 'ask') spec.hostKeyChecking = 'strict';
  const ct = opts.get('connecttimeout');
  if (ct && /^\d+$/.test(ct)) spec.connectTimeoutMs = Number(ct) * 1000;

  const batonKnown = str('baton_known_hosts');
  if (batonKnown) spec.knownHostsFile = path.resolve(knownHostsBase(host, baseDir), expandHome(batonKnown));
  return spec;
}

/**
 * baton_known_hosts is relative to the inventory it was written in: the file that set it, or,
 * for a group_vars/host_vars file, the inventory directory above it. With several sources
 * (`-i a/ -i b/`) that is the right one of them, whatever `inventoryDir` the caller guessed.
 */
function knownHostsBase(host: Host, fallback: string): string {
  const origin = host.varOrigins?.baton_known_hosts?.file.replace(/ \(decrypted\)$/, '');
  if (!origin || origin.startsWith('<') || origin === '-i') return fallback;
  let dir = path.dirname(origin);
  for (let up = dir; up !== path.dirname(up); up = path.dirname(up)) {
    const base = path.basename(up);
    if (base === 'group_vars' || base === 'host_vars') {
      dir = path.dirname(up);
      break;
    }
  }
  return dir;
}

const TRUE_WORDS = ['true', 'yes', 'on', '1', 'y', 't'];
const FALSE_WORDS = ['false', 'no', 'off', '0', 'n', 'f', ''];

/** Ansible's boolean(): true/yes/on/1 and false/no/off/0, any case; anything else is an error. */
export function ansibleBool(value: unknown, what: string): boolean {
  if (typeof value === 'boolean') return value;
  const s = String(value).trim().toLowerCase();
  if (TRUE_WORDS.includes(s)) return true;
  if (FALSE_WORDS.includes(s)) return false;
  throw new Error(`${what} must be a boolean (true/false, yes/no), got ${JSON.stringify(value)}`);
}

/**
 * ansible_become / ansible_become_user / ansible_become_method, as set in the inventory: each
 * field only when the inventory sets it, since an inventory value beats a play's or step's
 * `become` (Ansible's rule: connection variables win over keywords). Only sudo is supported.
 */
function becomeFor(host: Host, v: (name: string) => unknown): ConnectionSpec['become'] {
  const method = v('ansible_become_method');
  if (method !== undefined && method !== null && method !== 'sudo') {
    throw new Error(`host ${host.name}: ansible_become_method ${JSON.stringify(method)} is not supported; baton becomes another user with "sudo -n" only`);
  }
  const out: NonNullable<ConnectionSpec['become']> = {};
  const enabled = v('ansible_become');
  if (enabled !== undefined && enabled !== null) out.enabled = ansibleBool(enabled, `ansible_become of host ${host.name}`);
  const user = v('ansible_become_user');
  if (user !== undefined && user !== null && user !== '') out.user = String(user);
  return Object.keys(out).length ? out : undefined;
}

/** ssh's flags that take a value and say where or how to connect, as the -o option each stands for. */
const FLAG_OPTIONS: Record<string, string> = { '-J': 'proxyjump', '-i': 'identityfile' };
/** ssh's flags with a value that change nothing baton's connection needs (logging, forwarding). */
const IGNORED_VALUE_FLAGS = new Set(['-E', '-L', '-R', '-D', '-W', '-e', '-m', '-c', '-S', '-O', '-Q', '-B', '-b', '-w']);

/**
 * `-o Key=Value`, `-o Key Value`, `-oKey=Value`, and `-J JUMP` and `-i KEYFILE` as the options they
 * stand for (ProxyJump, IdentityFile); keys lower-cased as OpenSSH treats them. Flags that change
 * nothing baton needs (-C, -q, -v, -A, -T…) are passed over; `-F` is refused: baton would
 * otherwise dial the address directly, without the jump host or key that file names.
 */
export function sshOptions(args: string): Map<string, string> {
  const out = new Map<string, string>();
  const words = splitWords(args);
  for (let i = 0; i < words.length; i++) {
    let w = words[i]!;
    const flag = w.slice(0, 2);
    if (FLAG_OPTIONS[flag]) {
      const value = w.length > 2 ? w.slice(2) : words[++i];
      if (value !== undefined && !out.has(FLAG_OPTIONS[flag]!)) out.set(FLAG_OPTIONS[flag]!, value);
      continue;
    }
    if (flag === '-F') {
      throw new Error(`ssh's -F (another config file) in ansible_ssh_common_args/ansible_ssh_extra_args is not supported: put what it says in ~/.ssh/config, or give it as -o options`);
    }
    if (w === '-o') w = words[++i] ?? '';
    else if (w.startsWith('-o')) w = w.slice(2);
    else {
      if (IGNORED_VALUE_FLAGS.has(w)) i++;
      continue;
    }
    const m = /^([A-Za-z]+)(?:\s*=\s*|\s+)(.*)$/.exec(w) ?? (words[i + 1] !== undefined && /^[A-Za-z]+$/.test(w) ? [w, w, words[++i]!] : null);
    if (m) out.set(m[1]!.toLowerCase(), m[2]!);
  }
  return out;
}

/** Shell-like split with single and double quotes, enough for ssh option strings. */
function splitWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  let has = false;
  for (const c of s) {
    if (quote) {
      if (c === quote) quote = null;
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else cur += c;
  }
  if (has || cur) out.push(cur);
  return out;
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}
