import path from 'node:path';
import { check } from '../engine/check.js';
import { playHostsOf } from './check-hosts.js';
import { connectionFor } from '../inventory/connection.js';
import type { Host } from '../inventory/model.js';
import { LocalTransport, TransportPool } from '../transport/index.js';
import { hasPlacement, resolvePlaybookPlacement } from '../engine/placement.js';
import { ValidationError } from '../util/errors.js';
import { formatJson, formatNagios, formatProm, invalidReport, makeReport, writeFileAtomic, type CheckReport } from '../report/check.js';
import { loadInputs, type CommonOptions } from './inputs.js';

export interface CheckCommandOptions extends CommonOptions {
  prom?: string;
  /** --persist SECONDS (or BATON_PERSIST): reuse SSH connections held by the keeper. */
  persist?: string;
  /** --connect-timeout SECONDS: how long to wait for a node's SSH before calling it unreachable. */
  connectTimeout?: string;
}

/**
 * A node that does not answer must not hold the check for 10 s or more: cron runs it every
 * minute and Nagios times plugins out. Healthy nodes on a LAN answer in milliseconds.
 */
export const DEFAULT_CHECK_CONNECT_TIMEOUT_S = 2;

/** The inventory variable (host or group var) that sets a host's connect bound for `check`. */
export const CONNECT_TIMEOUT_VAR = 'baton_check_connect_timeout';

/** Seconds from --persist, else $BATON_PERSIST; undefined when off. Throws on a bad value. */
function persistSeconds(o: CheckCommandOptions): number | undefined {
  const raw = o.persist ?? process.env.BATON_PERSIST;
  if (raw === undefined || raw === '') return undefined;
  const from = o.persist !== undefined ? '--persist' : 'BATON_PERSIST';
  if (!/^\d+$/.test(raw.trim())) throw new InputError(`${from} must be a whole number of seconds (0 turns it off), not ${JSON.stringify(raw)}`);
  const n = Number(raw.trim());
  return n > 0 ? n : undefined;
}

/** Bad command-line input of `check` itself (not of the playbook or inventory). */
class InputError extends Error {}

function seconds(raw: unknown, from: string): number {
  const n = typeof raw === 'number' ? raw : /^\s*\d+(\.\d+)?\s*$/.test(String(raw)) ? Number(raw) : NaN;
  if (!(n > 0) || n > 600) throw new InputError(`${from} must be a number of seconds between 0 and 600, not ${JSON.stringify(raw)}`);
  return n;
}

/** --connect-timeout wins, then the host's `baton_check_connect_timeout`, then 2 s. */
export function connectTimeoutMsFor(host: Host, option?: string): number {
  if (option !== undefined) return seconds(option, '--connect-timeout') * 1000;
  const v = host.vars[CONNECT_TIMEOUT_VAR];
  if (v !== undefined && v !== null && v !== '') return seconds(v, `${CONNECT_TIMEOUT_VAR} of ${host.name}`) * 1000;
  return DEFAULT_CHECK_CONNECT_TIMEOUT_S * 1000;
}

/** What -l/-t/--skip-tags asked for, to say why nothing matched. */
function selection(o: CheckCommandOptions): string | undefined {
  const parts = [
    o.limit ? `--limit ${JSON.stringify(o.limit)}` : '',
    o.tags?.length ? `--tags ${JSON.stringify(o.tags.join(','))}` : '',
    o.skipTags?.length ? `--skip-tags ${JSON.stringify(o.skipTags.join(','))}` : '',
  ].filter(Boolean);
  return parts.length ? parts.join(' ') : undefined;
}

/**
 * Every way out goes through here: stdout in the asked format and, with --prom, the textfile
 * replaced, so a scraper never reads the previous run's OK (or CRITICAL) after a failed one.
 */
function finish(o: CheckCommandOptions, rep: CheckReport): number {
  if (o.prom) {
    try {
      writeFileAtomic(o.prom, formatProm(rep));
    } catch (e) {
      // The textfile is the result for node_exporter: failing to write it is UNKNOWN, said on
      // stderr; but a CRITICAL outranks UNKNOWN (Nagios) and must still page as what it is.
      process.stderr.write(`baton check: could not write --prom ${o.prom}: ${(e as Error).message}\n`);
      if (rep.exitCode !== 2) rep = { ...rep, status: 'UNKNOWN', exitCode: 3, problem: rep.problem ?? `could not write ${o.prom}: ${(e as Error).message}` };
    }
  }
  process.stdout.write(o.json ? formatJson(rep) : formatNagios(rep, o.verbose));
  return rep.exitCode;
}

/**
 * `baton check PLAYBOOK`: probe every selected step on every host, change nothing, take no
 * lock, write no journal. Exit codes are Nagios': 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
 * (invalid input and "no check selected" included: a monitoring system must not read "bad
 * playbook" as CRITICAL, nor "nothing checked" as OK).
 */
export async function checkCommand(playbookFile: string, o: CheckCommandOptions): Promise<number> {
  const t0 = performance.now();
  const startedAt = Date.now() / 1000;
  const elapsed = () => performance.now() - t0;
  let inputs;
  let persist: number | undefined;
  try {
    persist = persistSeconds(o);
    inputs = loadInputs(playbookFile, o);
    // Read every host's bound now: a bad value is invalid input, before any node is contacted.
    for (const h of inputs.inventory.hosts.values()) connectTimeoutMsFor(h, o.connectTimeout);
  } catch (e) {
    if (e instanceof ValidationError) return finish(o, invalidReport(playbookFile, `invalid input: ${e.problems.length} problem(s); nothing was checked`, e.message, elapsed(), startedAt));
    if (e instanceof InputError) return finish(o, invalidReport(playbookFile, 'invalid input; nothing was checked', e.message, elapsed(), startedAt));
    throw e;
  }
  const { inventory } = inputs;
  const pool = new TransportPool(
    (name) => {
      const host = inventory.hosts.get(name)!;
      return { ...connectionFor(host, path.dirname(inventory.file)), connectTimeoutMs: connectTimeoutMsFor(host, o.connectTimeout) };
    },
    { persistSeconds: persist },
  );
  try {
    // Every host's connection starts now, in parallel; while the nodes' sshd fork and exchange
    // keys, the code of the kinds the playbook uses loads. Each check then waits for its own
    // host only: a node that does not answer holds up nobody else's checks.
    // A placement play's items are the moves what runs where asks for now (read-only reads).
    if (hasPlacement(inputs.playbook)) {
      const placed = await resolvePlaybookPlacement(inputs.playbook, inventory, inputs.extraVars, { transportOf: (n) => pool.get(n), bmcRunner: new LocalTransport('controller') });
      inputs = { ...inputs, playbook: placed.playbook };
    }
    void pool.connectAll(playHostsOf(inputs, o.limit));
    await inputs.registry.ensureLoaded(new Set(inputs.playbook.plays.flatMap((p) => p.steps.map((s) => s.kind))));
    const results = await check({
      playbook: inputs.playbook,
      inventory,
      extraVars: inputs.extraVars,
      registry: inputs.registry,
      pool,
      filter: { tags: o.tags, skipTags: o.skipTags },
      limit: o.limit,
    });
    return finish(o, makeReport(inputs.playbookFile, results, elapsed(), startedAt, selection(o)));
  } catch (e) {
    // A bug or an unexpected failure still answers UNKNOWN in every asked format.
    // The stack is for a bug report (-v); the message is what on-call reads.
    return finish(o, invalidReport(inputs.playbookFile, `baton check failed: ${(e as Error).message ?? String(e)}`, o.verbose ? (e as Error).stack : undefined, elapsed(), startedAt));
  } finally {
    await pool.closeAll();
  }
}

/**
 * A usage error of `check` (an unknown option, a missing argument) is invalid input too: the
 * monitoring system reads the same UNKNOWN line and, with --prom, a replaced textfile. Called
 * from the command's exit override with the raw argv, since no option was parsed.
 */
export function checkUsageError(argv: string[], message: string): void {
  let prom: string | undefined;
  argv.forEach((a, i) => {
    if (a === '--prom' && argv[i + 1] !== undefined) prom = argv[i + 1];
    else if (a.startsWith('--prom=')) prom = a.slice('--prom='.length);
  });
  // The playbook: the first argument after `check` that is neither an option nor an option's value.
  const withValue = new Set(['-i', '--inventory', '-e', '--extra-vars', '-l', '--limit', '-t', '--tags', '--skip-tags', '--prom', '--persist', '--connect-timeout']);
  const rest = argv.slice(argv.indexOf('check') + 1);
  const playbook = rest.find((a, i) => !a.startsWith('-') && !withValue.has(rest[i - 1] ?? '')) ?? 'check';
  const why = message.replace(/^error:\s*/i, '').trim() || 'usage error';
  finish({ extraVars: [], prom, json: argv.includes('--json') }, invalidReport(playbook, `invalid usage; nothing was checked: ${why}`, undefined, 0, Date.now() / 1000));
}
