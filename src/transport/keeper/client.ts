/**
 * KeeperTransport: a Transport whose SSH connection lives in the keeper process (main.ts), so
 * a `baton check` run every minute reuses connections instead of shaking hands each time.
 * This module must not import ssh2, directly or through ../ssh.js: skipping its load is half
 * of what persistence saves the CLI.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import path from 'node:path';
import type { ConnectionSpec } from '../../inventory/model.js';
import { scriptPath } from '../../util/paths.js';
import { UnreachableError, type ExecOptions, type ExecResult, type Transport } from '../transport.js';
import { ensureKeeperDir, keeperDir, pidPath, socketPath } from './paths.js';
import { lineReader, type ConnectOpts, type KeeperStatus, type Reply, type Request, type WireError } from './protocol.js';

/** How long a freshly spawned keeper gets to start listening. */
const SPAWN_WAIT_MS = 2000;
const MAIN = scriptPath(import.meta.url, 'transport/keeper/main.js');

export interface KeeperTransportOptions extends ConnectOpts {
  persistSeconds: number;
  /** The keeper directory; default stateDir()/keeper. */
  dir?: string;
}

type Pending = { resolve: (r: Reply) => void; reject: (e: Error) => void };

/** One socket connection to the keeper, with replies matched to requests by id. */
export class KeeperChannel {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private gone: Error | undefined;

  private constructor(private readonly sock: Socket) {
    // An idle connection to the keeper must not keep the CLI alive (a transport the pool
    // dropped without closing would hold it until the keeper exits): only pending requests do.
    sock.unref();
    sock.on(
      'data',
      lineReader(
        (msg) => {
          const r = msg as Reply;
          const p = this.pending.get(r.id);
          if (!p) return;
          this.pending.delete(r.id);
          if (this.pending.size === 0) this.sock.unref();
          p.resolve(r);
        },
        () => {},
      ),
    );
    sock.on('error', (e) => (this.gone ??= e));
    sock.on('close', () => {
      const why = this.gone?.message ?? 'it closed the connection';
      this.gone ??= new Error(why);
      for (const p of this.pending.values()) p.reject(new Error(`the baton keeper went away (${why})`));
      this.pending.clear();
    });
  }

  static open(file: string): Promise<KeeperChannel> {
    return new Promise((resolve, reject) => {
      const s = createConnection(file);
      s.once('connect', () => {
        s.removeAllListeners('error');
        resolve(new KeeperChannel(s));
      });
      s.once('error', reject);
    });
  }

  /** Sends a request; `onId` learns its id before the reply (to abort it). */
  request(body: Record<string, unknown> & { op: Request['op'] }, onId?: (id: number) => void): Promise<Reply> {
    if (this.gone) return Promise.reject(new Error(`the baton keeper went away (${this.gone.message})`));
    const id = this.nextId++;
    onId?.(id);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.sock.ref();
      this.sock.write(JSON.stringify({ id, ...body }) + '\n');
    });
  }

  /** Fire and forget (abort). */
  notify(body: Record<string, unknown>): void {
    if (!this.gone) this.sock.write(JSON.stringify({ id: this.nextId++, ...body }) + '\n');
  }

  close(): void {
    this.sock.end();
  }
}

/** Connects to the running keeper, or starts one and waits for its socket. */
export async function openKeeper(persistSeconds: number, dir = keeperDir()): Promise<KeeperChannel> {
  ensureKeeperDir(dir);
  const file = socketPath(dir);
  try {
    return await KeeperChannel.open(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // ENOENT: none yet; ECONNREFUSED: a socket left by a keeper that died (SIGKILL, reboot of /run).
    if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw new Error(`cannot reach the baton keeper at ${file}: ${(e as Error).message}`);
  }
  await startOnce(persistSeconds, dir, file);
  try {
    return await KeeperChannel.open(file);
  } catch (e) {
    throw new Error(`the baton keeper was started but refuses connections on ${file} (${(e as Error).message}); see ${path.join(dir, 'keeper.log')}, or run without --persist`);
  }
}

/** Every host of a run asks at once: spawn one keeper per run, not one per host. */
const starting = new Map<string, Promise<void>>();

function startOnce(persistSeconds: number, dir: string, file: string): Promise<void> {
  let p = starting.get(file);
  if (!p) {
    p = spawnKeeper(persistSeconds, dir, file).finally(() => starting.delete(file));
    starting.set(file, p);
  }
  return p;
}

async function spawnKeeper(persistSeconds: number, dir: string, file: string): Promise<void> {
  const child = spawn(process.execPath, [MAIN, file, String(persistSeconds)], { detached: true, stdio: 'ignore', cwd: '/' });
  child.unref();
  const end = Date.now() + SPAWN_WAIT_MS;
  let last: unknown;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 15));
    try {
      (await KeeperChannel.open(file)).close();
      return;
    } catch (e) {
      last = e;
    }
  }
  throw new Error(
    `started a baton keeper but it did not listen on ${file} within ${SPAWN_WAIT_MS / 1000} s (${(last as Error)?.message}); ` +
      `see ${path.join(dir, 'keeper.log')}, or run without --persist`,
  );
}

function toError(e: WireError, fallbackHost: string): Error {
  if (e.name === 'UnreachableError') return new UnreachableError(e.host ?? fallbackHost, e.message);
  if (e.name === 'TypeError') return new TypeError(e.message);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

/** Paths relative to where the CLI runs would mean something else in the keeper (its cwd is /). */
function absolute(spec: ConnectionSpec): ConnectionSpec {
  const s = { ...spec };
  if (s.privateKeyFile && !path.isAbsolute(s.privateKeyFile)) s.privateKeyFile = path.resolve(s.privateKeyFile);
  if (s.knownHostsFile && !path.isAbsolute(s.knownHostsFile)) s.knownHostsFile = path.resolve(s.knownHostsFile);
  return s;
}

export class KeeperTransport implements Transport {
  readonly kind = 'ssh' as const;
  readonly host: string;
  private readonly spec: ConnectionSpec;
  private channel: Promise<KeeperChannel> | undefined;

  constructor(
    spec: ConnectionSpec,
    private readonly opts: KeeperTransportOptions,
  ) {
    this.host = spec.host;
    this.spec = absolute(spec);
  }

  private wireOpts(): ConnectOpts {
    return { acceptNewHostKeys: this.opts.acceptNewHostKeys };
  }

  private keeper(): Promise<KeeperChannel> {
    if (!this.channel) {
      const p = openKeeper(this.opts.persistSeconds, this.opts.dir).catch((e: Error) => {
        if (this.channel === p) this.channel = undefined;
        throw new UnreachableError(this.host, `cannot reach ${this.host} through the connection keeper (--persist): ${e.message}`);
      });
      this.channel = p;
    }
    return this.channel;
  }

  async connect(): Promise<void> {
    const ch = await this.keeper();
    const r = await ch.request({ op: 'connect', spec: this.spec, opts: this.wireOpts() }).catch((e: Error) => {
      throw new UnreachableError(this.host, `cannot reach ${this.host}: ${e.message}`);
    });
    if ('error' in r) {
      // The pool forgets a transport whose connect failed, without closing it.
      await this.close();
      throw toError(r.error, this.host);
    }
  }

  async exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) throw new TypeError('exec: empty argv');
    const ch = await this.keeper();
    let id: number | undefined;
    const abort = () => {
      if (id !== undefined) ch.notify({ op: 'abort', target: id });
    };
    const stdin = opts.stdin === undefined ? undefined : (typeof opts.stdin === 'string' ? Buffer.from(opts.stdin, 'utf8') : opts.stdin).toString('base64');
    try {
      const r = await ch
        .request({ op: 'exec', spec: this.spec, opts: this.wireOpts(), argv, stdinB64: stdin, env: opts.env, timeoutMs: opts.timeoutMs, become: opts.become }, (i) => {
          id = i;
          if (opts.signal?.aborted) queueMicrotask(abort);
          else opts.signal?.addEventListener('abort', abort, { once: true });
        })
        .catch((e: Error) => {
          throw new UnreachableError(
            this.host,
            `lost the connection keeper while running \`${argv.join(' ')}\` on ${this.host}: ${e.message}. The command's outcome on the node is unknown.`,
          );
        });
      if ('error' in r) throw toError(r.error, this.host);
      if (!('result' in r)) throw new Error(`the baton keeper answered an exec on ${this.host} without a result; stop it with \`baton keeper stop\``);
      return r.result;
    } finally {
      opts.signal?.removeEventListener('abort', abort);
    }
  }

  /** Closes our side only: the keeper keeps the SSH connection for the next run. */
  async close(): Promise<void> {
    const p = this.channel;
    this.channel = undefined;
    if (p) (await p.catch(() => undefined))?.close();
  }
}

/** For `baton keeper status`: the running keeper's status, or null when none answers. */
export async function keeperStatus(dir = keeperDir()): Promise<KeeperStatus | null> {
  let ch: KeeperChannel;
  try {
    ch = await KeeperChannel.open(socketPath(dir));
  } catch {
    return null;
  }
  try {
    const r = await ch.request({ op: 'status' });
    return 'status' in r ? r.status : null;
  } finally {
    ch.close();
  }
}

/** The pid in the keeper's pid file, if any. */
export function keeperPid(dir = keeperDir()): number | null {
  try {
    const n = Number(readFileSync(pidPath(dir), 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}
