import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempStateDirEach } from '../helpers/state-dir.js';
import type { ExpandedPlay } from '../../src/engine/expand.js';
import { Journal } from '../../src/engine/journal.js';
import { findInterrupted, owedByGroup, owedCheck, owedOfItems } from '../../src/engine/resume.js';

// What a service group's last run left owed (src/engine/resume.ts): the newest run that took the
// group's lock, whatever its playbook, read for the group's item only; and how a re-run numbers
// those step instances as its own.

const state = tempStateDirEach('baton-resume-groups-');

const RAISE = 'p0.s0.group-move.s17';
const runs = () => path.join(state(), 'runs');

/** A group-playbook run that raised nfs-a's VIP on n2 (item 0) and nfs-b's on n3 (item 1). */
async function write(id: string, o: { playbook?: string; lock?: string; ended?: string; undoOf?: string; here?: boolean; vars?: Record<string, unknown>; itemEnded?: string; endItems?: Array<{ label: string; outcome: string }>; carries?: string; changes?: boolean } = {}): Promise<void> {
  const j = new Journal(id, runs());
  const who = o.here ? { controller: os.hostname(), pid: process.pid } : { controller: 'elsewhere', pid: 1 };
  j.append({ t: 'run', runId: id, mode: o.undoOf ? 'undo' : 'run', ...(o.undoOf ? { undoOf: o.undoOf } : { playbook: o.playbook ?? '/pb/service-move.yml' }), lock: o.lock ?? 'service-nfs-a,service-nfs-b', extraVars: o.vars ?? { service: 'nfs-a' }, ...(o.carries ? { carries: o.carries } : {}), ...who, argv: [] });
  for (const [i, label, host] of o.changes === false ? [] : ([[0, 'nfs-a', 'n2'], [1, 'nfs-b', 'n3']] as const)) {
    const seq = j.append({ t: 'intent', instance: `${RAISE}#${i}`, stepId: RAISE, name: 'raise', kind: 'raise_vip', host, on: host, args: {}, before: null, item: { index: i, label } });
    j.append({ t: 'done', seq, status: 'changed' });
  }
  if (o.itemEnded) j.append({ t: 'item', play: 0, label: 'nfs-a', outcome: o.itemEnded });
  await j.durable();
  if (o.ended) j.append({ t: 'end', outcome: o.ended as 'succeeded', ...(o.endItems ? { items: o.endItems } : {}) });
  j.close();
}

describe('owedByGroup', () => {
  it('a run that never ended owes what it changed for the group\'s item, and nothing of the other groups\'', async () => {
    await write('20260101T000000Z-aaaaaa');
    expect(owedByGroup('nfs-a', 'service-nfs-a')).toEqual({
      runId: '20260101T000000Z-aaaaaa',
      requests: [{ runId: '20260101T000000Z-aaaaaa', playbook: '/pb/service-move.yml', extraVars: { service: 'nfs-a' } }],
      changed: [{ instance: `${RAISE}#0`, host: 'n2', kind: 'raise_vip' }],
    });
    expect(owedByGroup('nfs-c', 'service-nfs-c')).toBeUndefined();
  });

  it('nothing is owed once a later run under the lock ended whole, or an undo of it ran; a failed-not-rolled-back end still owes', async () => {
    await write('20260101T000000Z-aaaaaa');
    await write('20260101T000005Z-bbbbbb', { lock: 'fence-n1,service-nfs-a', ended: 'succeeded' });
    expect(owedByGroup('nfs-a', 'service-nfs-a')).toBeUndefined();
    await write('20260101T000009Z-cccccc', { ended: 'failed-not-rolled-back' });
    expect(owedByGroup('nfs-a', 'service-nfs-a')?.runId).toBe('20260101T000009Z-cccccc');
    await write('20260101T000010Z-dddddd', { undoOf: '20260101T000009Z-cccccc', ended: 'succeeded' });
    expect(owedByGroup('nfs-a', 'service-nfs-a')).toBeUndefined();
  });

  it('a group whose own item ended whole owes nothing, though the run died or failed for another group', async () => {
    await write('20260101T000000Z-aaaaaa', { itemEnded: 'succeeded' });
    expect(owedByGroup('nfs-a', 'service-nfs-a')).toBeUndefined();
    expect(owedByGroup('nfs-b', 'service-nfs-b')?.runId).toBe('20260101T000000Z-aaaaaa');
    await write('20260101T000001Z-bbbbbb', { itemEnded: 'left-in-place' });
    expect(owedByGroup('nfs-a', 'service-nfs-a')?.runId).toBe('20260101T000001Z-bbbbbb');
    await write('20260101T000002Z-cccccc', { ended: 'failed-not-rolled-back', endItems: [{ label: 'nfs-a', outcome: 'succeeded' }, { label: 'nfs-b', outcome: 'rollback-incomplete' }] });
    expect(owedByGroup('nfs-a', 'service-nfs-a')).toBeUndefined();
    expect(owedByGroup('nfs-b', 'service-nfs-b')?.runId).toBe('20260101T000002Z-cccccc');
  });

  it('a run that finished a group for an earlier run and then failed for it passes the earlier run\'s debt on', async () => {
    const first = '20260101T000000Z-aaaaaa';
    await write(first);
    // A service-start took nfs-a over from it, found the VIP up (not its own change), failed and rolled nfs-a back.
    await write('20260101T000005Z-bbbbbb', { playbook: '/pb/service-start.yml', carries: first, changes: false, itemEnded: 'rolled-back', ended: 'failed-rolled-back' });
    // Owed by the first run; a re-run of either request is "the same request" (it finishes).
    expect(owedByGroup('nfs-a', 'service-nfs-a')).toEqual({
      runId: first,
      requests: [
        { runId: '20260101T000005Z-bbbbbb', playbook: '/pb/service-start.yml', extraVars: { service: 'nfs-a' } },
        { runId: first, playbook: '/pb/service-move.yml', extraVars: { service: 'nfs-a' } },
      ],
      changed: [{ instance: `${RAISE}#0`, host: 'n2', kind: 'raise_vip' }],
    });
    // One whose nfs-a item succeeded finished it, though the run failed for another group.
    await write('20260101T000009Z-cccccc', { playbook: '/pb/service-start.yml', carries: first, changes: false, itemEnded: 'succeeded', ended: 'failed-rolled-back' });
    expect(owedByGroup('nfs-a', 'service-nfs-a')).toBeUndefined();
  });

  it('a run still going on this controller owes nothing: it is at work, not cut short', async () => {
    await write('20260101T000000Z-aaaaaa', { here: true });
    expect(owedByGroup('nfs-a', 'service-nfs-a')).toBeUndefined();
  });
});

describe('owedOfItems', () => {
  const expanded = (playIndex: number, items: Array<[number, string]>): ExpandedPlay[] => [
    {
      index: playIndex,
      title: 't',
      hosts: [],
      play: { steps: [{ id: `p${playIndex}.s0.group-move.s17`, kind: 'raise_vip' }, { id: `p${playIndex}.s0.group-move.s18`, kind: 'garp' }] },
      units: items.map(([index, label]) => ({ item: { var: 'move', value: { name: label, reason: 'failover', lock: `service-${label}` }, index, label }, title: label, hosts: [], lock: `service-${label}` })),
    } as unknown as ExpandedPlay,
  ];

  it('numbers the owed instances as this run\'s play and item; the same request takes the run over, another only finishes its group', async () => {
    await write('20260101T000000Z-aaaaaa');
    // node-failover's takeover play is its second (p1); nfs-a is its third item.
    const other = owedOfItems(expanded(1, [[2, 'nfs-a']]), '/pb/node-failover.yml', { failed: 'n1' });
    expect(other).toEqual({ runId: '20260101T000000Z-aaaaaa', changed: new Set(['p1.s0.group-move.s17#2@n2']), resumes: [] });
    const same = owedOfItems(expanded(0, [[0, 'nfs-a'], [1, 'nfs-b']]), '/pb/service-move.yml', { service: 'nfs-a' });
    expect(same).toEqual({ runId: '20260101T000000Z-aaaaaa', changed: new Set([`${RAISE}#0@n2`, `${RAISE}#1@n3`]), resumes: ['20260101T000000Z-aaaaaa'] });
    // The same playbook installed elsewhere (the watcher's shipped one, a person's checkout) is the same request.
    expect(owedOfItems(expanded(0, [[0, 'nfs-a']]), '/usr/lib/baton/playbooks/service-move.yml', { service: 'nfs-a' })?.resumes).toEqual(['20260101T000000Z-aaaaaa']);
    // A loop that is no placement (a user's own items) is not a group's: nothing is carried over.
    const own = expanded(0, [[0, 'nfs-a']]);
    own[0]!.units[0]!.item!.value = 'nfs-a';
    expect(owedOfItems(own, '/pb/service-move.yml', { service: 'nfs-a' })).toBeUndefined();
    // A step of another kind at that place in this run's play is not the step the run owed.
    const moved = expanded(0, [[0, 'nfs-a']]);
    (moved[0]!.play.steps as Array<{ kind: string }>)[0]!.kind = 'garp';
    expect(owedOfItems(moved, '/pb/service-move.yml', { service: 'nfs-a' })).toBeUndefined();
  });
});

describe('what a failed carrier passes on, and to whom', () => {
  const A = '20260101T000000Z-aaaaaa';
  const B = '20260101T000005Z-bbbbbb';

  it("a re-run of the carrier's own request finishes only its group of the run it carried, never that run's other groups", async () => {
    // A: service-move of nfs-a and nfs-b, killed. B: service-start nfs-a took nfs-a over (carries A), failed.
    await write(A, { vars: { service: 'both' } });
    await write(B, { playbook: '/pb/service-start.yml', lock: 'service-nfs-a', vars: { service: 'nfs-a' }, carries: A, changes: false, itemEnded: 'rolled-back', ended: 'failed-rolled-back' });
    // The same playbook request (not group by group): A is another request's run, not B's to pass on.
    expect(findInterrupted('/pb/service-start.yml', 'service-nfs-a', { service: 'nfs-a' })).toBeUndefined();
    // Group by group it is: nfs-a's raise only.
    expect(owedByGroup('nfs-a', 'service-nfs-a')?.changed).toEqual([{ instance: `${RAISE}#0`, host: 'n2', kind: 'raise_vip' }]);
  });

  it('a carried run that was undone since owes nothing, through the carrier either', async () => {
    await write(A, { vars: { service: 'nfs-a' } });
    await write(B, { lock: 'service-nfs-a', vars: { service: 'nfs-a' }, carries: A, changes: false, itemEnded: 'rolled-back', ended: 'failed-rolled-back' });
    await write('20260101T000007Z-uuuuuu', { undoOf: A, ended: 'succeeded' });
    expect(owedByGroup('nfs-a', 'service-nfs-a')).toBeUndefined();
  });

  it('a re-run of either request involved is the same request; only owing runs of that request are taken over', async () => {
    const F = '20260101T000000Z-ffffff';
    // A node-failover F was cut short; service-move M of nfs-a carried it and failed.
    await write(F, { playbook: '/pb/node-failover.yml', vars: { failed: 'n1' } });
    await write(B, { playbook: '/pb/service-move.yml', lock: 'service-nfs-a', vars: { service: 'nfs-a' }, carries: F, changes: false, itemEnded: 'rolled-back', ended: 'failed-rolled-back' });
    const check = (pb: string, vars: Record<string, unknown>) => owedCheck(pb, vars)({ name: 'nfs-a', lock: 'service-nfs-a' } as never);
    expect(check('/x/service-move.yml', { service: 'nfs-a' })).toEqual({ runId: F, sameRequest: true });
    expect(check('/y/node-failover.yml', { failed: 'n1' })).toEqual({ runId: F, sameRequest: true });
    expect(check('/y/service-start.yml', { service: 'nfs-a' })).toEqual({ runId: F, sameRequest: false });
  });
});
