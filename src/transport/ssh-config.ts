/**
 * Resolves how to reach a host from the inventory's ConnectionSpec and the OpenSSH client
 * config. As with Ansible, values the inventory sets explicitly win; the config fills in the
 * rest. Like `ssh ADDRESS`, the config is matched against the address (ansible_host).
 *
 * When OpenSSH's client is installed the config is resolved by OpenSSH itself, `ssh -G`, so
 * that Include, Match (host, originalhost, user, exec…), tokens, canonicalisation and
 * /etc/ssh/ssh_config are understood exactly as `ssh` understands them; the inventory's values
 * go in as `-p`, `-l` and `-o` (ansible_ssh_common_args), which win over the config files in
 * OpenSSH too. Without it, the `ssh-config` package's parser is the fallback (no Include, no
 * Match).
 */
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir, hostname as localHostname, userInfo } from 'node:os';
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
  /** ProxyCommand with its tokens expanded: run through /bin/sh, its stdio carries the connection. */
  proxyCommand?: string;
  /** `ssh -G` (OpenSSH's own resolution) or the built-in parser. */
  resolvedBy?: 'ssh -G' | 'parser';
}

export interface ResolveOptions {
  /** ssh client config file; undefined = ~/.ssh/config, null = none. */
  sshConfigFile?: string | null;
  /** Overrides everything else when true (the CLI's --accept-new). */
  acceptNewHostKeys?: boolean;
  /** The ssh client binary for `ssh -G`; null = never use it (the parser only). Default: `ssh` on PATH. */
  sshBinary?: string | null;
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

/** A ProxyJump hop (`[user@]host[:port]`) as a connection of its own, with the target's host key rules. */
function jumpSpec(hop: string, target: ConnectionSpec): ConnectionSpec {
  const j = parseJump(hop);
  return {
    host: j.host,
    connection: 'ssh',
    address: j.host,
    port: j.port,
    user: j.user,
    knownHostsFile: target.knownHostsFile,
    hostKeyChecking: target.hostKeyChecking,
    connectTimeoutMs: target.connectTimeoutMs,
  };
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

export function resolveTarget(spec: ConnectionSpec, opts: ResolveOptions = {}, depth = 0): ResolvedTarget {
  if (depth > 8) throw new Error(`ProxyJump chain for ${spec.host} is longer than 8 hops (a loop?)`);
  const g = opts.sshBinary === null ? undefined : sshG(spec, opts);
  if (g) return fromSshG(spec, g, opts, depth);
  return resolveWithParser(spec, opts, loadSshConfig(opts.sshConfigFile), depth);
}

function resolveWithParser(spec: ConnectionSpec, opts: ResolveOptions, config: SSHConfig | undefined, depth: number): ResolvedTarget {
  if (depth > 8) throw new Error(`ProxyJump chain for ${spec.host} is longer than 8 hops (a loop?)`);
  // The inventory's -o options (and -J, -i) are ssh's command line: they win over the config.
  const cmdline: Computed = {};
  for (const o of spec.sshOptions ?? []) {
    const eq = o.indexOf('=');
    if (eq > 0) cmdline[o.slice(0, eq).toLowerCase()] ??= o.slice(eq + 1);
  }
  const c: Computed = { ...(config ? config.compute(spec.address, { ignoreCase: true, matchExec: false }) : {}), ...cmdline };
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
      const r = resolveWithParser(jumpSpec(hop, spec), opts, config, depth + 1);
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
    proxyCommand: jumps.length === 0 ? proxyCommandOf(first(c.proxycommand), { host: spec.address, hostName, port, user }) : undefined,
    resolvedBy: 'parser',
  };
}

const OPENSSH_DEFAULT_IDENTITIES = ['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk', 'id_xmss', 'id_dsa'].map((n) => `~/.ssh/${n}`);

function sshGArgs(spec: ConnectionSpec, opts: ResolveOptions): string[] {
  const args = ['-G'];
  if (opts.sshConfigFile === null) args.push('-F', '/dev/null');
  else if (opts.sshConfigFile !== undefined) args.push('-F', opts.sshConfigFile);
  if (spec.port !== undefined) args.push('-p', String(spec.port));
  if (spec.user !== undefined) args.push('-l', spec.user);
  for (const o of spec.sshOptions ?? []) args.push('-o', o);
  args.push('--', spec.address);
  return args;
}

/** What `ssh -G` printed, or why it failed (undefined: ssh is not installed). */
function parseSshG(
  spec: ConnectionSpec,
  opts: ResolveOptions,
  args: string[],
  r: { error?: Error; status: number | null; stdout: string; stderr: string },
): Map<string, string[]> | undefined {
  const bin = opts.sshBinary ?? 'ssh';
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`\`${bin} ${args.join(' ')}\` failed: ${r.error.message}`);
  }
  if (r.status !== 0) {
    const why = r.stderr.trim().split('\n').filter((l) => !/pseudo-terminal/i.test(l)).join('; ');
    if (/can't open user config file|no such file/i.test(why)) throw new Error(`cannot read ssh config ${opts.sshConfigFile ?? '~/.ssh/config'}: ${why}`);
    throw new Error(`OpenSSH could not resolve its config for ${spec.address} (\`${bin} ${args.join(' ')}\` exited ${r.status}): ${why}`);
  }
  const out = new Map<string, string[]>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const k = m[1]!.toLowerCase();
    out.set(k, [...(out.get(k) ?? []), m[2]!]);
  }
  return out;
}

/** `ssh -G ADDRESS` with the inventory's values on the command line; undefined when ssh is not installed. */
function sshG(spec: ConnectionSpec, opts: ResolveOptions): Map<string, string[]> | undefined {
  const args = sshGArgs(spec, opts);
  const r = spawnSync(opts.sshBinary ?? 'ssh', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  return parseSshG(spec, opts, args, { error: r.error, status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' });
}

/**
 * resolveTarget without blocking: `ssh -G` costs ~10-20 ms, and a run opens all its hosts in
 * parallel, so their resolutions overlap instead of queueing on the event loop.
 */
export async function resolveTargetAsync(spec: ConnectionSpec, opts: ResolveOptions = {}): Promise<ResolvedTarget> {
  if (opts.sshBinary === null) return resolveTarget(spec, opts);
  const args = sshGArgs(spec, opts);
  const r = await new Promise<{ error?: Error; status: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(opts.sshBinary ?? 'ssh', args, { encoding: 'utf8', timeout: 10_000 }, (error, stdout, stderr) => {
      const code = error && typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : error ? null : 0;
      resolve({ error: error && code === null ? error : undefined, status: code, stdout, stderr });
    });
  });
  const g = parseSshG(spec, opts, args, r);
  if (!g) return resolveWithParser(spec, opts, loadSshConfig(opts.sshConfigFile), 0);
  return fromSshG(spec, g, opts, 0);
}

function fromSshG(spec: ConnectionSpec, g: Map<string, string[]>, opts: ResolveOptions, depth: number): ResolvedTarget {
  const one = (k: string): string | undefined => {
    const v = g.get(k)?.[0];
    return v === undefined || v === 'none' ? undefined : v;
  };
  const hostName = one('hostname') ?? spec.address;
  const port = spec.port ?? Number(one('port') ?? 22);
  const user = spec.user ?? one('user') ?? userInfo().username;
  const tok = { host: spec.address, hostName, port, user };
  const fromConfig = g.get('identityfile') ?? [];
  const configured = fromConfig.length > 0 && fromConfig.join('\n') !== OPENSSH_DEFAULT_IDENTITIES.join('\n');
  const identityFiles = spec.privateKeyFile
    ? [expandPath(spec.privateKeyFile, tok)]
    : configured
      ? fromConfig.map((f) => expandPath(f, tok))
      : DEFAULT_IDENTITIES.map((n) => join(homedir(), '.ssh', n));
  const userFiles = all(one('userknownhostsfile')).map((f) => expandPath(f, tok));
  const globalFiles = all(one('globalknownhostsfile'));
  const knownHostsFiles = [...(spec.knownHostsFile ? [expandPath(spec.knownHostsFile, tok)] : []), ...userFiles, ...(globalFiles.length ? globalFiles : [GLOBAL_KNOWN_HOSTS])];
  const strict = one('stricthostkeychecking');
  const hostKeyChecking = opts.acceptNewHostKeys
    ? 'accept-new'
    : (spec.hostKeyChecking ?? (strict && ['false', 'no', 'off', 'accept-new'].includes(strict.toLowerCase()) ? 'accept-new' : 'strict'));
  const ct = one('connecttimeout');
  const connectTimeoutMs = spec.connectTimeoutMs ?? (ct && /^\d+$/.test(ct) ? Number(ct) * 1000 : undefined);

  const jumps: ResolvedTarget[] = [];
  const jumpValue = one('proxyjump');
  if (jumpValue) {
    for (const hop of jumpValue.split(',').map((h) => h.trim()).filter(Boolean)) {
      const r = resolveTarget(jumpSpec(hop, spec), opts, depth + 1);
      // A hop listed in a chain is reached through the hops before it, not its own ProxyJump.
      jumps.push({ ...r, jumps: jumps.length === 0 ? r.jumps : [], proxyCommand: jumps.length === 0 ? r.proxyCommand : undefined });
    }
  }
  return {
    host: spec.host,
    hostName,
    port,
    user,
    identityFiles,
    explicitIdentity: spec.privateKeyFile !== undefined || configured,
    password: spec.password,
    knownHostsFiles,
    hostKeyChecking,
    connectTimeoutMs,
    jumps,
    proxyCommand: jumps.length ? undefined : proxyCommandOf(one('proxycommand'), tok),
    resolvedBy: 'ssh -G',
  };
}

/** Values that may go into a ProxyCommand: a host or user name, never shell syntax. */
const SAFE_TOKEN_VALUE = /^[A-Za-z0-9._:@+\-[\]]+$/;

/**
 * ProxyCommand's tokens (ssh_config(5) TOKENS: %% %h %n %p %r %u %d %L %l), expanded as ssh
 * does before running it. The command line is the operator's own config; a value put into it
 * (a host or user name from the inventory) is refused if it holds anything but name characters.
 */
export function proxyCommandOf(cmd: string | undefined, t: { host: string; hostName: string; port: number; user: string }): string | undefined {
  if (!cmd || cmd.toLowerCase() === 'none') return undefined;
  const safe = (what: string, v: string): string => {
    if (!SAFE_TOKEN_VALUE.test(v)) throw new Error(`refusing to put ${what} ${JSON.stringify(v)} into ProxyCommand \`${cmd}\`: it holds characters a shell would interpret`);
    return v;
  };
  return cmd.replace(/%(.)/g, (_, c: string) => {
    switch (c) {
      case '%':
        return '%';
      case 'h':
        return safe('host name', t.hostName);
      case 'n':
        return safe('host', t.host);
      case 'p':
        return String(t.port);
      case 'r':
        return safe('user', t.user);
      case 'u':
        return safe('local user', userInfo().username);
      case 'd':
        return safe('home directory', homedir());
      case 'L':
        return safe('local host name', localHostname().split('.')[0]!);
      case 'l':
        return safe('local host name', localHostname());
      default:
        throw new Error(`ProxyCommand \`${cmd}\` uses token %${c}, which baton does not expand`);
    }
  });
}
