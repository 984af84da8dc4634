/**
 * `baton watch -i INV [--coordinator etcd://…]`: wiring only. The decisions are
 * engine/watch.ts's; the observing is facts/groups.ts's (as `baton status`); a failover is a
 * run of the node-failover playbook through the engine's session, like `baton run`.
 */
import path from 'node:path';
import { connectionFor } from '../inventory/connection.js';
import { loadInventory } from '../inventory/load.js';
import { loadServiceGroups, SERVICES_VAR } from '../inventory/services.js';
import { observeGroups } from '../facts/groups.js';
import { coordinatorSpec, openCoordinator, requireInventoryNames } from '../engine/coordinator.js';
import { newRunId } from '../engine/journal.js';
import { leaseSeconds } from '../engine/locks/index.js';
import { OrphanFinder } from '../engine/orphans.js';
import { runSession } from '../engine/session.js';
import { stateDir } from '../engine/state-dir.js';
import { DecisionLog, DEFAULT_WATCH, EtcdLeadership, FAILOVER_PLAYBOOK, healthOf, SingleWatcher, watch, type Leadership } from '../engine/watch.js';
import { LocalTransport, TransportPool } from '../transport/index.js';
import { BatonError, ExitCode } from '../util/errors.js';
import { makeReporter } from '../report/make.js';
import { connectTimeoutMsFor } from './check.js';
import { applyRemoteUser, inventorySources, loadInputs, vaultSecrets } from './inputs.js';
import { undoCommand } from './undo.js';

export interface WatchOptions {
  inventory?: string[];
  vaultPasswordFile?: string[];
  vaultId?: string[];
  user?: string;
  coordinator?: string;
  interval?: string;
  failures?: string;
  cooldown?: string;
  dryRun?: boolean;
  playbook?: string;
  connectTimeout?: string;
  json?: boolean;
  /** Stop after this many rounds (tests). */
  rounds?: string;
}

function positive(v: string | undefined, what: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new BatonError(`${what} must be a positive number, not "${v}"`, ExitCode.INVALID);
  return n;
}

export async function watchCommand(o: WatchOptions): Promise<number> {
  const sources = inventorySources(o.inventory);
  if (!sources.length) throw new BatonError('no inventory: give one with -i INVENTORY (the nodes, their BMCs and their service groups)', ExitCode.INVALID);
  const inventory = loadInventory(sources, { vault: vaultSecrets(o) });
  if (o.user) applyRemoteUser(inventory, o.user);
  const groups = loadServiceGroups(inventory);
  if (!groups.length) throw new BatonError(`${inventory.file}: no service group to watch: declare them in all.vars.${SERVICES_VAR}`, ExitCode.INVALID);
  const settings = {
    intervalMs: positive(o.interval, '--interval', DEFAULT_WATCH.intervalMs / 1000) * 1000,
    failures: Math.round(positive(o.failures, '--failures', DEFAULT_WATCH.failures)),
    cooldownMs: positive(o.cooldown, '--cooldown', DEFAULT_WATCH.cooldownMs / 1000) * 1000,
    dryRun: Boolean(o.dryRun),
  };
  const playbook = o.playbook ?? FAILOVER_PLAYBOOK;
  const spec = coordinatorSpec(o.coordinator, inventory);
  requireInventoryNames(spec, inventory, 'baton watch');
  const coordinator = openCoordinator(spec, inventory);
  const id = newRunId();
  const leadership: Leadership = coordinator.etcd ? new EtcdLeadership(coordinator.etcd, id, leaseSeconds()) : new SingleWatcher(id);
  const log = new DecisionLog(stateDir(), coordinator.etcd);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const say = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  say(`watch: ${groups.length} group(s) on ${new Set(groups.flatMap((g) => g.nodes)).size} node(s), every ${settings.intervalMs / 1000} s; failed after ${settings.failures} rounds; cool-down ${settings.cooldownMs / 1000} s; coordinator ${coordinator.label}${settings.dryRun ? '; --dry-run: nothing is changed' : ''}; decisions in ${log.file}`);

  const dir = path.dirname(inventory.file);
  /** A playbook run as `baton run PLAYBOOK -e VARS --yes` with this watcher's inventory and coordinator; its exit code. */
  const runPlaybook = async (file: string, vars: Record<string, unknown>): Promise<number> => {
    const inputs = loadInputs(file, { inventory: sources, vaultPasswordFile: o.vaultPasswordFile, vaultId: o.vaultId, user: o.user, extraVars: [JSON.stringify(vars)] });
    await inputs.registry.ensureLoaded();
    // Stopping the watcher (SIGTERM from systemd) lets a run in flight end: see RunHooks.onInterrupt.
    return (await runSession(inputs, { coordinator: spec }, { reporter: await makeReporter({ json: o.json }), onInterrupt: 'finish' })).exitCode;
  };
  try {
    await watch({
      settings,
      leadership,
      log,
      say,
      signal: stop.signal,
      rounds: o.rounds === undefined ? undefined : Math.round(positive(o.rounds, '--rounds', 1)),
      playbook,
      // With etcd, runs a dead controller left are finished or undone (docs/watch.md).
      ...(coordinator.etcd ? { orphans: new OrphanFinder(coordinator.etcd) } : {}),
      // The same undo as `baton undo RUN --yes`, with this watcher's inventory and coordinator.
      undo: (runId) => undoCommand(runId, { inventory: o.inventory, vaultPasswordFile: o.vaultPasswordFile, vaultId: o.vaultId, yes: true, json: o.json, coordinator: spec }),
      observe: async () => {
        // Fresh connections every round: a dead node's old connection must not read as alive.
        const pool = new TransportPool((name) => {
          const host = inventory.hosts.get(name)!;
          return { ...connectionFor(host, dir), connectTimeoutMs: connectTimeoutMsFor(host, o.connectTimeout) };
        });
        try {
          return healthOf(await observeGroups({ inventory, groups, transportOf: (n) => pool.get(n), bmcRunner: new LocalTransport('controller') }), new Map(groups.map((g) => [g.name, g.nodes])));
        } finally {
          await pool.closeAll();
        }
      },
      groupOfLock: (lock) => groups.find((g) => g.lock === lock)?.name,
      start: (group) => runPlaybook('service-start.yml', { service: group }),
      // node-failover takes over, from a node already powered off, the groups seen nowhere.
      failover: (node) => runPlaybook(playbook, { failed: node }),
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return ExitCode.OK;
}
