import { request as httpsRequest } from 'node:https';

/**
 * A small etcd v3 client over etcd's JSON gRPC gateway (HTTP POST, keys and values base64,
 * 64-bit numbers as decimal strings). The paths are `/v3/...`: etcd 3.4 (Debian bookworm's
 * etcd-server) serves them and keeps `/v3beta` only as an alias; 3.5 and later serve only `/v3`
 * (etcd.io, dev-guide/api_grpc_gateway).
 *
 * Why not npm `etcd3`: it is the only full Node client, last released 2023, pulls in grpc-js and
 * protobufs, and its own release notes fix elections that elected two leaders. baton needs five
 * calls (range, put, txn, and lease grant/keep-alive/revoke) and guards every change with a
 * revision compare anyway; fetch does those with no new dependency.
 *
 * Several endpoints: a request goes to the endpoint that answered last; when that one cannot be
 * reached or has no quorum, to the next one. The error after all of them names each endpoint and
 * what it said, so "etcd" is in the message a person reads at 3 a.m.
 */

export interface EtcdKeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  /** The lease the key is attached to ('0': none). Kept a string: lease ids use all 64 bits. */
  lease: string;
}

export interface EtcdCompare {
  key: string;
  target: 'CREATE' | 'MOD' | 'VERSION' | 'VALUE' | 'LEASE';
  result: 'EQUAL' | 'NOT_EQUAL' | 'GREATER' | 'LESS';
  /** For CREATE/MOD/VERSION: a revision or version; for LEASE: a lease id; for VALUE: a string. */
  value: number | string;
}

export type EtcdOp =
  | { put: { key: string; value: string; lease?: string } }
  | { range: { key: string; prefix?: boolean } }
  | { delete: { key: string; prefix?: boolean } };

export interface EtcdTxnResult {
  succeeded: boolean;
  revision: number;
  /** One per op of the branch that ran; a range op's key-values, [] for the others. */
  responses: EtcdKeyValue[][];
}

/** etcd could not be asked, or said no: which endpoints, and what each one answered. */
export class EtcdError extends Error {
  constructor(
    message: string,
    /** gRPC status code when etcd answered with an error (5: not found, e.g. an expired lease). */
    readonly code?: number,
  ) {
    super(message);
    this.name = 'EtcdError';
  }
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/** The first key after every key starting with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i]!++;
      return end.toString('base64');
    }
  }
  return Buffer.from([0]).toString('base64');
}

interface RawKv {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
  lease?: string;
}

const kvOf = (r: RawKv): EtcdKeyValue => ({
  key: unb64(r.key),
  value: unb64(r.value),
  createRevision: Number(r.create_revision ?? 0),
  modRevision: Number(r.mod_revision ?? 0),
  version: Number(r.version ?? 0),
  lease: r.lease ?? '0',
});

function rangeBody(key: string, prefix?: boolean): Record<string, string> {
  return prefix ? { key: b64(key), range_end: prefixEnd(key) } : { key: b64(key) };
}

function compareBody(c: EtcdCompare): Record<string, string> {
  const field = { CREATE: 'create_revision', MOD: 'mod_revision', VERSION: 'version', VALUE: 'value', LEASE: 'lease' }[c.target];
  return { key: b64(c.key), target: c.target, result: c.result, [field]: c.target === 'VALUE' ? b64(String(c.value)) : String(c.value) };
}

function opBody(op: EtcdOp): Record<string, unknown> {
  if ('put' in op) return { request_put: { key: b64(op.put.key), value: b64(op.put.value), ...(op.put.lease ? { lease: op.put.lease } : {}) } };
  if ('range' in op) return { request_range: rangeBody(op.range.key, op.range.prefix) };
  return { request_delete_range: rangeBody(op.delete.key, op.delete.prefix) };
}

export type EtcdFetch = (url: string, init: { method: 'POST'; body: string; signal: AbortSignal; headers: Record<string, string> }) => Promise<{ status: number; text(): Promise<string> }>;

/** TLS for `etcds://` / https endpoints: PEM contents (the files were read by the caller, who names them in errors). */
export interface EtcdTls {
  /** The CA that signed etcd's server certificates (default: the system's CAs). */
  ca?: string;
  /** A client certificate and its key, for an etcd started with --client-cert-auth. */
  cert?: string;
  key?: string;
  /** Where these came from, for errors ("BATON_ETCD_CACERT=/etc/baton/etcd-ca.pem"). */
  source?: string;
}

/**
 * Node's fetch takes no CA or client certificate: https endpoints go through node:https. A
 * certificate etcd's server or the CA refuses is a TLS error, said as one (see tlsProblem).
 */
export function httpsFetch(tls: EtcdTls): EtcdFetch {
  return (url, init) =>
    new Promise((resolve, reject) => {
      const req = httpsRequest(url, { method: init.method, headers: init.headers, signal: init.signal, ca: tls.ca, cert: tls.cert, key: tls.key }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: async () => Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(init.body);
    });
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|EPROTO$)/;

/** A TLS failure's words for a person, or undefined when the error is not about TLS. */
export function tlsProblem(e: Error & { code?: string; cause?: { code?: string; message?: string } }): string | undefined {
  const code = e.code ?? e.cause?.code ?? '';
  const msg = e.cause?.message ?? e.message;
  if (!TLS_CODES.test(code) && !/certificate|ssl|tls/i.test(msg)) return undefined;
  const hint: Record<string, string> = {
    SELF_SIGNED_CERT_IN_CHAIN: "etcd's server certificate is not signed by the CA baton was given",
    DEPTH_ZERO_SELF_SIGNED_CERT: "etcd's server certificate is self-signed and not the CA baton was given",
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: "etcd's server certificate is not signed by the CA baton was given",
    UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "etcd's server certificate is not signed by the CA baton was given",
    CERT_HAS_EXPIRED: "etcd's server certificate has expired",
    ERR_TLS_CERT_ALTNAME_INVALID: "etcd's server certificate does not name this endpoint's host",
    // Alerts from etcd: it refused (or missed) this controller's client certificate.
    ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'etcd refused the client certificate (none was given, or its CA is not the one etcd trusts: BATON_ETCD_CERT/BATON_ETCD_KEY)',
    ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'etcd requires a client certificate and none was given (BATON_ETCD_CERT/BATON_ETCD_KEY)',
    ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: "etcd does not trust the CA of the client certificate",
    ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: 'etcd says the client certificate has expired',
  };
  return `TLS handshake failed: ${hint[code] ?? msg}${code ? ` (${code})` : ''}`;
}

export interface EtcdClientOptions {
  /** Per request and endpoint (default 3 s): a member without quorum hangs rather than answers. */
  timeoutMs?: number;
  /** Keep trying every endpoint in rounds for this long before giving up (default 5 s: a raft election or two). */
  retryMs?: number;
  /** Stand-in for fetch (unit tests). */
  fetch?: EtcdFetch;
  /** CA and client certificate for https endpoints. */
  tls?: EtcdTls;
}

/** Parse `etcd://h1:2379,h2:2379` (or `etcds://` for TLS, or http(s):// URLs) into endpoint URLs. */
export function parseEtcdEndpoints(spec: string): string[] {
  const m = /^(etcds?):\/\/(.*)$/.exec(spec.trim());
  const scheme = m?.[1] === 'etcds' ? 'https' : 'http';
  const list = (m ? m[2]! : spec).split(',').map((s) => s.trim()).filter(Boolean);
  if (!list.length) throw new EtcdError(`no etcd endpoint in "${spec}": expected etcd://host:port[,host:port…]`);
  return list.map((e) => (/^https?:\/\//.test(e) ? e.replace(/\/+$/, '') : `${scheme}://${e}`));
}

export class EtcdClient {
  private current = 0;
  private readonly timeoutMs: number;
  private readonly retryMs: number;
  private readonly doFetch: EtcdFetch;

  constructor(
    readonly endpoints: string[],
    o: EtcdClientOptions = {},
  ) {
    if (!endpoints.length) throw new EtcdError('no etcd endpoints given');
    this.timeoutMs = o.timeoutMs ?? 3000;
    this.retryMs = o.retryMs ?? 5000;
    const https = endpoints.some((e) => e.startsWith('https://')) ? httpsFetch(o.tls ?? {}) : undefined;
    this.doFetch = o.fetch ?? ((url, init) => (https && url.startsWith('https://') ? https(url, init) : fetch(url, init)));
    this.tlsSource = o.tls?.source;
  }

  private readonly tlsSource: string | undefined;

  /**
   * POST one gateway call, endpoint after endpoint. An answer with an HTTP error that is etcd's
   * own verdict (lease not found, compare failed: a 4xx) is final and not retried elsewhere;
   * unreachable, timed out or "no leader" (5xx) tries the next endpoint.
   */
  private async call<T>(path: string, body: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    // Rounds over every endpoint until the deadline: a member killed while it was the raft
    // leader leaves the others without a leader for about an election timeout.
    const deadline = Date.now() + this.retryMs;
    for (;;) {
      const tried: string[] = [];
      const answer = await this.round<T>(path, body, timeoutMs, tried);
      if (answer.ok) return answer.value;
      if (Date.now() >= deadline) throw new EtcdError(`etcd cannot be reached or has no quorum (${path}): ${tried.join('; ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  private async round<T>(path: string, body: unknown, timeoutMs: number, tried: string[]): Promise<{ ok: true; value: T } | { ok: false }> {
    for (let n = 0; n < this.endpoints.length; n++) {
      const i = (this.current + n) % this.endpoints.length;
      const url = `${this.endpoints[i]}${path}`;
      let status: number;
      let text: string;
      try {
        const r = await this.doFetch(url, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs), headers: { 'content-type': 'application/json' } });
        status = r.status;
        text = await r.text();
      } catch (e) {
        const err = e as Error & { code?: string; cause?: { code?: string } };
        // A certificate refused is not a member down: no other endpoint or retry will do better.
        const tls = tlsProblem(err);
        if (tls) throw new EtcdError(`etcd ${this.endpoints[i]}: ${tls}${this.tlsSource ? `; TLS files: ${this.tlsSource}` : ''}`);
        const why = err.name === 'TimeoutError' || err.name === 'AbortError' ? `no answer within ${timeoutMs / 1000} s (no quorum, or the member is stopped)` : (err.cause?.code ?? err.message);
        tried.push(`${this.endpoints[i]}: ${why}`);
        continue;
      }
      let parsed: { error?: string; message?: string; code?: number } & Record<string, unknown>;
      try {
        parsed = JSON.parse(text) as typeof parsed;
      } catch {
        tried.push(`${this.endpoints[i]}: HTTP ${status}, not JSON: ${text.slice(0, 200)}`);
        continue;
      }
      if (status >= 200 && status < 300 && !parsed.error) {
        this.current = i;
        return { ok: true, value: parsed as T };
      }
      const msg = parsed.message ?? parsed.error ?? `HTTP ${status}`;
      if (status >= 400 && status < 500) throw new EtcdError(`etcd ${this.endpoints[i]} refused ${path}: ${msg}`, parsed.code);
      tried.push(`${this.endpoints[i]}: ${msg}`);
    }
    return { ok: false };
  }

  async get(key: string): Promise<EtcdKeyValue | undefined> {
    return (await this.range(key))[0];
  }

  /** `keysOnly`: the keys and revisions without the values (a scan of many keys stays small). */
  /** `from` (with `prefix`): only the keys of the prefix from that key on, in key order. */
  async range(key: string, o: { prefix?: boolean; keysOnly?: boolean; from?: string } = {}): Promise<EtcdKeyValue[]> {
    const body = o.prefix && o.from !== undefined ? { key: b64(o.from), range_end: prefixEnd(key) } : rangeBody(key, o.prefix);
    const r = await this.call<{ kvs?: RawKv[] }>('/v3/kv/range', { ...body, ...(o.keysOnly ? { keys_only: true } : {}) });
    return (r.kvs ?? []).map(kvOf);
  }

  async put(key: string, value: string, o: { lease?: string } = {}): Promise<number> {
    const r = await this.call<{ header?: { revision?: string } }>('/v3/kv/put', opBody({ put: { key, value, lease: o.lease } })['request_put']);
    return Number(r.header?.revision ?? 0);
  }

  async delete(key: string, o: { prefix?: boolean } = {}): Promise<void> {
    await this.call('/v3/kv/deleterange', rangeBody(key, o.prefix));
  }

  async txn(compare: EtcdCompare[], success: EtcdOp[], failure: EtcdOp[] = []): Promise<EtcdTxnResult> {
    const r = await this.call<{ succeeded?: boolean; header?: { revision?: string }; responses?: Array<{ response_range?: { kvs?: RawKv[] } }> }>('/v3/kv/txn', {
      compare: compare.map(compareBody),
      success: success.map(opBody),
      failure: failure.map(opBody),
    });
    return {
      succeeded: r.succeeded === true,
      revision: Number(r.header?.revision ?? 0),
      responses: (r.responses ?? []).map((x) => (x.response_range?.kvs ?? []).map(kvOf)),
    };
  }

  /** A new lease of `ttlS` seconds; its id. */
  async leaseGrant(ttlS: number): Promise<string> {
    const r = await this.call<{ ID?: string; TTL?: string }>('/v3/lease/grant', { TTL: ttlS });
    if (!r.ID) throw new EtcdError('etcd granted no lease id');
    return r.ID;
  }

  /** Renew a lease; its remaining TTL in seconds, 0 when it has expired (or was revoked). */
  async leaseKeepAlive(id: string, timeoutMs?: number): Promise<number> {
    const r = await this.call<{ result?: { TTL?: string } }>('/v3/lease/keepalive', { ID: id }, timeoutMs);
    return Number(r.result?.TTL ?? 0);
  }

  async leaseRevoke(id: string): Promise<void> {
    try {
      await this.call('/v3/lease/revoke', { ID: id });
    } catch (e) {
      // Already gone (expired): what revoking wanted.
      if (!(e instanceof EtcdError && e.code === 5)) throw e;
    }
  }
}
