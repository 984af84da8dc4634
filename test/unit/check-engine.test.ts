/**
 * The check runner with a node that does not answer, on the local transport with a pool that
 * refuses one host after a delay (as a connect timeout does): its checks fold into one result,
 * the other hosts' checks do not wait for it, a run_once check moves to the next host.
 */
import { describe, expect, it } from 'vitest';
import { check } from '../../src/engine/check.js';
import { defaultRegistry } from '../../src/steps/registry.js';
import { TransportPool, UnreachableError, type Transport } from '../../src/transport/index.js';
import { connectionFor } from '../../src/inventory/connection.js';
import { localInventory, playbook, step } from '../helpers/model.js';

const inventory = localInventory(['n1', 'n2']);

/** A pool where `down` hosts fail to connect after `delayMs`, like a connect timeout. */
function poolWith(down: string[], delayMs = 300) {
  const real = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
  const asked: string[] = [];
  return {
    asked,
    get(host: string): Promise<Transport> {
      asked.push(host);
      if (down.includes(host)) return new Promise((_, reject) => setTimeout(() => reject(new UnreachableError(host, `cannot reach ${host} at root@198.18.120.12:22: timed out while connecting`)), delayMs));
      return real.get(host);
    },
    closeAll: () => real.closeAll(),
  };
}

const steps = () =>
  playbook([
    step('disk_free', { path: '/tmp', min_free_percent: 1 }, { name: 'room once', runOnce: true }),
    step('disk_free', { path: '/tmp', min_free_percent: 1 }, { name: 'room' }),
    step('service_running', { process: 'nosuchdaemon', severity: 'warning' }, { name: 'daemon' }),
  ]);

async function run(down: string[], extraVars: Record<string, unknown> = {}) {
  const pool = poolWith(down);
  const t0 = performance.now();
  try {
    const results = await check({ playbook: steps(), inventory, extraVars, registry: defaultRegistry(), pool });
    return { results, ms: performance.now() - t0 };
  } finally {
    await pool.closeAll();
  }
}

describe('check with an unreachable host', () => {
  it('n2 down: one UNKNOWN for n2 standing for its checks; n1 checked; run_once on n1', async () => {
    const { results } = await run(['n2']);
    const summary = results.map((r) => `${r.status} ${r.host} ${r.name}`);
    expect(summary).toEqual(['UNKNOWN n2 reach n2', 'OK n1 room once', 'OK n1 room', 'WARNING n1 daemon']);
    expect(results[0]!.message).toBe('unreachable, 2 checks not run: cannot reach n2 at root@198.18.120.12:22: timed out while connecting');
  });

  it('n1 down: the run_once check runs on n2 instead', async () => {
    const { results } = await run(['n1']);
    expect(results.map((r) => `${r.status} ${r.host} ${r.name}`)).toEqual(['UNKNOWN n1 reach n1', 'OK n2 room once', 'OK n2 room', 'WARNING n2 daemon']);
    expect(results[0]!.message).toMatch(/^unreachable, 2 checks not run: /);
  });

  it('-e check_unreachable=critical makes it CRITICAL', async () => {
    const { results } = await run(['n2'], { check_unreachable: 'critical' });
    expect(results[0]).toMatchObject({ host: 'n2', kind: 'reach', status: 'CRITICAL' });
  });

  it('every host down: one result per host, nothing else', async () => {
    const { results } = await run(['n1', 'n2']);
    expect(results.map((r) => `${r.status} ${r.host} ${r.kind}`)).toEqual(['UNKNOWN n1 reach', 'UNKNOWN n2 reach']);
  });
});

describe('check from the controller with every host down', () => {
  it('nfs_null asks the VIP itself: every node unreachable and the NFS server silent is CRITICAL, not UNKNOWN', async () => {
    const pool = poolWith(['n1', 'n2'], 50);
    try {
      const results = await check({
        playbook: playbook([step('nfs_null', { address: '127.0.0.1', port: 1, timeout: 1 }, { name: 'the NFS server answers', runOnce: true }), step('disk_free', { path: '/tmp', min_free_percent: 1 }, { name: 'room' })]),
        inventory,
        extraVars: {},
        registry: defaultRegistry(),
        pool,
      });
      const byName = Object.fromEntries(results.map((r) => [r.name, r]));
      expect(byName['the NFS server answers']).toMatchObject({ status: 'CRITICAL', kind: 'nfs_null' });
      expect(byName['the NFS server answers']!.message).toMatch(/NULL call to 127\.0\.0\.1:1 failed/);
      // The hosts' own checks are still folded into one UNKNOWN each.
      expect(results.filter((r) => r.kind === 'reach').map((r) => `${r.status} ${r.host}`)).toEqual(['UNKNOWN n1', 'UNKNOWN n2']);
    } finally {
      await pool.closeAll();
    }
  });
});
