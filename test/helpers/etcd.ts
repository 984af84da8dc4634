/**
 * A real etcd cluster (3 members unless asked otherwise) on loopback for the tests that need controllers to agree
 * (Debian `etcd-server`, installed by scripts/install-lab-deps.sh). Each test file passes its own
 * port base (two ports per member: client base+2i, peer base+2i+1) so files run side by side;
 * data dirs live in a temp dir. `stop()` kills every member and removes the data, also when a
 * test failed (call it from afterAll).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import os from 'node:os';
import path from 'node:path';

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  proc?: ChildProcess;
  log: string[];
}

/** PEM files for an etcd serving clients over TLS: its certificate and key, and the CA it requires client certificates from. */
export interface EtcdServerTls {
  cert: string;
  key: string;
  /** With it: --client-cert-auth, only clients with a certificate this CA signed get in. */
  clientCa?: string;
  /** The health probe's own client certificate (signed by clientCa) and the CA of the server's. */
  probe: { ca: string; cert?: string; key?: string };
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** `http://127.0.0.1:P1,http://127.0.0.1:P2,…`: every member's client URL. */
  endpoints: string[];
  /** The inventory / --coordinator value: `etcd://127.0.0.1:P1,127.0.0.1:P2,…`. */
  coordinator: string;
  /** SIGKILL one member (it keeps its data: `start` brings it back). */
  kill(i: number): Promise<void>;
  /** Start a stopped member again, with its data. */
  start(i: number): Promise<void>;
  /** Wait until the cluster answers a linearizable read through any member. */
  ready(timeoutMs?: number): Promise<void>;
  /** Kill every member and remove the data dirs. Never throws. */
  stop(): Promise<void>;
}

const ETCD = '/usr/bin/etcd';

export function requireEtcd(): void {
  if (!existsSync(ETCD)) {
    throw new Error(`etcd is not installed (${ETCD} is missing): these tests need a real etcd cluster. Install it with: sudo sh scripts/install-lab-deps.sh (Debian etcd-server)`);
  }
}

function spawnMember(m: EtcdMember, cluster: string, state: 'new' | 'existing', token: string, tls?: EtcdServerTls): void {
  const tlsArgs = tls ? ['--cert-file', tls.cert, '--key-file', tls.key, ...(tls.clientCa ? ['--client-cert-auth', '--trusted-ca-file', tls.clientCa] : [])] : [];
  const args = [
    ...tlsArgs,
    '--name', m.name,
    '--data-dir', m.dataDir,
    '--listen-client-urls', m.clientUrl,
    '--advertise-client-urls', m.clientUrl,
    '--listen-peer-urls', m.peerUrl,
    '--initial-advertise-peer-urls', m.peerUrl,
    '--initial-cluster', cluster,
    '--initial-cluster-state', state,
    '--initial-cluster-token', token,
    // Short elections: a killed member's peers elect a new raft leader within a second.
    '--heartbeat-interval', '100',
    '--election-timeout', '1000',
    '--log-level', 'warn',
  ];
  const p = spawn(ETCD, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  p.stderr!.on('data', (d: Buffer) => {
    m.log.push(d.toString());
    if (m.log.length > 200) m.log.shift();
  });
  m.proc = p;
}

async function exited(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((r) => p.once('exit', () => r()));
}

async function healthy(url: string, tls?: EtcdServerTls): Promise<boolean> {
  if (tls) {
    const body = JSON.stringify({ key: Buffer.from('health').toString('base64') });
    const ca = readFileSync(tls.probe.ca);
    const cert = tls.probe.cert ? readFileSync(tls.probe.cert) : undefined;
    const key = tls.probe.key ? readFileSync(tls.probe.key) : undefined;
    return new Promise((resolve) => {
      const req = httpsRequest(`${url}/v3/kv/range`, { method: 'POST', ca, cert, key, timeout: 1000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
      req.end(body);
    });
  }
  try {
    // A linearizable range goes through raft: it answers only with a quorum.
    const r = await fetch(`${url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('health').toString('base64') }), signal: AbortSignal.timeout(1000) });
    return r.ok;
  } catch {
    return false;
  }
}

/** Start `members` (default 3) members on 127.0.0.1, ports base…base+2·members−1. */
export async function startEtcd(opts: { name: string; portBase: number; members?: number; tls?: EtcdServerTls }): Promise<EtcdCluster> {
  const scheme = opts.tls ? 'https' : 'http';
  requireEtcd();
  const dir = mkdtempSync(path.join(os.tmpdir(), `baton-etcd-${opts.name}-`));
  const members: EtcdMember[] = Array.from({ length: opts.members ?? 3 }, (_, i) => ({
    name: `${opts.name}${i + 1}`,
    clientUrl: `${scheme}://127.0.0.1:${opts.portBase + 2 * i}`,
    peerUrl: `http://127.0.0.1:${opts.portBase + 2 * i + 1}`,
    dataDir: path.join(dir, `m${i + 1}`),
    log: [],
  }));
  const cluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const token = `${opts.name}-${process.pid}`;
  const started = new Set<number>();

  const c: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.clientUrl),
    coordinator: `${opts.tls ? 'etcds' : 'etcd'}://${members.map((m) => m.clientUrl.replace(/^https?:\/\//, '')).join(',')}`,
    async kill(i) {
      const p = members[i]!.proc;
      if (!p) return;
      p.kill('SIGKILL');
      await exited(p);
      members[i]!.proc = undefined;
    },
    async start(i) {
      // A member that ran before rejoins from its data dir; only the first start is "new".
      spawnMember(members[i]!, cluster, started.has(i) ? 'existing' : 'new', token, opts.tls);
      started.add(i);
    },
    async ready(timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        for (const m of members) if (m.proc && (await healthy(m.clientUrl, opts.tls))) return;
        await new Promise((r) => setTimeout(r, 200));
      }
      const logs = members.map((m) => `${m.name}: ${m.log.join('').slice(-800)}`).join('\n');
      throw new Error(`the etcd test cluster did not answer within ${timeoutMs / 1000} s:\n${logs}`);
    },
    async stop() {
      await Promise.all(members.map((_, i) => c.kill(i).catch(() => undefined)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (let i = 0; i < members.length; i++) await c.start(i);
    await c.ready();
  } catch (e) {
    await c.stop();
    throw e;
  }
  return c;
}

/**
 * Names the coordinator in a lab inventory (all.vars.baton_coordinator), as a site using etcd
 * does: `baton watch` refuses an etcd coordinator its inventory does not name, and every
 * `baton run` with the inventory then locks in etcd too.
 */
export function nameCoordinatorIn(inventoryPath: string, spec: string): void {
  const text = readFileSync(inventoryPath, 'utf8');
  if (!text.includes('\nall:\n  vars:\n')) throw new Error(`${inventoryPath}: no all.vars to name the coordinator in`);
  writeFileSync(inventoryPath, text.replace('\nall:\n  vars:\n', `\nall:\n  vars:\n    baton_coordinator: ${JSON.stringify(spec)}\n`));
}
