/**
 * Where controllers agree (docs/coordinator.md). The embedded default is one controller's own:
 * its lock file and the entries on the nodes, its journal in its state dir. `etcd://…` puts
 * the run locks in etcd as leases, fences every change with the lock's revision, and mirrors
 * every journal there, so any controller lists and undoes any controller's runs.
 *
 * Chosen by `--coordinator`, else BATON_COORDINATOR, else the inventory's `baton_coordinator`.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import type { Inventory } from '../inventory/model.js';
import { EtcdClient, parseEtcdEndpoints, type EtcdTls } from '../transport/etcd.js';
import { BatonError, ExitCode } from '../util/errors.js';
import { journalPath, runStartMs } from './journal.js';
import { EtcdLockService, JOURNAL_PREFIX, LOCK_PREFIX } from './locks/etcd.js';
import { LocalFileLockService, NodeLockService, type LockService } from './locks/index.js';
import { runsDir } from './state-dir.js';
import { writeFileAtomic } from '../util/write-atomic.js';

/** Ended runs stay in etcd this long; every controller keeps its copy in its own state dir. */
export const JOURNAL_RETENTION_DAYS = 30;

export interface Coordinator {
  /** How it is named to the operator: "embedded" or "etcd (http://h1:2379, …)". */
  readonly label: string;
  /** The run lock's services, taken in order, all or none. */
  lockServices(): LockService[];
  /**
   * Copy into this state dir the journals other controllers wrote (and more of those it has in
   * part), so `baton runs` and `baton undo` see them. What could not be read, as notes.
   */
  syncJournals(dir?: string): Promise<string[]>;
  /** The etcd client, for a watcher's election (absent: embedded). */
  readonly etcd?: EtcdClient;
  /**
   * Can it be used at all (etcd answers, its certificate is trusted, ours accepted)? Asked before
   * a run contacts any node: a coordinator that cannot work stops it there (exit 4).
   */
  check(): Promise<void>;
}

export const EMBEDDED: Coordinator = {
  label: 'embedded',
  lockServices: () => [new LocalFileLockService(), new NodeLockService()],
  syncJournals: async () => [],
  check: async () => undefined,
};

/** The coordinator spec in force: the flag, else the environment, else the inventory's `baton_coordinator`. */
export function coordinatorSpec(flag?: string, inventory?: Inventory): string | undefined {
  if (flag?.trim()) return flag.trim();
  const env = process.env.BATON_COORDINATOR?.trim();
  if (env) return env;
  return inventoryCoordinator(inventory);
}

/** An etcd coordinator spec (`etcd://`, `etcds://`, or an http(s) endpoint list), not `embedded`. */
export const isEtcdSpec = (spec: string | undefined): spec is string => spec !== undefined && /^(etcds?|https?):\/\//.test(spec);

/** The inventory's own `baton_coordinator` (all.vars), if it names one. */
export function inventoryCoordinator(inventory?: Inventory): string | undefined {
  const v = inventory?.groups.get('all')?.vars['baton_coordinator'];
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
}

/**
 * An etcd coordinator the inventory itself does not name, refused for a long-lived controller
 * (`baton watch`): a person's `baton run` with the same inventory and no flag would lock
 * embedded (its own lock file and the nodes), the watcher's runs in etcd, and the two would
 * never meet. Naming it in the inventory makes every run from it lock in the same place.
 */
export function requireInventoryNames(spec: string | undefined, inventory: Inventory, who: string): void {
  const named = inventoryCoordinator(inventory);
  if (!isEtcdSpec(spec)) {
    // The other way round: the inventory's runs lock in etcd, this controller would not.
    if (isEtcdSpec(named)) {
      throw new BatonError(
        `${who} with the coordinator ${spec ?? 'embedded'}: the inventory ${inventory.file} names ${named}, where every \`baton run\` with it takes its locks; this one's would be elsewhere and never meet them. Drop --coordinator / BATON_COORDINATOR, or name the same etcd. Nothing was started.`,
        ExitCode.INVALID,
      );
    }
    return;
  }
  const same = (a: string, b: string) => parseEtcdEndpoints(a).sort().join(',') === parseEtcdEndpoints(b).sort().join(',');
  if (isEtcdSpec(named) && same(named, spec)) return;
  throw new BatonError(
    `${who} with the coordinator ${spec}: the inventory ${inventory.file} ${named === undefined ? 'names no coordinator' : `names another one (${named})`}, so ` +
      `a \`baton run\` with it and no --coordinator would take its locks ${named === undefined ? 'embedded (its own lock file and the nodes)' : `in ${named}`}, never meeting this watcher's runs: both could act on one group at once. ` +
      `Put \`baton_coordinator: ${spec}\` in the inventory's all.vars. Nothing was started.`,
    ExitCode.INVALID,
  );
}

const TLS_SETTINGS = [
  { field: 'ca', env: 'BATON_ETCD_CACERT', inventoryVar: 'baton_etcd_cacert', what: "the CA that signed etcd's server certificates" },
  { field: 'cert', env: 'BATON_ETCD_CERT', inventoryVar: 'baton_etcd_cert', what: 'the client certificate baton shows etcd' },
  { field: 'key', env: 'BATON_ETCD_KEY', inventoryVar: 'baton_etcd_key', what: "that certificate's private key" },
] as const;

/**
 * TLS files for `etcds://`: each from the environment (BATON_ETCD_CACERT, BATON_ETCD_CERT,
 * BATON_ETCD_KEY, as etcdctl's ETCDCTL_* ones), else the inventory's all.vars (baton_etcd_cacert,
 * baton_etcd_cert, baton_etcd_key). Read now: a missing file is said before anything starts.
 */
export function coordinatorTls(inventory?: Inventory): EtcdTls {
  const tls: EtcdTls = {};
  const sources: string[] = [];
  for (const s of TLS_SETTINGS) {
    const env = process.env[s.env]?.trim();
    const v = inventory?.groups.get('all')?.vars[s.inventoryVar];
    const file = env || (typeof v === 'string' && v.trim() ? v.trim() : undefined);
    if (!file) continue;
    const from = env ? `${s.env}=${file}` : `${s.inventoryVar}: ${file}`;
    try {
      tls[s.field] = readFileSync(file, 'utf8');
    } catch (e) {
      throw new BatonError(`cannot read ${s.what} for etcd (${from}): ${(e as Error).message}. Nothing was changed.`, ExitCode.INVALID);
    }
    sources.push(from);
  }
  if (Boolean(tls.cert) !== Boolean(tls.key)) {
    throw new BatonError(`etcd TLS: a client certificate needs its key and a key its certificate (${sources.join(', ')}); give both BATON_ETCD_CERT and BATON_ETCD_KEY (or baton_etcd_cert and baton_etcd_key). Nothing was changed.`, ExitCode.INVALID);
  }
  if (sources.length) tls.source = sources.join(', ');
  return tls;
}

export function openCoordinator(spec: string | undefined, inventory?: Inventory): Coordinator {
  if (!spec || spec === 'embedded') return EMBEDDED;
  if (!isEtcdSpec(spec)) {
    throw new BatonError(`unknown coordinator "${spec}": expected "embedded" or etcd://host:port[,host:port…] (etcds:// for TLS)`, ExitCode.INVALID);
  }
  const endpoints = parseEtcdEndpoints(spec);
  const tls = coordinatorTls(inventory);
  if (tls.source && !endpoints.some((e) => e.startsWith('https://'))) {
    throw new BatonError(`etcd TLS files are given (${tls.source}) but the coordinator "${spec}" is plain HTTP: write etcds://host:port to use them. Nothing was changed.`, ExitCode.INVALID);
  }
  const client = new EtcdClient(endpoints, { timeoutMs: Number(process.env.BATON_ETCD_TIMEOUT_MS) || 3000, tls });
  return new EtcdCoordinator(client);
}

export class EtcdCoordinator implements Coordinator {
  readonly label: string;
  constructor(readonly etcd: EtcdClient) {
    this.label = `etcd (${etcd.endpoints.join(', ')})`;
  }

  async check(): Promise<void> {
    try {
      await this.etcd.range(LOCK_PREFIX, { prefix: true, keysOnly: true });
    } catch (e) {
      throw new BatonError(`cannot use the coordinator ${this.label}: ${(e as Error).message}. Nothing was touched: no node was contacted.`, ExitCode.UNREACHABLE);
    }
  }

  // This controller's lock file first (no network: two runs from one state dir never reach
  // etcd), then etcd, which stands in for the node entries.
  lockServices(): LockService[] {
    return [new LocalFileLockService(), new EtcdLockService(this.etcd, this.label)];
  }

  /**
   * Other controllers' journals copied here (a run, an undo or `baton runs` sees every run), and
   * old ones pruned from etcd. Keys first, then the lines of only the runs this controller lacks:
   * every run syncs, and reading every journal's every line made each run slower than the last.
   * Runs that ended more than JOURNAL_RETENTION_DAYS ago leave etcd (each controller keeps its
   * copy in its state dir); a run that never ended stays, whatever its age: it is owed.
   */
  async syncJournals(dir = runsDir(), now = Date.now()): Promise<string[]> {
    let keys;
    try {
      keys = await this.etcd.range(JOURNAL_PREFIX, { prefix: true, keysOnly: true });
    } catch (e) {
      return [`note: the journals of other controllers could not be read from ${this.label}: ${(e as Error).message}; only this controller's runs are listed`];
    }
    const runs = new Map<string, number[]>();
    for (const kv of keys) {
      const m = /^baton\/journal\/([^/]+)\/(\d+)$/.exec(kv.key);
      if (!m || !/^[0-9TZ]+-[0-9a-f]+$/.test(m[1]!)) continue;
      const list = runs.get(m[1]!) ?? [];
      list.push(Number(m[2]));
      runs.set(m[1]!, list);
    }
    const notes: string[] = [];
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const [runId, indices] of runs) {
      indices.sort((a, b) => a - b);
      // Only a gapless copy from line 0: a hole means a line was never mirrored.
      if (!indices.every((n, i) => n === i)) {
        notes.push(`note: run ${runId}'s journal in ${this.label} has missing lines; not copied`);
        continue;
      }
      const file = journalPath(runId, dir);
      const localLines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
      let last = localLines.length >= indices.length ? localLines[indices.length - 1] : undefined;
      if (last === undefined) {
        let kvs;
        try {
          kvs = await this.etcd.range(`${JOURNAL_PREFIX}${runId}/`, { prefix: true });
        } catch (e) {
          notes.push(`note: run ${runId}'s journal could not be read from ${this.label}: ${(e as Error).message}; not copied`);
          continue;
        }
        const lines = kvs
          .map((kv) => ({ index: Number(/\/(\d+)$/.exec(kv.key)?.[1] ?? -1), line: kv.value }))
          .sort((a, b) => a.index - b.index);
        // Pruned (or still being written) between the two reads: what was read must be whole.
        if (lines.length === 0 || !lines.every((l, i) => l.index === i)) continue;
        writeFileAtomic(file, lines.map((l) => `${l.line}\n`).join(''), { mode: 0o600 });
        last = lines[lines.length - 1]!.line;
        // A finished run is sealed (record count and last hash), as its own controller sealed it.
        const h = /,"h":"([0-9a-f]{16})"\}$/.exec(last)?.[1];
        if (/^\{"t":"end"/.test(last) && h) {
          const seal = file.replace(/\.jsonl$/, '.seal');
          writeFileAtomic(seal, JSON.stringify({ records: lines.length, h }) + '\n', { mode: 0o600 });
        }
      }
      if (/^\{"t":"end"/.test(last) && now - runStartMs(runId) > JOURNAL_RETENTION_DAYS * 86_400_000) {
        try {
          await this.etcd.delete(`${JOURNAL_PREFIX}${runId}/`, { prefix: true });
        } catch {
          // The next sync tries again.
        }
      }
    }
    return notes;
  }
}
