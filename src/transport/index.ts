/**
 * Choosing and pooling transports. ssh.ts (and with it ssh2) is imported only when a host
 * actually needs SSH, so `validate`, `plan` and local-only runs start fast.
 */
import type { ConnectionSpec } from '../inventory/model.js';
import { LocalTransport } from './local.js';
import type { SshTransportOptions } from './ssh.js';
import { UnreachableError, type Transport } from './transport.js';

export type { ExecOptions, ExecResult, Transport } from './transport.js';
export { UnreachableError } from './transport.js';
export { LocalTransport } from './local.js';
export { quoteArg, quoteArgv } from './quote.js';
export { withBecome, becomeUser, withBecomeKeyword } from './become.js';
export type { SshTransportOptions } from './ssh.js';

export interface TransportOptions extends SshTransportOptions {
  /**
   * Hold SSH connections in the background keeper (keeper/main.ts) and reuse them across runs;
   * it exits after this many seconds without a request. Unset: connections die with the run.
   */
  persistSeconds?: number;
}

export async function openTransport(spec: ConnectionSpec, opts: TransportOptions = {}): Promise<Transport> {
  if (spec.connection === 'local') return new LocalTransport(spec.host, { killGraceMs: opts.killGraceMs, become: spec.become });
  if (opts.persistSeconds !== undefined && opts.persistSeconds > 0) {
    // The keeper client does not load ssh2: the keeper does, once, for every later run.
    const { KeeperTransport } = await import('./keeper/client.js');
    return new KeeperTransport(spec, { persistSeconds: opts.persistSeconds, acceptNewHostKeys: opts.acceptNewHostKeys });
  }
  const { SshTransport } = await import('./ssh.js');
  return new SshTransport(spec, opts);
}

/** How long a failed connect is remembered before the host is tried again. */
export const FAILED_CONNECT_MEMORY_MS = 30_000;

export interface ConnectFailure {
  host: string;
  error: Error;
}

/** One transport per inventory host, opened once and shared by every step that runs there. */
export class TransportPool {
  private readonly transports = new Map<string, Promise<Transport>>();
  /** Hosts known to be down (fenced), with why: reaching them fails at once. */
  private readonly down = new Map<string, string>();
  /** Recent connect failures: a peer check of a dead host waits out its timeout once, not per step. */
  private readonly failed = new Map<string, { error: unknown; until: number }>();

  constructor(
    private readonly connectionFor: (hostName: string) => ConnectionSpec,
    private readonly opts: TransportOptions = {},
  ) {}

  /** The connected transport for a host; concurrent callers share one connection attempt. */
  get(host: string): Promise<Transport> {
    const down = this.down.get(host);
    if (down) return Promise.reject(new UnreachableError(host, `${host} is down: ${down}`));
    const recent = this.failed.get(host);
    if (recent && recent.until > Date.now()) return Promise.reject(recent.error);
    let p = this.transports.get(host);
    if (!p) {
      p = (async () => {
        const t = await openTransport(this.connectionFor(host), this.opts);
        await t.connect();
        return t;
      })();
      this.transports.set(host, p);
      // A failed host may come back (a `get` after FAILED_CONNECT_MEMORY_MS retries) rather
      // than failing forever.
      p.catch((error: unknown) => {
        if (this.transports.get(host) === p) this.transports.delete(host);
        this.failed.set(host, { error, until: Date.now() + FAILED_CONNECT_MEMORY_MS });
      });
    }
    return p;
  }

  /** A fence confirmed the host off (reason), or it is back (null). */
  markDown(host: string, reason: string | null): void {
    if (reason === null) {
      this.down.delete(host);
      this.failed.delete(host);
      return;
    }
    this.down.set(host, reason);
    const open = this.transports.get(host);
    this.transports.delete(host);
    open?.then((t) => t.close()).catch(() => undefined);
  }

  /** Open every host in parallel. Never rejects: it reports all failures, not just the first. */
  async connectAll(hosts: Iterable<string>): Promise<{ ok: string[]; failed: ConnectFailure[] }> {
    const names = [...new Set(hosts)];
    const settled = await Promise.allSettled(names.map((h) => this.get(h)));
    const ok: string[] = [];
    const failed: ConnectFailure[] = [];
    settled.forEach((s, i) => {
      const host = names[i]!;
      if (s.status === 'fulfilled') ok.push(host);
      else {
        const e = s.reason instanceof Error ? s.reason : new Error(String(s.reason));
        failed.push({ host, error: e instanceof UnreachableError ? e : new UnreachableError(host, `cannot reach ${host}: ${e.message}`) });
      }
    });
    return { ok, failed };
  }

  async closeAll(): Promise<void> {
    const all = [...this.transports.values()];
    this.transports.clear();
    await Promise.allSettled(all.map(async (p) => (await p).close()));
  }
}
