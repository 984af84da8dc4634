import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// A disk that fills up under the journal: Linux then writes part of a line (what fits) and fails
// the next write with ENOSPC. The fake below does that to the writes the test arms; every other
// fs call is the real one.
const disk = vi.hoisted(() => ({ fullAfterBytes: Infinity }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const writeSync = ((fd: number, data: Buffer | string, offset?: number, length?: number) => {
    const buf = typeof data === 'string' ? Buffer.from(data) : data.subarray(offset ?? 0, (offset ?? 0) + (length ?? data.length - (offset ?? 0)));
    if (disk.fullAfterBytes <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const n = Math.min(buf.length, disk.fullAfterBytes);
    disk.fullAfterBytes -= n;
    return fs.writeSync(fd, buf, 0, n);
  }) as typeof fs.writeSync;
  return { ...fs, default: { ...fs, writeSync }, writeSync };
});

const { Journal, inspectJournal, pendingChanges, readJournal } = await import('../../src/engine/journal.js');
const { execute } = await import('../../src/engine/execute.js');
const { revertChanges } = await import('../../src/engine/rollback.js');
const { Redactor } = await import('../../src/engine/redact.js');
const { defaultRegistry, StepRegistry } = await import('../../src/steps/registry.js');
const { allKinds } = await import('../../src/steps/index.js');
const { TransportPool } = await import('../../src/transport/index.js');
const { connectionFor } = await import('../../src/inventory/connection.js');
const { localInventory, playbook, step } = await import('../helpers/model.js');
import type { StepKind } from '../../src/steps/contract.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'baton-journal-full-'));
  disk.fullAfterBytes = Infinity;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const intent = (k: number) => ({ t: 'intent' as const, instance: `p0.s${k}`, stepId: `s${k}`, name: `step ${k}`, kind: 'command', host: 'h', on: 'h', args: {}, before: null });

describe('a journal on a disk that fills up', () => {
  it('an intent that fits only in part is an error before the change, and the journal stays whole', async () => {
    const j = new Journal('r1', dir);
    j.append({ t: 'run', runId: 'r1', mode: 'run', controller: 'c', pid: 1, argv: [] });
    const first = j.append(intent(1));
    j.append({ t: 'done', seq: first, status: 'changed', after: null });
    await j.durable();
    // Room for 40 more bytes: the next intent is written in part, then the disk is full.
    disk.fullAfterBytes = 40;
    // Before: the short write counted as the whole line, durable() said it was on disk, and the
    // change was made; the journal then ended in a torn line that undo ignored (the change stayed
    // on the node for good), or, once a later line landed, a journal undo refused as damaged.
    expect(() => j.append(intent(2))).toThrow(/cannot write the run's journal .*ENOSPC/);
    expect(j.writeError).toBeDefined();
    const reading = inspectJournal(j.path);
    expect(reading.torn, 'the part-line was cut off').toBe(false);
    expect(readFileSync(j.path, 'utf8').endsWith('\n')).toBe(true);
    expect(reading.records.map((r) => r.t)).toEqual(['run', 'intent', 'done']);

    // Space comes back: the journal still takes no intent (its chain would be written around a
    // failure nobody judged), and the records that only close something are dropped, not thrown.
    disk.fullAfterBytes = Infinity;
    expect(() => j.append(intent(3))).toThrow(/cannot write the run's journal/);
    expect(() => j.append({ t: 'done', seq: 2, status: 'failed', error: 'x' })).not.toThrow();
    expect(() => j.append({ t: 'end', outcome: 'failed-not-rolled-back' })).not.toThrow();
    expect(readJournal(j.path).map((r) => r.t)).toEqual(['run', 'intent', 'done']);
    j.close();
  });

  it('a lost done record leaves its change pending, for undo to judge by probing', async () => {
    const j = new Journal('r2', dir);
    j.append({ t: 'run', runId: 'r2', mode: 'run', controller: 'c', pid: 1, argv: [] });
    const seq = j.append(intent(1));
    await j.durable();
    disk.fullAfterBytes = 10;
    expect(() => j.append({ t: 'done', seq, status: 'changed', after: null })).not.toThrow();
    expect(j.writeError).toBeDefined();
    const records = readJournal(j.path);
    expect(pendingChanges(records).map((r) => r.seq)).toEqual([seq]);
    j.close();
  });

  it('a rollback whose intents the journal cannot take reverts nothing, says why, and does not throw', async () => {
    const state = new Map<string, boolean>();
    const reverted: string[] = [];
    const flag: StepKind<{ name: string }, boolean> = {
      kind: 'flag',
      probe: async (_ctx, a) => state.get(a.name) ?? false,
      satisfied: (s) => s,
      apply: async (_ctx, a) => void state.set(a.name, true),
      revert: async (_ctx, a) => void (reverted.push(a.name), state.set(a.name, false)),
      describe: (a) => ({ summary: `flag ${a.name}`, commands: [] }),
    };
    const registry = new StepRegistry([...allKinds, flag as StepKind], (k) => (k === 'flag' ? {} : defaultRegistry().schema(k)));
    const inventory = localInventory(['local']);
    const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
    const journal = new Journal('r4', dir);
    try {
      journal.append({ t: 'run', runId: 'r4', mode: 'run', controller: 'c', pid: 1, argv: [] });
      const result = await execute({
        playbook: playbook([step('flag', { name: 'a' }), step('flag', { name: 'b' })]),
        inventory, extraVars: {}, registry, pool, runId: 'r4', journal, redactor: new Redactor(), onEvent: () => {},
      });
      expect(result.exitCode).toBe(0);
      disk.fullAfterBytes = 0;
      const errors: string[] = [];
      // Before: the first revert's intent threw out of revertChanges, and the run's rollback (in a
      // looped play, every item's) ended with an exception while other items still ran.
      const complete = await revertChanges(result.changes, { registry, inventory, pool, journal, onEvent: (e) => void (e.type === 'revert-end' && !e.ok && errors.push(e.error ?? '')) });
      expect(complete).toBe(false);
      expect(reverted, 'no revert without its intent on disk').toEqual([]);
      expect(errors).toHaveLength(2);
      expect(errors[0]).toMatch(/cannot write the run's journal .*ENOSPC/);
      expect(pendingChanges(readJournal(journal.path)).map((r) => r.name).sort(), 'both left for `baton undo`').toEqual(['flag a', 'flag b']);
    } finally {
      journal.close();
      await pool.closeAll();
    }
  });
});
