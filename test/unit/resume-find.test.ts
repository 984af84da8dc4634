import { appendFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempStateDirEach } from '../helpers/state-dir.js';
import { Journal } from '../../src/engine/journal.js';
import { findInterrupted } from '../../src/engine/resume.js';

// Which earlier run a re-run finishes (src/engine/resume.ts): the newest run of the same
// playbook, lock and vars that did not end whole; chosen from the journals' first lines, and
// trusted only when its journal (and an undo's) reads back whole.

const state = tempStateDirEach('baton-resume-find-');

const runs = () => path.join(state(), 'runs');

/** A run of `playbook` that changed `instance` on n1; `ended` says whether it ended whole. */
async function write(id: string, o: { playbook?: string; at?: string; ended?: boolean; undoOf?: string; vars?: Record<string, unknown> } = {}): Promise<Journal> {
  const j = new Journal(id, runs());
  j.append({ t: 'run', runId: id, mode: o.undoOf ? 'undo' : 'run', ...(o.undoOf ? { undoOf: o.undoOf } : { playbook: o.playbook ?? 'pb.yml' }), lock: 'L', extraVars: o.vars ?? {}, controller: 'c', pid: 1, argv: [] });
  const seq = j.append({ t: 'intent', instance: 'p0.s1', stepId: 's1', name: 'raise', kind: 'raise_vip', host: 'n1', on: 'n1', args: {}, before: null });
  j.append({ t: 'done', seq, status: 'changed' });
  await j.durable();
  if (o.ended) j.append({ t: 'end', outcome: 'succeeded' });
  j.close();
  return j;
}

describe('findInterrupted', () => {
  it('finds the newest run of the playbook that never ended, past runs of other playbooks', async () => {
    await write('20260101T000000Z-aaaaaa');
    await write('20260101T000001Z-bbbbbb', { playbook: 'other.yml' });
    for (let i = 0; i < 20; i++) await write(`20260101T0001${String(i).padStart(2, '0')}Z-cc${String(i).padStart(4, '0')}`, { playbook: 'health.yml', ended: true });
    expect(findInterrupted('pb.yml', 'L', {})).toEqual({ runId: '20260101T000000Z-aaaaaa', changed: new Set(['p0.s1@n1']) });
    expect(findInterrupted('other.yml', 'L', {})?.runId).toBe('20260101T000001Z-bbbbbb');
    expect(findInterrupted('pb.yml', 'L', { x: 1 })).toBeUndefined();
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
});
