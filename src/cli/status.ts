/**
 * `baton status -i INV [--json]`: what runs where, observed (the on-call's first command, as
 * crm_mon is Pacemaker's). The observing and judging is src/facts/groups.ts; this file only
 * loads the inputs, opens the connections and prints.
 */
import path from 'node:path';
import { connectionFor } from '../inventory/connection.js';
import { loadInventory } from '../inventory/load.js';
import { loadServiceGroups, SERVICES_VAR } from '../inventory/services.js';
import { observeGroups, type ClusterStatus, type NodeObservation } from '../facts/groups.js';
import { LocalTransport, TransportPool } from '../transport/index.js';
import { formatLocation, ValidationError } from '../util/errors.js';
import { connectTimeoutMsFor } from './check.js';
import { applyRemoteUser, inventorySources, vaultSecrets } from './inputs.js';

export interface StatusOptions {
  inventory?: string[];
  vaultPasswordFile?: string[];
  vaultId?: string[];
  user?: string;
  json?: boolean;
  connectTimeout?: string;
}

/** Exit 3: status could not be told at all (bad inventory, no groups). 0, 1 and 2 are the cluster's. */
export const STATUS_INVALID = 3;

export async function statusCommand(o: StatusOptions): Promise<number> {
  const t0 = performance.now();
  // ssh2 takes ~90 ms to load: let it load while the inventory is read (a failure shows at connect).
  void import('../transport/ssh.js').catch(() => undefined);
  let inventory;
  let groups;
  try {
    const sources = inventorySources(o.inventory);
    if (!sources.length) throw new StatusInputError('no inventory: give one with -i INVENTORY (the nodes and their service groups)');
    inventory = loadInventory(sources, { vault: vaultSecrets(o) });
    if (o.user) applyRemoteUser(inventory, o.user);
    groups = loadServiceGroups(inventory);
    if (!groups.length) {
      throw new StatusInputError(`${inventory.file}: no service group: declare them in all.vars.${SERVICES_VAR}, or give the single service's vars (vip, disks or volume_image, mount_point)`);
    }
    try {
      // Every bound read now: a bad --connect-timeout (or inventory value) is input, found before any node is contacted.
      for (const g of groups) for (const n of g.nodes) connectTimeoutMsFor(inventory.hosts.get(n)!, o.connectTimeout);
    } catch (e) {
      throw new StatusInputError((e as Error).message);
    }
  } catch (e) {
    const message = e instanceof ValidationError ? e.problems.map((p) => `${formatLocation(p.loc)}: ${p.message}`).join('\n') : (e as Error).message;
    if (!(e instanceof ValidationError) && !(e instanceof StatusInputError)) throw e;
    if (o.json) process.stdout.write(`${JSON.stringify({ error: message, exitCode: STATUS_INVALID })}\n`);
    process.stderr.write(`baton status: ${message}\nbaton status: invalid input; no node was contacted\n`);
    return STATUS_INVALID;
  }
  const inv = inventory;
  const dir = path.dirname(inv.file);
  const pool = new TransportPool((name) => {
    const host = inv.hosts.get(name)!;
    return { ...connectionFor(host, dir), connectTimeoutMs: connectTimeoutMsFor(host, o.connectTimeout) };
  });
  try {
    const status = await observeGroups({
      inventory: inv,
      groups,
      transportOf: (n) => pool.get(n),
      bmcRunner: new LocalTransport('controller'),
    });
    const ms = performance.now() - t0;
    process.stdout.write(o.json ? `${JSON.stringify(statusDocument(status, ms))}\n` : formatStatus(status, ms));
    return status.exitCode;
  } finally {
    await pool.closeAll();
  }
}

class StatusInputError extends Error {}

/** The --json document: groups and nodes as observed, without the raw node reads. */
export function statusDocument(s: ClusterStatus, ms: number): Record<string, unknown> {
  return {
    groups: s.groups.map((g) => ({
      name: g.name,
      state: g.state,
      nodes: g.nodes,
      home: g.home,
      summary: g.summary,
      serves: g.serves,
      parts: g.parts,
      missing: g.missing,
      unknownNodes: g.unknownNodes,
      ...(g.vipLinkDown ? { vipLinkDown: g.vipLinkDown } : {}),
    })),
    nodes: s.nodes.map((n) => ({
      name: n.name,
      reachable: n.reachable,
      power: n.power,
      ...(n.error ? { error: n.error } : {}),
      ...(n.powerError ? { powerError: n.powerError } : {}),
    })),
    exitCode: s.exitCode,
    durationMs: Math.round(ms),
  };
}

const pad = (rows: string[][]): string[] => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
};

/** Why a node could not be read, or its power not known: one line each, under the tables. */
function nodeNotes(n: NodeObservation): string[] {
  return [n.error ? `${n.name}: ${n.error}` : '', n.powerError ? `${n.name} power unknown: ${n.powerError}` : ''].filter(Boolean);
}

export function formatStatus(s: ClusterStatus, ms: number): string {
  const out: string[] = [];
  out.push(...pad([['GROUP', 'SERVES', 'STATE'], ...s.groups.map((g) => [g.name, g.serves.join(', ') || '-', g.summary])]));
  out.push('');
  out.push(...pad([['NODE', 'REACHABLE', 'POWER'], ...s.nodes.map((n) => [n.name, n.reachable ? (n.view ? 'yes' : 'yes (not read)') : 'no', n.power])]));
  const notes = s.nodes.flatMap(nodeNotes);
  if (notes.length) out.push('', ...notes);
  const count = (state: string) => s.groups.filter((g) => g.state === state).length;
  const states = ['running', 'partial', 'split', 'stopped', 'unknown'].filter((x) => count(x)).map((x) => `${count(x)} ${x}`);
  const unreached = s.groups.filter((g) => g.vipLinkDown).length;
  if (unreached) states.push(`${unreached} with its VIP on a link that is down`);
  const down = s.nodes.filter((n) => !n.view).map((n) => n.name);
  const verdict = s.exitCode === 2 ? 'SPLIT BRAIN' : s.exitCode === 1 ? 'DEGRADED' : 'OK';
  out.push('');
  out.push(`${verdict}: ${s.groups.length} group${s.groups.length === 1 ? '' : 's'} (${states.join(', ')}); ${s.nodes.length - down.length} of ${s.nodes.length} nodes read${down.length ? ` (not: ${down.join(', ')})` : ''}; ${(ms / 1000).toFixed(1)} s`);
  return `${out.join('\n')}\n`;
}
