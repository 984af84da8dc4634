/**
 * Resolves how to reach a host from the inventory's ConnectionSpec and OpenSSH client
 * config (parsed by the `ssh-config` package). As with Ansible, values the inventory sets
 * explicitly win; the config fills in the rest. Like `ssh ADDRESS`, config `Host` blocks
 * are matched against the address (ansible_host), and the first value obtained wins.
 */
import { readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import SSHConfig from 'ssh-config';
import type { ConnectionSpec } from '../inventory/model.js';

export interface ResolvedTarget {
  /** Inventory name, for messages. */
  host: string;
  /** What we connect to (config HostName, else the address). */
  hostName: string;
  port: number;
  user: string;
  /** Candidate keys, most specific first; missing files are skipped at auth time. */
  identityFiles: string[];
  /** Whether identityFiles came from the inventory or config rather than OpenSSH's defaults. */
  explicitIdentity: boolean;
  password?: string;
  /** Files to read for host keys. The first is where accept-new writes. */
  knownHostsFiles: string[];
  hostKeyChecking: 'strict' | 'accept-new';
  connectTimeoutMs?: number;
  /** Hops to go through, first hop first. */
  jumps: ResolvedTarget[];
}

export interface ResolveOptions {
  /** ssh client config file; undefined = ~/.ssh/config, null = none. */
  sshConfigFile?: string | null;
  /** Overrides everything else when true (the CLI's --accept-new). */
  acceptNewHostKeys?: boolean;
}

type Computed = Record<string, string | string[]>;

const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];
const GLOBAL_KNOWN_HOSTS = '/etc/ssh/ssh_known_hosts';

export function loadSshConfig(file: string | null | undefined): SSHConfig | undefined {
  const path = file === undefined ? join(homedir(), '.ssh', 'config') : file;
  if (path === null) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && file === undefined) return undefined;
    throw new Error(`cannot read ssh config ${path}: ${(e as Error).message}`);
  }
  return SSHConfig.parse(text);
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function all(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  // UserKnownHostsFile takes several space-separated files in one line.
  return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(/\s+/)).filter(Boolean);
}

/** ssh_config(5) TOKENS and `~`, the subset that makes sense for file names. */
function expandPath(p: string, t: { host: string; hostName: string; port: number; user: string }): string {
  const home = homedir();
  const out = p.replace(/%([%dhpru])/g, (_, c: string) => {
    switch (c) {
      case '%':
        return '%';
      case 'd':
        return home;
      case 'h':
        return t.hostName;
      case 'p':
        return String(t.port);
      case 'r':
        return t.user;
      case 'u':
        return userInfo().username;
      default:
        return t.host;
    }
  });
  if (out === '~') return home;
  if (out.startsWith('~/')) return join(home, out.slice(2));
  return resolvePath(out);
}

function strictFromConfig(v: string | undefined): 'strict' | 'accept-new' | undefined {
  if (v === undefined) return undefined;
  // `no`/`off` in OpenSSH also accept changed keys; baton never does, so they mean accept-new here.
  return ['accept-new', 'no', 'off'].includes(v.toLowerCase()) ? 'accept-new' : 'strict';
}

/** `[user@]host[:port]` or `ssh://[user@]host[:port]`. */
export function parseJump(s: string): { user?: string; host: string; port?: number } {
  let rest = s.replace(/^ssh:\/\//, '');
  let user: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  let port: number | undefined;
  const m = /^\[(.+)\](?::(\d+))?$/.exec(rest) ?? /^([^:]+)(?::(\d+))?$/.exec(rest);
  if (!m) throw new Error(`cannot parse ProxyJump hop "${s}"`);
  if (m[2]) port = Number(m[2]);
  return { user, host: m[1]!, port };
}

export function resolveTarget(spec: ConnectionSpec, opts: ResolveOptions = {}, config = loadSshConfig(opts.sshConfigFile), depth = 0): ResolvedTarget {
  if (depth > 8) throw new Error(`ProxyJump chain for ${spec.host} is longer than 8 hops (a loop?)`);
  const c: Computed = config ? config.compute(spec.address, { ignoreCase: true, matchExec: false }) : {};
  const hostName = first(c.hostname) ?? spec.address;
  const port = spec.port ?? (first(c.port) ? Number(first(c.port)) : 22);
  const user = spec.user ?? first(c.user) ?? userInfo().username;
  const tok = { host: spec.address, hostName, port, user };

  const explicitIdentity = spec.privateKeyFile !== undefined || c.identityfile !== undefined;
  const identityFiles = spec.privateKeyFile
    ? [expandPath(spec.privateKeyFile, tok)]
    : c.identityfile
      ? all(c.identityfile).map((f) => expandPath(f, tok))
      : DEFAULT_IDENTITIES.map((n) => join(homedir(), '.ssh', n));

  const userFiles = c.userknownhostsfile
    ? all(c.userknownhostsfile).filter((f) => f !== 'none').map((f) => expandPath(f, tok))
    : [join(homedir(), '.ssh', 'known_hosts')];
  const knownHostsFiles = [...(spec.knownHostsFile ? [expandPath(spec.knownHostsFile, tok)] : []), ...userFiles, GLOBAL_KNOWN_HOSTS];

  const hostKeyChecking = opts.acceptNewHostKeys
    ? 'accept-new'
    : (spec.hostKeyChecking ?? strictFromConfig(first(c.stricthostkeychecking)) ?? 'strict');

  const connectTimeoutMs = spec.connectTimeoutMs ?? (first(c.connecttimeout) ? Number(first(c.connecttimeout)) * 1000 : undefined);

  const jumpValue = first(c.proxyjump);
  const jumps: ResolvedTarget[] = [];
  if (jumpValue && jumpValue.toLowerCase() !== 'none') {
    const hops = jumpValue.split(',').map((h) => h.trim()).filter(Boolean);
    // The last hop is the one that reaches the target; earlier hops are its own jumps,
    // each resolved through the config like `ssh -J` does.
    for (const hop of hops) {
      const j = parseJump(hop);
      const hopSpec: ConnectionSpec = {
        host: j.host,
        connection: 'ssh',
        address: j.host,
        port: j.port,
        user: j.user,
        knownHostsFile: spec.knownHostsFile,
        hostKeyChecking: spec.hostKeyChecking,
        connectTimeoutMs: spec.connectTimeoutMs,
      };
      const r = resolveTarget(hopSpec, opts, config, depth + 1);
      // A hop listed in a chain is reached through the hops before it, not its own ProxyJump.
      jumps.push({ ...r, jumps: jumps.length === 0 ? r.jumps : [] });
    }
  }

  return {
    host: spec.host,
    hostName,
    port,
    user,
    identityFiles,
    explicitIdentity,
    password: spec.password,
    knownHostsFiles,
    hostKeyChecking,
    connectTimeoutMs,
    jumps,
  };
}
