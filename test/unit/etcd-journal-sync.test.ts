import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EtcdCoordinator, JOURNAL_RETENTION_DAYS } from '../../src/engine/coordinator.js';
import { JOURNAL_PREFIX } from '../../src/engine/locks/etcd.js';
import type { EtcdClient } from '../../src/transport/etcd.js';
import { MemEtcd } from '../helpers/mem-etcd.js';

// Journals other controllers mirrored to etcd, copied into this controller's state dir by every
// run, undo and `baton runs`; old ended ones pruned from etcd. The in-memory etcd counts the
// reads that carry values.

class CountingEtcd extends MemEtcd {
  valueReads = 0;
  override async range(key: string, o: { prefix?: boolean; keysOnly?: boolean } = {}) {
    if (!o.keysOnly) this.valueReads++;
    return super.range(key, o);
  }
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'baton-etcd-sync-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const idAt = (ms: number, tail: string) => `${new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${tail}`;

async function mirror(etcd: MemEtcd, runId: string, ended: boolean): Promise<void> {
  const lines = [`{"t":"run","runId":"${runId}","h":"0000000000000001"}`, `{"t":"intent","seq":1,"h":"0000000000000002"}`];
  if (ended) lines.push(`{"t":"end","outcome":"succeeded","h":"0000000000000003"}`);
  for (const [i, l] of lines.entries()) await etcd.put(`${JOURNAL_PREFIX}${runId}/${i}`, l);
}

describe('journals in etcd', () => {
  it('are copied once (later syncs read keys only), and ended ones past the retention leave etcd; an unended one stays', async () => {
    const etcd = new CountingEtcd();
    const old = idAt(NOW - (JOURNAL_RETENTION_DAYS + 10) * DAY, 'aaaaaa');
    const recent = idAt(NOW - DAY, 'bbbbbb');
    const owed = idAt(NOW - (JOURNAL_RETENTION_DAYS + 10) * DAY, 'cccccc');
    await mirror(etcd, old, true);
    await mirror(etcd, recent, true);
    await mirror(etcd, owed, false);
    const c = new EtcdCoordinator(etcd as unknown as EtcdClient);

    expect(await c.syncJournals(dir, NOW)).toEqual([]);
    for (const id of [old, recent, owed]) expect(existsSync(path.join(dir, `${id}.jsonl`)), id).toBe(true);
    expect(readFileSync(path.join(dir, `${old}.jsonl`), 'utf8').trim().split('\n')).toHaveLength(3);
    expect(existsSync(path.join(dir, `${old}.seal`))).toBe(true);
    // Before: nothing ever left etcd; every run's sync read every line of every journal.
    const left = [...etcd.kv.keys()].map((k) => k.split('/')[2]);
    expect(new Set(left)).toEqual(new Set([recent, owed]));
    expect(etcd.valueReads).toBe(3);

    etcd.valueReads = 0;
    await c.syncJournals(dir, NOW);
    expect(etcd.valueReads, 'nothing new: keys only').toBe(0);
    // A run that grew since it was copied is read again.
    await etcd.put(`${JOURNAL_PREFIX}${owed}/2`, '{"t":"done","seq":1,"h":"0000000000000004"}');
    await c.syncJournals(dir, NOW);
    expect(etcd.valueReads).toBe(1);
    expect(readFileSync(path.join(dir, `${owed}.jsonl`), 'utf8').trim().split('\n')).toHaveLength(3);
  });
});
