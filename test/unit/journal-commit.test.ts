import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execute } from '../../src/engine/execute.js';
import { Journal, inspectJournal, readJournal } from '../../src/engine/journal.js';
import { Redactor } from '../../src/engine/redact.js';
import { revertChanges } from '../../src/engine/rollback.js';
import { defaultRegistry, StepRegistry } from '../../src/steps/registry.js';
import { allKinds } from '../../src/steps/index.js';
import type { StepKind } from '../../src/steps/contract.js';
import { TransportPool } from '../../src/transport/index.js';
import { connectionFor } from '../../src/inventory/connection.js';
import { localInventory, playbook, step } from '../helpers/model.js';

// The journal's group commit: many records share one fsync, and a change still waits until its
// intent is on disk. `onLine` is told a line only after the fsync that covers it, so it shows
// what was on disk at any moment.

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'baton-journal-commit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('journal group commit', () => {
  it('tells each line once, in order, after the fsync that covers it; concurrent waiters share it', async () => {
    const told: number[] = [];
    const j = new Journal('r1', dir, undefined, (i) => told.push(i));
    j.append({ t: 'run', runId: 'r1', mode: 'run', controller: 'c', pid: 1, argv: [] });
    const seqs = Array.from({ length: 8 }, (_, k) =>
      j.append({ t: 'intent', instance: `p0.s0[${k}]`, stepId: 's0', name: 'x', kind: 'command', host: 'h', on: 'h', args: {}, before: null }),
    );
    // The run record is on disk at once (a journal left empty by a power loss stops undos); the
    // intents are written, not yet known on disk: nobody is told of them before an fsync.
    expect(told).toEqual([0]);
    await Promise.all(seqs.map(() => j.durable()));
    expect(told).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // Nothing new: durable() has nothing to wait for.
    await j.durable();
    expect(told).toHaveLength(9);
    j.append({ t: 'end', outcome: 'succeeded' });
    // The end record is on disk when append returns, and the journal is sealed whole.
    expect(told).toHaveLength(10);
    j.close();
    expect(inspectJournal(j.path).records).toHaveLength(10);
  });

  it('a close while an fsync is under way neither throws nor loses the lines written', async () => {
    const j = new Journal('r2', dir);
    j.append({ t: 'run', runId: 'r2', mode: 'run', controller: 'c', pid: 1, argv: [] });
    const waiting = j.durable();
    j.close();
    await waiting;
    expect(readFileSync(j.path, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it("a change starts only once its intent is on disk (forward and revert)", async () => {
    const told: string[] = [];
    const journal = new Journal('r3', dir, undefined, (_i, line) => told.push(line));
    const seenAtApply: boolean[] = [];
    const seenAtRevert: boolean[] = [];
    const onDisk = (name: string, kind: 'intent') => told.some((l) => l.includes(`"t":"${kind}"`) && l.includes(`"name":"${name}"`));
    let done = false;
    const probeKind: StepKind = {
      kind: 'probe_order',
      probe: async () => ({ done }),
      satisfied: (s) => (s as { done: boolean }).done,
      apply: async () => {
        seenAtApply.push(onDisk('ordered', 'intent'));
        done = true;
        return { done };
      },
      revert: async () => {
        seenAtRevert.push(onDisk('revert: ordered', 'intent'));
        done = false;
      },
      describe: () => ({ summary: 'order', commands: [] }),
    };
    const registry = new StepRegistry([...allKinds, probeKind], (k) => (k === 'probe_order' ? {} : defaultRegistry().schema(k)));
    const inventory = localInventory(['local']);
    const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
    try {
      const result = await execute({
        playbook: playbook([step('probe_order', {}, { name: 'ordered' })]),
        inventory,
        extraVars: {},
        registry,
        pool,
        runId: 'r3',
        journal,
        redactor: new Redactor(),
        onEvent: () => {},
      });
      expect(result.exitCode).toBe(0);
      expect(seenAtApply).toEqual([true]);
      const complete = await revertChanges(result.changes, { registry, inventory, pool, journal, onEvent: () => {} });
      expect(complete).toBe(true);
      expect(seenAtRevert).toEqual([true]);
    } finally {
      journal.close();
      await pool.closeAll();
    }
    expect(readJournal(journal.path).filter((r) => r.t === 'intent')).toHaveLength(2);
  });
});
