/**
 * Which hosts a run must reach before its first change (engine/session.ts): every host of its
 * plays, but of a play whose steps all run once (node-failover's fence), any one: a second node
 * down must not stop the failover of the first.
 */
import { describe, expect, it } from 'vitest';
import type { ExpandedPlay } from '../../src/engine/expand.js';
import { hostsToReach, judgeReach } from '../../src/engine/session.js';

const play = (title: string, hosts: string[], steps: Array<{ runOnce?: boolean; delegateTo?: string }>): ExpandedPlay =>
  ({ play: { steps: steps.map((s) => ({ runOnce: false, ...s })) }, index: 0, title, hosts, units: [{ title, hosts, lock: 'l' }] }) as unknown as ExpandedPlay;

const FENCE = play('fence n1', ['n2', 'n3'], [{ runOnce: true }]);
const TAKEOVER = play('take nfs-a over', ['n2'], [{}, {}]);
const lost = (host: string) => ({ host, error: new Error(`${host}: connection timed out`) });

describe('the hosts a run must reach', () => {
  it('a play whose steps all run once needs one of its hosts; every other play needs all of its own', () => {
    expect(hostsToReach([FENCE, TAKEOVER])).toEqual({ needed: ['n2'], anyOf: [{ title: 'fence n1', hosts: ['n2', 'n3'] }] });
    // One step that runs on every host, or a delegate, and every host is needed again.
    expect(hostsToReach([play('p', ['n2', 'n3'], [{ runOnce: true }, {}])]).needed).toEqual(['n2', 'n3']);
    expect(hostsToReach([play('p', ['n2', 'n3'], [{ runOnce: true, delegateTo: 'n4' }])]).needed).toEqual(['n4', 'n2', 'n3']);
  });

  it('n3 down: the fence runs on n2, said in a note; nothing is fatal', () => {
    const r = judgeReach(hostsToReach([FENCE, TAKEOVER]), [lost('n3')]);
    expect(r.fatal).toEqual([]);
    expect(r.notes).toEqual(['note: n3 could not be reached; "fence n1" runs its steps once, on n2 (the first of its hosts that answered)']);
    expect([...r.down]).toEqual(['n3']);
  });

  it('a needed host down, or every host of a run-once play down: the run stops before anything, naming them', () => {
    expect(judgeReach(hostsToReach([FENCE, TAKEOVER]), [lost('n2')]).fatal.map((f) => f.host)).toEqual(['n2']);
    expect(judgeReach(hostsToReach([FENCE]), [lost('n2'), lost('n3')]).fatal.map((f) => f.host)).toEqual(['n2', 'n3']);
  });
});
