/**
 * The connection keeper: `node keeper/main.js SOCKET SECONDS`. Spawned detached by the first
 * `baton check --persist`, it holds SSH connections to the nodes so that later runs skip the
 * handshake (sshd forks and re-execs per connection, ~50 ms each). It exits by itself once no
 * request came for SECONDS, or on SIGTERM, closing every connection and removing its socket.
 *
 * Host keys are checked here, by the same SshTransport the CLI would use: a keeper adds no
 * way around known_hosts. Request payloads (stdin carries passwords) are never logged.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import path from 'node:path';
import type { ConnectionSpec } from '../../inventory/model.js';
import { SshTransport } from '../ssh.js';
import { lineReader, type ConnectOpts, type KeeperStatus, type Reply, type Request, type WireError } from './protocol.js';
import { checkKeeperDir } from './paths.js';

const [socketFile, secondsArg] = process.argv.slice(2);
const idleSeconds = Number(secondsArg);
if (!socketFile || !Number.isFinite(idleSeconds) || idleSeconds <= 0) {
  process.stderr.write('usage: keeper/main.js SOCKET SECONDS (idle time before it exits)\n');
  process.exit(2);
}
const dir = path.dirname(socketFile);
const pidFile = path.join(dir, 'keeper.pid');
const logFile = path.join(dir, 'keeper.log');
// The socket must be 0600 from the moment it exists, not after a chmod.
process.umask(0o077);

function log(msg: string): void {
  try {
    appendFileSync(logFile, `${new Date().toISOString()} keeper[${process.pid}] ${msg}\n`);
  } catch {
    // Logging must never take the keeper down.
  }
}

/** One transport per distinct way of reaching a node: any field that changes the connection changes the key. */
function keyOf(spec: ConnectionSpec, opts: ConnectOpts = {}): string {
  const sorted = Object.fromEntries(Object.entries(spec).sort(([a], [b]) => a.localeCompare(b)));
  return createHash('sha256').update(JSON.stringify([sorted, !!opts.acceptNewHostKeys])).digest('hex');
}

interface Held {
  transport: SshTransport;
  target: string;
  connected: boolean;
  lastUsedAt: number;
}

const held = new Map<string, Held>();
const startedAt = Date.now();
let lastRequestAt = Date.now();
let inFlight = 0;
let idleTimer: NodeJS.Timeout | undefined;
let shuttingDown = false;

function transportFor(spec: ConnectionSpec, opts?: ConnectOpts): Held {
  const key = keyOf(spec, opts);
  let h = held.get(key);
  if (!h) {
    h = {
      transport: new SshTransport(spec, { acceptNewHostKeys: opts?.acceptNewHostKeys, log: (m) => log(m) }),
      target: `${spec.user ? `${spec.user}@` : ''}${spec.address}${spec.port ? `:${spec.port}` : ''}`,
      connected: false,
      lastUsedAt: Date.now(),
    };
    held.set(key, h);
  }
  h.lastUsedAt = Date.now();
  return h;
}

function armIdle(): void {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    // A long command still running counts as use: do not cut it off.
    if (inFlight > 0) return armIdle();
    void shutdown(`idle for ${idleSeconds} s`);
  }, idleSeconds * 1000);
}

function wireError(e: unknown): WireError {
  const err = e instanceof Error ? e : new Error(String(e));
  return { name: err.name, host: (err as { host?: string }).host, message: err.message };
}

function serve(sock: Socket): void {
  const aborts = new Map<number, AbortController>();
  const send = (r: Reply) => {
    if (!sock.destroyed) sock.write(JSON.stringify(r) + '\n');
  };
  sock.on('error', () => {});
  // A CLI that went away mid-command (killed by cron's timeout, say) must not leave it running on the node.
  sock.on('close', () => {
    for (const ac of aborts.values()) ac.abort();
  });
  sock.on(
    'data',
    lineReader(
      (msg) => {
        lastRequestAt = Date.now();
        armIdle();
        void handle(msg as Request, send, aborts);
      },
      (why) => log(`dropped a request: ${why}`),
    ),
  );
}

async function handle(req: Request, send: (r: Reply) => void, aborts: Map<number, AbortController>): Promise<void> {
  const id = req?.id;
  if (typeof id !== 'number') return;
  switch (req.op) {
    case 'status': {
      const status: KeeperStatus = {
        pid: process.pid,
        idleSeconds,
        startedAt,
        lastRequestAt,
        connections: [...held.values()].map((h) => ({ host: h.transport.host, target: h.target, connected: h.connected, lastUsedAt: h.lastUsedAt })),
      };
      return send({ id, status });
    }
    case 'abort':
      aborts.get(req.target)?.abort();
      return;
    case 'connect': {
      const h = transportFor(req.spec, req.opts);
      inFlight++;
      try {
        await h.transport.connect();
        if (!h.connected) log(`connected to ${h.transport.host} (${h.target})`);
        h.connected = true;
        send({ id, ok: true });
      } catch (e) {
        h.connected = false;
        log(`cannot connect to ${h.transport.host} (${h.target}): ${(e as Error).message}`);
        send({ id, error: wireError(e) });
      } finally {
        inFlight--;
      }
      return;
    }
    case 'exec': {
      const h = transportFor(req.spec, req.opts);
      const ac = new AbortController();
      aborts.set(id, ac);
      inFlight++;
      try {
        const result = await h.transport.exec(req.argv, {
          stdin: req.stdinB64 === undefined ? undefined : Buffer.from(req.stdinB64, 'base64'),
          env: req.env,
          timeoutMs: req.timeoutMs,
          become: req.become,
          signal: ac.signal,
        });
        h.connected = true;
        send({ id, result });
      } catch (e) {
        if ((e as Error).name === 'UnreachableError') h.connected = false;
        send({ id, error: wireError(e) });
      } finally {
        aborts.delete(id);
        inFlight--;
      }
      return;
    }
    default:
      send({ id, error: { name: 'Error', message: `the baton keeper does not know the request ${JSON.stringify((req as { op?: unknown }).op)}; is it older than this baton? Stop it with \`baton keeper stop\`.` } });
  }
}

const server = createServer(serve);

async function shutdown(why: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  clearTimeout(idleTimer);
  log(`exiting: ${why}; closing ${held.size} connection(s)`);
  server.close();
  removeOwnFiles();
  await Promise.allSettled([...held.values()].map((h) => h.transport.close()));
  process.exit(0);
}

/** Remove the socket and pid file only while they are still ours: a newer keeper may have replaced them. */
function removeOwnFiles(): void {
  try {
    if (readFileSync(pidFile, 'utf8').trim() === String(process.pid)) {
      rmSync(socketFile!, { force: true });
      rmSync(pidFile, { force: true });
    }
  } catch {
    // No pid file: nothing of ours to remove.
  }
}

/** Is a keeper already answering on the socket? */
function alive(): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(socketFile!);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
// Detached with stdio ignored: a write to a closed stream must not kill it.
process.on('SIGPIPE', () => {});

try {
  checkKeeperDir(dir);
} catch (e) {
  log((e as Error).message);
  process.exit(1);
}
// Two CLI runs may both find no keeper and both start one: the second sees the first and leaves.
if (await alive()) process.exit(0);
try {
  if (statSync(socketFile).isSocket()) rmSync(socketFile);
} catch {
  // No stale socket.
}
server.once('error', (e) => {
  log(`cannot listen on ${socketFile}: ${e.message}`);
  process.exit(1);
});
server.listen(socketFile, () => {
  chmodSync(socketFile!, 0o600);
  writeFileSync(pidFile, `${process.pid}\n`);
  log(`listening on ${socketFile}, exits after ${idleSeconds} s without a request`);
  armIdle();
  // Two keepers started at the same instant can both listen, the later one replacing the
  // socket: the one whose socket is gone is unreachable, so it leaves instead of idling on.
  const ino = statSync(socketFile!).ino;
  setInterval(() => {
    let now: number | undefined;
    try {
      now = statSync(socketFile!).ino;
    } catch {
      // removed
    }
    if (now !== ino) void shutdown('its socket was replaced or removed');
  }, 2000).unref();
});
