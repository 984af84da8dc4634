import { readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { localInventory, playbook, step } from '../helpers/model.js';
import { tempDirEach, tempStateDirEach } from '../helpers/state-dir.js';
import { execute } from '../../src/engine/execute.js';
import { Journal, type RunRecord } from '../../src/engine/journal.js';
import { Redactor } from '../../src/engine/redact.js';
import { runsDir } from '../../src/engine/state-dir.js';
import { changesToRevert, executeUndo, planUndo } from '../../src/engine/undo.js';
import { connectionFor } from '../../src/inventory/connection.js';
import { defaultRegistry } from '../../src/steps/registry.js';
import { TransportPool } from '../../src/transport/index.js';

// An undo (or a run's own rollback) killed after a revert took effect and before its `done`
// record: the change is back as before, with no record saying so. The next `baton undo` used to
// call that drift ("changed since by something baton did not journal") and refuse, exit 2, for
// ever — the watcher retrying every round — leaving --force, which also drops the peer checks.

tempStateDirEach('baton-undo-killed-');
const files = tempDirEach('baton-undo-files-');
const RUN = '20260101T000000Z-aaaaaa';

const touch = (name: string) => step('command', { argv: ['touch', path.join(files(), name)], creates: path.join(files(), name), revert: ['rm', '-f', path.join(files(), name)] });

/** The run: creates a, then b (seq 1 and 2). */
async function runIt(): Promise<Journal> {
  const inventory = localInventory();
  const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
  const j = new Journal(RUN, runsDir());
  j.append({ t: 'run', runId: RUN, mode: 'run', playbook: 'x.yml', lock: 'L', controller: 'c', pid: 1, argv: [] });
  await execute({ playbook: playbook([touch('a'), touch('b')]), inventory, extraVars: {}, registry: defaultRegistry(), pool, runId: RUN, journal: j, redactor: new Redactor(), onEvent: () => {} });
  await pool.closeAll();
  return j;
}

/** The revert of b journaled, then b removed, then the process gone before its outcome. */
async function revertOfBKilled(j: Journal): Promise<void> {
  j.append({ t: 'intent', instance: 'p0.s1', stepId: 'p0.s1', name: 'revert: b', kind: 'command', host: 'local', on: 'local', args: {}, before: {}, reverts: { runId: RUN, seq: 2 } });
  await j.durable();
  unlinkSync(path.join(files(), 'b'));
  j.close();
}

async function undoAgain(): Promise<boolean> {
  const inventory = localInventory();
  const registry = defaultRegistry();
  await registry.ensureLoaded();
  const plan = planUndo(RUN);
  const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
  try {
    return await executeUndo({ plan, changes: changesToRevert(plan, inventory, registry), inventory, registry, pool, openJournal: () => new Journal('20260101T000200Z-cccccc', runsDir()), onEvent: () => {}, force: false });
  } finally {
    await pool.closeAll();
  }
}

it('an undo killed mid-revert: the next undo takes the revert as done and puts back the rest', async () => {
  (await runIt()).close();
  const u1 = new Journal('20260101T000100Z-bbbbbb', runsDir());
  u1.append({ t: 'run', runId: '20260101T000100Z-bbbbbb', mode: 'undo', undoOf: RUN, lock: 'L', controller: 'c', pid: 2, argv: [] });
  await revertOfBKilled(u1);
  expect(await undoAgain()).toBe(true);
  expect(readdirSync(files())).toEqual([]);
});

it('a run killed during its own rollback: baton undo puts back the rest', async () => {
  await revertOfBKilled(await runIt());
  expect(await undoAgain()).toBe(true);
  expect(readdirSync(files())).toEqual([]);
});

it('a change put back by hand, with no revert started, is still drift: the undo refuses and touches nothing', async () => {
  (await runIt()).close();
  unlinkSync(path.join(files(), 'b'));
  await expect(undoAgain()).rejects.toThrow(/will not undo run .*changed since by something baton did not journal/s);
  expect(readdirSync(files())).toEqual(['a']);
});

describe('a damaged journal of another run (an empty seal after a power loss)', () => {
  const seal = (id: string) => path.join(runsDir(), `${id}.seal`);
  const otherRun = async (id: string, head: Partial<RunRecord>) => {
    const j = new Journal(id, runsDir());
    j.append({ t: 'run', runId: id, mode: 'run', playbook: 'y.yml', lock: 'M', controller: 'c', pid: 3, argv: [], ...head } as RunRecord);
    j.append({ t: 'end', outcome: 'succeeded' });
    j.close();
    // The rename of the seal reached the disk, its data did not.
    writeFileSync(seal(id), '');
  };

  it("is passed over, with a note: the undo puts this run's changes back", async () => {
    (await runIt()).close();
    await otherRun('20260101T000300Z-dddddd', {});
    const plan = planUndo(RUN);
    expect(plan.passedOver).toEqual([expect.stringMatching(/journal of run 20260101T000300Z-dddddd \(another run\) is damaged .*seal.*this undo goes on without it/)]);
    expect(await undoAgain()).toBe(true);
    expect(readdirSync(files())).toEqual([]);
  });

  it('an undo of this run with a damaged journal still stops the undo, touching nothing', async () => {
    (await runIt()).close();
    await otherRun('20260101T000300Z-dddddd', { mode: 'undo', undoOf: RUN });
    expect(() => planUndo(RUN)).toThrow(/journal .*20260101T000300Z-dddddd.* is damaged/);
    expect(readdirSync(files()).sort()).toEqual(['a', 'b']);
  });

  it('a journal with no whole first line (empty, or one torn line: a power loss) is passed over, with a note', async () => {
    (await runIt()).close();
    // Before: every undo stopped at it, exit 2, "the journal is empty", naming no way out.
    writeFileSync(path.join(runsDir(), '20260101T000300Z-eeeeee.jsonl'), '');
    writeFileSync(path.join(runsDir(), '20260101T000400Z-ffffff.jsonl'), '{"t":"run","runId":"20260101T000400Z-ff');
    const plan = planUndo(RUN);
    expect(plan.passedOver).toEqual([
      expect.stringMatching(/journal of run 20260101T000300Z-eeeeee has no whole first line \(the journal is empty.*this undo goes on without it/),
      expect.stringMatching(/journal of run 20260101T000400Z-ffffff has no whole first line \(its only line is torn/),
    ]);
    expect(await undoAgain()).toBe(true);
    expect(readdirSync(files())).toEqual([]);
  });
});
