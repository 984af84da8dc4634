import { appendFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDirEach, tempStateDirEach } from '../helpers/state-dir.js';
import { localInventory, playbook, step } from '../helpers/model.js';
import { execute } from '../../src/engine/execute.js';
import { Journal } from '../../src/engine/journal.js';
import { Redactor } from '../../src/engine/redact.js';
import { findInterrupted } from '../../src/engine/resume.js';
import { describeRuns } from '../../src/engine/runs.js';
import { connectionFor } from '../../src/inventory/connection.js';
import { defaultRegistry } from '../../src/steps/registry.js';
import { TransportPool } from '../../src/transport/index.js';

// Which earlier run a re-run finishes (src/engine/resume.ts): the newest run of the same
// playbook, lock and vars that did not end whole; chosen from the journals' first lines, and
// trusted only when its journal (and an undo's) reads back whole.

const state = tempStateDirEach('baton-resume-find-');

const runs = () => path.join(state(), 'runs');

/** A run of `playbook` that changed `instance` on n1; `ended` says whether it ended whole. */
async function write(
  id: string,
  o: { playbook?: string; at?: string; ended?: boolean | 'failed-rolled-back'; undoOf?: string; vars?: Record<string, unknown>; resumes?: string; changes?: boolean } = {},
): Promise<Journal> {
  const j = new Journal(id, runs());
  j.append({ t: 'run', runId: id, mode: o.undoOf ? 'undo' : 'run', ...(o.undoOf ? { undoOf: o.undoOf } : { playbook: o.playbook ?? 'pb.yml' }), lock: 'L', extraVars: o.vars ?? {}, ...(o.resumes ? { resumes: o.resumes } : {}), controller: 'c', pid: 1, argv: [] });
  if (o.changes !== false) {
    const seq = j.append({ t: 'intent', instance: 'p0.s1', stepId: 's1', name: 'raise', kind: 'raise_vip', host: 'n1', on: 'n1', args: {}, before: null });
    j.append({ t: 'done', seq, status: 'changed' });
  }
  await j.durable();
  if (o.ended) j.append({ t: 'end', outcome: o.ended === true ? 'succeeded' : o.ended });
  j.close();
  return j;
}

describe('findInterrupted', () => {
  it('finds the newest run of the playbook that never ended, past runs of other playbooks', async () => {
    await write('20260101T000000Z-aaaaaa');
    await write('20260101T000001Z-bbbbbb', { playbook: 'other.yml' });
    for (let i = 0; i < 20; i++) await write(`20260101T0001${String(i).padStart(2, '0')}Z-cc${String(i).padStart(4, '0')}`, { playbook: 'health.yml', ended: true });
    expect(findInterrupted('pb.yml', 'L', {})).toEqual({ runId: '20260101T000000Z-aaaaaa', changed: new Set(['p0.s1@n1']), resumes: ['20260101T000000Z-aaaaaa'] });
    expect(findInterrupted('other.yml', 'L', {})?.runId).toBe('20260101T000001Z-bbbbbb');
    expect(findInterrupted('pb.yml', 'L', { x: 1 })).toBeUndefined();
  });

  it('the same request run again finishes it: -e flags in another order, the playbook from another path', async () => {
    // Before: the vars compared as JSON text (key order counted) and the playbook by its whole
    // path: the re-run found nothing owed, so the GARP and statd steps (when: changed) were skipped.
    await write('20260101T000000Z-aaaaaa', { playbook: '/opt/baton-1.2/playbooks/nfs-failover.yml', vars: { from: 'nas1', to: 'nas2', opts: { a: 1, b: [1, { y: 2, x: 1 }] } } });
    const found = findInterrupted('/usr/lib/baton/playbooks/nfs-failover.yml', 'L', { opts: { b: [1, { x: 1, y: 2 }], a: 1 }, to: 'nas2', from: 'nas1' });
    expect(found?.runId).toBe('20260101T000000Z-aaaaaa');
    expect(findInterrupted('/usr/lib/baton/playbooks/nfs-failover.yml', 'L', { to: 'nas1', from: 'nas2' })).toBeUndefined();
    expect(findInterrupted('/usr/lib/baton/playbooks/nfs-failover.yml', 'L', { opts: { b: [{ x: 1, y: 2 }, 1], a: 1 }, to: 'nas2', from: 'nas1' }), 'list order counts').toBeUndefined();
  });

  it('nothing is owed once a later run of it ended whole, or an undo of it did', async () => {
    await write('20260101T000000Z-aaaaaa');
    await write('20260101T000005Z-bbbbbb', { ended: true });
    expect(findInterrupted('pb.yml', 'L', {})).toBeUndefined();
    rmSync(state(), { recursive: true, force: true });
    await write('20260101T000000Z-aaaaaa');
    await write('20260101T000005Z-dddddd', { undoOf: '20260101T000000Z-aaaaaa', ended: true });
    expect(findInterrupted('pb.yml', 'L', {})).toBeUndefined();
  });

  it('a damaged journal is passed over: the older run is what is owed, a damaged undo undoes nothing', async () => {
    await write('20260101T000000Z-aaaaaa');
    const newer = await write('20260101T000005Z-bbbbbb', { ended: true });
    // A line appended by hand breaks the newer journal's hash chain: it says nothing.
    appendFileSync(newer.path, '{"t":"done","seq":9,"status":"changed","at":"x"}\n');
    expect(findInterrupted('pb.yml', 'L', {})?.runId).toBe('20260101T000000Z-aaaaaa');
    const undo = await write('20260101T000009Z-dddddd', { undoOf: '20260101T000000Z-aaaaaa', ended: true });
    expect(findInterrupted('pb.yml', 'L', {})).toBeUndefined();
    appendFileSync(undo.path, 'not json\n');
    expect(findInterrupted('pb.yml', 'L', {})?.runId).toBe('20260101T000000Z-aaaaaa');
  });

  it('a re-run that took an interrupted run over and then failed or died passes its debt on; one that succeeded settled it', async () => {
    const first = '20260101T000000Z-aaaaaa';
    await write(first);
    // The re-run counted the VIP as raised (not its own change), failed at the GARP and rolled back nothing.
    await write('20260101T000005Z-bbbbbb', { resumes: first, changes: false, ended: 'failed-rolled-back' });
    expect(findInterrupted('pb.yml', 'L', {})).toEqual({ runId: first, changed: new Set(['p0.s1@n1']), resumes: [first] });
    // A third that died before changing anything passes it on too.
    await write('20260101T000009Z-cccccc', { resumes: first, changes: false });
    expect(findInterrupted('pb.yml', 'L', {})?.runId).toBe(first);
    await write('20260101T000010Z-dddddd', { resumes: first, changes: false, ended: true });
    expect(findInterrupted('pb.yml', 'L', {})).toBeUndefined();
  });
});

describe('a re-run of a re-run that failed (run through the engine)', () => {
  const files = tempDirEach('baton-resume-files-');
  const f = (n: string) => path.join(files(), n);
  // The VIP's stand-in is a file; the announcement's is a one-shot command that fails while `down` exists.
  const pb = (announce: string) =>
    playbook([
      step('command', { argv: ['touch', f('raised')], creates: f('raised'), revert: ['rm', '-f', f('raised')] }, { register: 'raised' }),
      step('command', { argv: ['sh', '-c', 'test ! -e "$0" && touch "$1"', f('down'), f('announced')] }, { when: [announce] }),
    ]);

  async function run(id: string, p: ReturnType<typeof pb>, end: boolean) {
    const inventory = localInventory();
    const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
    const resume = findInterrupted('sw.yml', 'L', {});
    const j = new Journal(id, runs());
    j.append({ t: 'run', runId: id, mode: 'run', playbook: 'sw.yml', lock: 'L', extraVars: {}, controller: 'c', pid: 1, argv: [], ...(resume ? { resumes: resume.runId, carries: resume.runId } : {}) });
    const r = await execute({ playbook: p, inventory, extraVars: {}, registry: defaultRegistry(), pool, runId: id, journal: j, redactor: new Redactor(), onEvent: () => {}, resume });
    if (end) j.append({ t: 'end', outcome: r.outcome });
    j.close();
    await pool.closeAll();
    return r;
  }

  it('the third run sends the announcement the first owed and the second failed to send', async () => {
    // 1: raised, then killed before the announcement (its `when` is false here: never reached).
    await run('20260101T000000Z-aaaaaa', pb('raised is not defined'), false);
    expect(existsSync(f('raised'))).toBe(true);
    // 2: the same command finishes it, but the announcement fails (the new holder stopped answering).
    writeFileSync(f('down'), '');
    expect((await run('20260101T000100Z-bbbbbb', pb('raised is changed'), true)).exitCode).toBe(1);
    const firstRow = () => describeRuns().find((r) => r.runId === '20260101T000000Z-aaaaaa');
    expect(firstRow()?.finishedBy).toBeUndefined();
    rmSync(f('down'));
    // 3: all healthy: before, exit 0 with the announcement never sent.
    expect((await run('20260101T000200Z-cccccc', pb('raised is changed'), true)).exitCode).toBe(0);
    expect(existsSync(f('announced'))).toBe(true);
    expect(firstRow()?.finishedBy).toBe('20260101T000200Z-cccccc');
  });
});
