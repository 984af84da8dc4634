import path from 'node:path';
import { check } from '../engine/check.js';
import { playHostsOf } from './check-hosts.js';
import { connectionFor } from '../inventory/connection.js';
import { TransportPool } from '../transport/index.js';
import { ValidationError } from '../util/errors.js';
import { formatJson, formatNagios, formatProm, makeReport, writeFileAtomic } from '../report/check.js';
import { loadInputs, type CommonOptions } from './inputs.js';

export interface CheckCommandOptions extends CommonOptions {
  prom?: string;
  /** --persist SECONDS (or BATON_PERSIST): reuse SSH connections held by the keeper. */
  persist?: string;
}

/** Seconds from --persist, else $BATON_PERSIST; undefined when off. Throws on a bad value. */
function persistSeconds(o: CheckCommandOptions): number | undefined {
  const raw = o.persist ?? process.env.BATON_PERSIST;
  if (raw === undefined || raw === '') return undefined;
  const from = o.persist !== undefined ? '--persist' : 'BATON_PERSIST';
  if (!/^\d+$/.test(raw.trim())) throw new Error(`${from} must be a whole number of seconds (0 turns it off), not ${JSON.stringify(raw)}`);
  const n = Number(raw.trim());
  return n > 0 ? n : undefined;
}

/** Nagios' UNKNOWN: the only exit code a monitoring system reads as "could not tell". */
const UNKNOWN = 3;

function unknown(o: CheckCommandOptions, why: string, details: string): number {
  if (o.json) process.stdout.write(JSON.stringify({ status: 'UNKNOWN', exitCode: UNKNOWN, message: why, details }) + '\n');
  else process.stdout.write(`BATON CHECK UNKNOWN - ${why}\n${details}\n`);
  return UNKNOWN;
}

/**
 * `baton check PLAYBOOK`: probe every selected step on every host, change nothing, take no
 * lock, write no journal. Exit codes are Nagios': 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
 * (invalid input included: a monitoring system must not read "bad playbook" as CRITICAL).
 */
export async function checkCommand(playbookFile: string, o: CheckCommandOptions): Promise<number> {
  const t0 = performance.now();
  const startedAt = Date.now() / 1000;
  let inputs;
  let persist: number | undefined;
  try {
    persist = persistSeconds(o);
    inputs = loadInputs(playbookFile, o);
  } catch (e) {
    if (e instanceof ValidationError) return unknown(o, `invalid input: ${e.problems.length} problem(s); nothing was checked`, e.message);
    if (e instanceof Error && /^(--persist|BATON_PERSIST) /.test(e.message)) return unknown(o, 'invalid input; nothing was checked', e.message);
    throw e;
  }
  const pool = new TransportPool((name) => connectionFor(inputs.inventory.hosts.get(name)!, path.dirname(inputs.inventory.file)), { persistSeconds: persist });
  try {
    // Every host up front, in parallel: the checks then only open sessions on live connections.
    // While the nodes' sshd fork and exchange keys, load the code of the kinds the playbook uses.
    const connecting = pool.connectAll(playHostsOf(inputs, o.limit));
    await inputs.registry.ensureLoaded(new Set(inputs.playbook.plays.flatMap((p) => p.steps.map((s) => s.kind))));
    const { failed } = await connecting;
    const unreachable = new Map(failed.map((f) => [f.host, f.error.message]));
    const results = await check({
      playbook: inputs.playbook,
      inventory: inputs.inventory,
      extraVars: inputs.extraVars,
      registry: inputs.registry,
      pool,
      filter: { tags: o.tags, skipTags: o.skipTags },
      limit: o.limit,
      unreachable,
    });
    const rep = makeReport(inputs.playbookFile, results, performance.now() - t0, startedAt);
    if (o.prom) writeFileAtomic(o.prom, formatProm(rep));
    process.stdout.write(o.json ? formatJson(rep) : formatNagios(rep, o.verbose));
    return rep.exitCode;
  } finally {
    await pool.closeAll();
  }
}
