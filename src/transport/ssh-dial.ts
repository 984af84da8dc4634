/**
 * Opening authenticated, host-key-checked ssh2 connections, through ProxyJump hops if the
 * config says so. Every failure becomes an UnreachableError that says what to do about it.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, AuthHandlerMiddleware, ConnectConfig, NextAuthHandler } from 'ssh2';
import { UnreachableError } from './transport.js';
import type { ResolvedTarget } from './ssh-config.js';
import {
  appendKnownHost,
  checkHostKey,
  fingerprint,
  keyTypeOf,
  knownHostsName,
  loadKnownHosts,
  type HostKeyVerdict,
} from './known-hosts.js';

const { Client, utils } = ssh2;
export type SshClient = InstanceType<typeof Client>;

export interface DialOptions {
  keepaliveIntervalMs?: number;
  log?: (msg: string) => void;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** ssh2's default host key preference (lib/protocol/constants.js), reordered below. */
const HOST_KEY_ALGOS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

function algosForKeyType(t: string): string[] {
  return t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t];
}

function where(t: ResolvedTarget): string {
  return `${t.user}@${t.hostName}:${t.port}`;
}

/**
 * Put key types we already know for this host first, as OpenSSH does, so a host with an
 * RSA key on file is not refused for offering ed25519 first.
 */
function hostKeyPreference(known: string[]): ConnectConfig['algorithms'] {
  if (known.length === 0) return undefined;
  const first = [...new Set(known.flatMap(algosForKeyType))].filter((a) => HOST_KEY_ALGOS.includes(a));
  return { serverHostKey: [...first, ...HOST_KEY_ALGOS.filter((a) => !first.includes(a))] as never };
}

function describeRefusal(t: ResolvedTarget, name: string, key: Buffer, v: HostKeyVerdict): string {
  const offered = `${keyTypeOf(key)} ${fingerprint(key)}`;
  switch (v.status) {
    case 'revoked':
      return (
        `host key of ${t.host} (${name}) is REVOKED: the server offered ${offered}, ` +
        `marked @revoked at ${v.entry.file}:${v.entry.line}. Refusing to connect; find out why the key was revoked before going on.`
      );
    case 'mismatch': {
      const exp = v.expected.map((e) => `${e.keyType} ${fingerprint(e.key)} (${e.file}:${e.line})`).join(', ');
      return (
        `HOST KEY CHANGED for ${t.host} (${name}): expected ${exp}, but the server offered ${offered}. ` +
        `This is either a reinstalled node or someone in the middle. Refusing to connect. ` +
        `If the change is expected, verify the new fingerprint out of band, then remove the old line ` +
        `(ssh-keygen -R '${name}' -f ${v.expected[0]!.file}) and add the new key.`
      );
    }
    case 'unknown': {
      const other = v.otherTypes.length
        ? ` (known_hosts has only ${[...new Set(v.otherTypes.map((e) => e.keyType))].join(', ')} for it, at ${v.otherTypes[0]!.file}:${v.otherTypes[0]!.line})`
        : '';
      return (
        `no known host key for ${t.host} (${name}) in ${t.knownHostsFiles.join(', ')}${other}; the server offered ${offered}. ` +
        `Add it with ssh-keyscan -p ${t.port} ${t.hostName} >> ${t.knownHostsFiles[0]} (after checking the fingerprint) or run with --accept-new.`
      );
    }
    default:
      return `host key of ${t.host} refused`;
  }
}

function authHandler(t: ResolvedTarget, log: (m: string) => void): AuthHandlerMiddleware {
  const methods: AnyAuthMethod[] = [];
  const keyMethods: AnyAuthMethod[] = [];
  for (const file of t.identityFiles) {
    let text: Buffer;
    try {
      text = readFileSync(file);
    } catch (e) {
      if (t.explicitIdentity) log(`${t.host}: cannot read identity file ${file}: ${(e as Error).message}`);
      continue;
    }
    const parsed = utils.parseKey(text);
    if (parsed instanceof Error) {
      // Most often an encrypted key: baton cannot prompt for a passphrase; use ssh-agent for those.
      log(`${t.host}: skipping identity file ${file}: ${parsed.message}`);
      continue;
    }
    keyMethods.push({ type: 'publickey', username: t.user, key: text });
  }
  const agent = process.env.SSH_AUTH_SOCK;
  const agentMethod: AnyAuthMethod[] = agent ? [{ type: 'agent', username: t.user, agent }] : [];
  // An explicitly named key goes first (it is what the operator asked for); otherwise the agent
  // first, like OpenSSH, since it usually holds the key that works.
  if (t.explicitIdentity) methods.push(...keyMethods, ...agentMethod);
  else methods.push(...agentMethod, ...keyMethods);
  if (t.password !== undefined) methods.push({ type: 'password', username: t.user, password: t.password });
  let i = 0;
  return (_left: string[] | null, _partial: boolean | null, next: NextAuthHandler) => {
    next((methods[i++] ?? false) as AnyAuthMethod);
  };
}

function unreachable(t: ResolvedTarget, what: string, todo: string, via?: string, answered = false): UnreachableError {
  return new UnreachableError(t.host, `cannot reach ${t.host} at ${where(t)}${via ? ` via ${via}` : ''}: ${what}. ${todo}`, answered);
}

function explainError(t: ResolvedTarget, err: Error & { code?: string; level?: string }, via?: string): UnreachableError {
  const code = err.code ?? '';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return unreachable(t, `DNS lookup of ${t.hostName} failed (${code})`, 'Check the name or set ansible_host to its address.', via);
  if (code === 'ECONNREFUSED')
    // Through a jump host, the refusal may be the jump's: only a direct refusal is the node's answer.
    return unreachable(t, 'connection refused', `Is sshd running and listening on port ${t.port}?`, via, via === undefined);
  // Accepted, then closed or reset by the far end before the handshake ended (sshd's MaxStartups
  // or penalties, TCP wrappers): something answered; directly, that is the node.
  if (code === 'ECONNRESET' || /^Connection lost before handshake/.test(err.message))
    return unreachable(t, code === 'ECONNRESET' ? 'the connection was reset' : 'the connection was closed before the SSH handshake', `Check sshd on port ${t.port} and the sshd log (MaxStartups, PerSourcePenalties, TCP wrappers).`, via, via === undefined);
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH')
    return unreachable(t, `no route to host (${code})`, 'Check the node is up and the network between here and it.', via);
  if (code === 'ETIMEDOUT' || err.level === 'client-timeout')
    return unreachable(t, 'timed out while connecting', 'Is the node up? Is a firewall dropping port ' + t.port + '?', via);
  if (err.level === 'client-authentication') {
    const tried = [
      ...t.identityFiles.filter((f) => {
        try {
          readFileSync(f);
          return true;
        } catch {
          return false;
        }
      }),
      ...(process.env.SSH_AUTH_SOCK ? ['ssh-agent'] : []),
      ...(t.password !== undefined ? ['password'] : []),
    ];
    return unreachable(
      t,
      `authentication as ${t.user} failed (tried: ${tried.join(', ') || 'nothing: no key file, no agent, no password'})`,
      'Check ansible_user and ansible_ssh_private_key_file, or load the key into ssh-agent.',
      via,
      true,
    );
  }
  return unreachable(t, err.message, 'Check the node and its sshd log.', via);
}

/** One connection, over `sock` when a jump host carries it. */
function openClient(t: ResolvedTarget, opts: DialOptions, sock?: Duplex, via?: string): Promise<SshClient> {
  const log = opts.log ?? (() => {});
  const entries = loadKnownHosts(t.knownHostsFiles);
  const name = knownHostsName(t.hostName, t.port);
  const knownTypes = entries
    .filter((e) => e.marker === undefined)
    .filter((e) => checkHostKey([e], [name], e.key).status === 'known')
    .map((e) => e.keyType);

  return new Promise((resolve, reject) => {
    const client = new Client();
    let refusal: string | undefined;
    let settled = false;
    const fail = (e: UnreachableError) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(e);
    };
    client.on('ready', () => {
      settled = true;
      // Every step is a few small request/response round trips: with Nagle's algorithm on, each
      // waits out the peer's delayed ACK (~40 ms here). OpenSSH sets TCP_NODELAY too.
      client.setNoDelay(true);
      resolve(client);
    });
    client.on('error', (err: Error & { code?: string; level?: string }) => {
      if (refusal) fail(new UnreachableError(t.host, refusal, true));
      else fail(explainError(t, err, via));
    });
    // Closed by the far end before the handshake ended (sshd's MaxStartups or penalties, TCP
    // wrappers): something answered; directly, that is the node.
    client.on('close', () => fail(unreachable(t, 'the connection closed during the handshake', 'Check the sshd log on the node.', via, via === undefined)));

    client.connect({
      host: t.hostName,
      port: t.port,
      username: t.user,
      sock: sock as never,
      readyTimeout: t.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      keepaliveInterval: opts.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: 3,
      algorithms: hostKeyPreference(knownTypes),
      authHandler: authHandler(t, log),
      hostVerifier: (key: Buffer) => {
        const v = checkHostKey(entries, [name], key);
        if (v.status === 'known') return true;
        if (v.status === 'unknown' && v.otherTypes.length === 0 && t.hostKeyChecking === 'accept-new') {
          const file = t.knownHostsFiles[0]!;
          appendKnownHost(file, name, key);
          log(`${t.host}: accepted new host key ${keyTypeOf(key)} ${fingerprint(key)} for ${name}, added to ${file}`);
          return true;
        }
        refusal = describeRefusal(t, name, key, v);
        return false;
      },
    });
  });
}

function forwardOut(client: SshClient, through: ResolvedTarget, to: ResolvedTarget): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    client.forwardOut('127.0.0.1', 0, to.hostName, to.port, (err, stream) => {
      if (err)
        reject(
          unreachable(
            to,
            `jump host ${through.host} could not open a connection to it (${err.message})`,
            `Check that ${through.hostName} can reach ${to.hostName}:${to.port} and allows TCP forwarding.`,
            undefined,
            // "Connection refused": the jump reached the node and the node refused: it answered.
            /connection refused/i.test(err.message),
          ),
        );
      else resolve(stream);
    });
  });
}

/**
 * ProxyCommand, run as OpenSSH runs it (`exec COMMAND` by /bin/sh), its stdin and stdout
 * handed to ssh2 as the connection's socket. What it prints on stderr is kept for the error
 * message if the connection fails; the process is killed when the connection closes.
 */
function proxySocket(t: ResolvedTarget, log: (m: string) => void): { sock: Duplex; stderr: () => string; kill: () => void } {
  const cmd = t.proxyCommand!;
  const child = spawn('/bin/sh', ['-c', `exec ${cmd}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b: Buffer) => {
    err = (err + b.toString('utf8')).slice(-2000);
  });
  const sock = new Duplex({
    read() {
      child.stdout.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      if (!child.stdin.writable) return cb();
      child.stdin.write(chunk, () => cb());
    },
    final(cb) {
      child.stdin.end();
      cb();
    },
    destroy(e, cb) {
      child.kill();
      cb(e);
    },
  });
  child.stdin.on('error', () => {});
  child.stdout.on('data', (b: Buffer) => {
    if (!sock.push(b)) child.stdout.pause();
  });
  child.stdout.on('end', () => sock.push(null));
  child.on('error', (e) => sock.destroy(e));
  child.on('exit', (code, signal) => {
    if (code !== 0 && code !== null) log(`${t.host}: ProxyCommand \`${cmd}\` exited ${code}: ${err.trim()}`);
    void signal;
  });
  return { sock, stderr: () => err.trim(), kill: () => child.kill() };
}

/** One connection over a ProxyCommand (or directly); its failure carries what the command said. */
async function openDirectOrProxied(t: ResolvedTarget, opts: DialOptions, sock?: Duplex, via?: string): Promise<SshClient> {
  if (sock || !t.proxyCommand) return openClient(t, opts, sock, via);
  const p = proxySocket(t, opts.log ?? (() => {}));
  try {
    const c = await openClient(t, opts, p.sock, `ProxyCommand \`${t.proxyCommand}\``);
    c.on('close', () => p.kill());
    return c;
  } catch (e) {
    p.kill();
    const said = p.stderr();
    if (e instanceof UnreachableError && said) throw new UnreachableError(e.host, `${e.message} The ProxyCommand said: ${said}`);
    throw e;
  }
}

/**
 * Connects to `t`, through its ProxyJump hops (or its ProxyCommand) first. Returns every client
 * opened, the target's last; closing them in reverse order tears the chain down.
 */
export async function dial(t: ResolvedTarget, opts: DialOptions = {}): Promise<SshClient[]> {
  const chain: SshClient[] = [];
  try {
    let sock: Duplex | undefined;
    let via: string | undefined;
    for (let i = 0; i < t.jumps.length; i++) {
      const hop = t.jumps[i]!;
      if (i === 0 && hop.jumps.length > 0) chain.push(...(await dial(hop, opts)));
      else chain.push(await openDirectOrProxied(hop, opts, sock, via));
      const next = t.jumps[i + 1] ?? t;
      sock = await forwardOut(chain[chain.length - 1]!, hop, next);
      via = `jump host ${hop.host}`;
    }
    chain.push(await openDirectOrProxied(t, opts, sock, via));
    return chain;
  } catch (e) {
    for (const c of chain.reverse()) c.end();
    throw e;
  }
}
