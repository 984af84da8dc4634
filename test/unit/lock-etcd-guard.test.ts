import { existsSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { EtcdHeldLocks, FencedError } from '../../src/engine/locks/etcd.js';
import { connectionFor } from '../../src/inventory/connection.js';
import type { EtcdClient } from '../../src/transport/etcd.js';
import { TransportPool } from '../../src/transport/index.js';
import { localInventory } from '../helpers/model.js';
import { tempDirEach } from '../helpers/state-dir.js';

// A run holding its locks in etcd, whose controller was paused (SIGSTOP) for longer than the
// lease in the middle of a step: on SIGCONT its next command must not go out before the lease
// was asked about. The renewal timer had not run yet (no timer here: start() is not called), so
// only the guard in front of the command can tell.

const dir = tempDirEach('baton-etcd-guard-');

it('after a pause past two thirds of the lease, the next command renews first and is refused when the lease is gone', async () => {
  let keepAlives = 0;
  const client = { leaseKeepAlive: async () => (keepAlives++, 0) } as unknown as EtcdClient;
  const locks = new EtcdHeldLocks(client, 'etcd (test)', 'run-1', 'lease-1', new Map([['service-g1', 7]]), 0.3, () => undefined);
  const inventory = localInventory();
  const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
  try {
    const guarded = locks.guard(pool);
    const t = await guarded.get('local');
    // Within the lease: no question asked, the command runs.
    await t.exec(['touch', path.join(dir(), 'before')]);
    expect(keepAlives).toBe(0);
    await new Promise((r) => setTimeout(r, 250));
    await expect(t.exec(['touch', path.join(dir(), 'after')])).rejects.toBeInstanceOf(FencedError);
    expect(keepAlives).toBe(1);
    expect(existsSync(path.join(dir(), 'before'))).toBe(true);
    expect(existsSync(path.join(dir(), 'after'))).toBe(false);
  } finally {
    await pool.closeAll();
    await locks.release().catch(() => undefined);
  }
});
