/**
 * Placement resolved at run time, without a lab: the moves `move`, `evacuate` and `failover`
 * ask for, worked out from ClusterStatus values built by hand (what observeGroups would judge),
 * the refusals an operator meets (unknown group, split, partial, unknown, a `to` the group may
 * not use), the loader's checks of `placement:`, and the shipped playbooks resolved end to end
 * over node reads built to match what the nodes would print.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ClusterStatus, GroupPlacement, GroupState, NodeObservation, NodeView } from '../../src/facts/groups.js';
import type { ServiceGroup } from '../../src/inventory/services.js';
import { PlacementRefused, resolvePlacement, resolvePlaybookPlacement, type Move } from '../../src/engine/placement.js';
import { expandPlays } from '../../src/engine/expand.js';
import type { PlacementRequest } from '../../src/playbook/model.js';
import { loadPlaybook, loadPlaybookText } from '../../src/playbook/load.js';
import { defaultRegistry } from '../../src/steps/registry.js';
import { localInventory, loadProblems } from '../helpers/model.js';
import { BatonError } from '../../src/util/errors.js';
import { acquireLock } from '../../src/engine/lock.js';
import { locksDir } from '../../src/engine/state-dir.js';
import { loadInventory } from '../../src/inventory/load.js';
import type { ExecResult, Transport } from '../../src/transport/transport.js';

function group(letter: string, i: number, nodes: string[]): ServiceGroup {
  return {
    name: `nfs-${letter}`,
    vip: { address: `198.18.194.${199 + i}`, prefix: 24 },
    interface: 'eth0',
    volume: { provider: 'loop', image: `/var/lib/baton-lab/place/disks/disk${i}.img` },
    mount: { path: `/srv/disk${i}`, fstype: 'ext4' },
    nfsExports: [{ path: `/srv/disk${i}`, pseudo: `/disk${i}`, fsid: 100 + i, exportId: 100 + i, squash: 'no_root_squash' }],
    iscsiTargets: [],
    nodes,
    home: nodes[0]!,
    lock: `service-nfs-${letter}`,
    implied: false,
  };
}

const GROUPS = [group('a', 1, ['n1', 'n2', 'n3']), group('b', 2, ['n2', 'n3', 'n1']), group('c', 3, ['n3', 'n1', 'n2']), group('d', 4, ['n1', 'n2', 'n3'])];

const EMPTY_VIEW: NodeView = { addresses: [], storage: { loops: [], claims: [], mounts: [] }, ganeshaExports: [], kernelExports: [], iscsiTargets: [], zpools: [], activeVgs: [], upMacs: [], downLinks: [] };
const up = (name: string): NodeObservation => ({ name, reachable: true, power: 'on', view: EMPTY_VIEW });
const down = (name: string, power: 'off' | 'unknown' = 'unknown'): NodeObservation => ({ name, reachable: false, power, error: `${name}: connection timed out` });

function at(name: string, state: GroupState, nodes: string[], unknownNodes: string[] = []): GroupPlacement {
  const summary = state === 'running' ? `running on ${nodes[0]}` : state === 'split' ? `SPLIT on ${nodes.join(' and ')} (VIP on ${nodes.join(' and ')})` : state === 'partial' ? `partial on ${nodes[0]} (export missing)` : state;
  return { name, state, nodes, home: GROUPS.find((g) => g.name === name)!.home, parts: {}, missing: [], unknownNodes, summary, serves: [] };
}

/** Every group on its home, every node up, unless told otherwise. */
function cluster(over: Partial<Record<string, GroupPlacement>> = {}, nodes: NodeObservation[] = [up('n1'), up('n2'), up('n3')]): ClusterStatus {
  return { groups: GROUPS.map((g) => over[g.name] ?? at(g.name, 'running', [g.home])), nodes, exitCode: 0 };
}

const resolve = (req: PlacementRequest, status = cluster()) => resolvePlacement(req, GROUPS, status);
const route = (moves: Move[]) => moves.map((m) => `${m.name} ${m.from}->${m.to}`);
function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PlacementRefused);
    expect((e as PlacementRefused).exitCode).toBe(2);
    return (e as Error).message;
  }
  throw new Error('expected a refusal, got none');
}

describe('move', () => {
  it('to the next preferred node after where it runs, with everything its steps need', () => {
    const { moves } = resolve({ kind: 'move', group: 'nfs-a' });
    expect(moves).toEqual([
      {
        name: 'nfs-a',
        from: 'n1',
        to: 'n2',
        lock: 'service-nfs-a',
        vip: '198.18.194.200',
        vip_prefix: 24,
        interface: 'eth0',
        interface_from: 'eth0',
        volume: { provider: 'loop', image: '/var/lib/baton-lab/place/disks/disk1.img' },
        volume_provider: 'loop',
        volume_image: '/var/lib/baton-lab/place/disks/disk1.img',
        mount_point: '/srv/disk1',
        fstype: 'ext4',
        mount_options: '',
        exports: [{ path: '/srv/disk1', pseudo: '/disk1', fsid: 101, export_id: 101, clients: '*', access: 'rw', squash: 'no_root_squash' }],
        iscsi_targets: [],
        export_path: '/srv/disk1',
        reason: 'switchover',
        mac: '',
      },
    ]);
  });

  it('a group with a failover MAC: its MAC, and its failover interface on both nodes for the VIP', () => {
    const withMac = GROUPS.map((g) => (g.name === 'nfs-a' ? { ...g, mac: '02:ba:12:c2:03:01', failoverInterface: 'fo1' } : g));
    const [m] = resolvePlacement({ kind: 'move', group: 'nfs-a' }, withMac, cluster({})).moves;
    expect({ mac: m!.mac, interface: m!.interface, interface_from: m!.interface_from }).toEqual({ mac: '02:ba:12:c2:03:01', interface: 'fo1', interface_from: 'fo1' });
  });

  it('wraps round the preference order, and skips a node that cannot be read or is off', () => {
    expect(route(resolve({ kind: 'move', group: 'nfs-a' }, cluster({ 'nfs-a': at('nfs-a', 'running', ['n3']) })).moves)).toEqual(['nfs-a n3->n1']);
    expect(route(resolve({ kind: 'move', group: 'nfs-a' }, cluster({}, [up('n1'), down('n2'), up('n3')])).moves)).toEqual(['nfs-a n1->n3']);
    expect(route(resolve({ kind: 'move', group: 'nfs-a' }, cluster({}, [up('n1'), { ...up('n2'), power: 'off' }, up('n3')])).moves)).toEqual(['nfs-a n1->n3']);
  });

  it('to a node given, if the group may run there; to where it already runs is nothing to do', () => {
    expect(route(resolve({ kind: 'move', group: 'nfs-a', to: 'n3' }).moves)).toEqual(['nfs-a n1->n3']);
    const same = resolve({ kind: 'move', group: 'nfs-a', to: 'n1' });
    expect([same.moves, same.notes]).toEqual([[], ['group nfs-a already runs on n1: nothing to move']]);
  });

  it('refuses an unknown group, naming the groups there are', () => {
    expect(refusal(() => resolve({ kind: 'move', group: 'nfs-z' }))).toBe('no service group "nfs-z" in the inventory (groups: nfs-a, nfs-b, nfs-c, nfs-d); nothing was touched');
  });

  it('refuses a group that is split, partial or unknown, saying what was seen and pointing at baton status', () => {
    expect(refusal(() => resolve({ kind: 'move', group: 'nfs-a' }, cluster({ 'nfs-a': at('nfs-a', 'split', ['n1', 'n2']) })))).toMatch(/^cannot move group nfs-a: it is SPLIT on n1 and n2 \(VIP on n1 and n2\); see `baton status -i INVENTORY`/);
    expect(refusal(() => resolve({ kind: 'move', group: 'nfs-a' }, cluster({ 'nfs-a': at('nfs-a', 'partial', ['n1']) })))).toMatch(/^cannot move group nfs-a: it is partial on n1 \(export missing\); see `baton status/);
    expect(refusal(() => resolve({ kind: 'move', group: 'nfs-a' }, cluster({ 'nfs-a': at('nfs-a', 'unknown', [], ['n1']) })))).toMatch(/^cannot move group nfs-a: it is unknown; see `baton status/);
    expect(refusal(() => resolve({ kind: 'move', group: 'nfs-a' }, cluster({ 'nfs-a': at('nfs-a', 'stopped', []) })))).toMatch(/^group nfs-a is stopped: there is nothing to move/);
  });

  it('refuses a `to` not among the group\'s nodes, or one that cannot be read', () => {
    const two = [group('a', 1, ['n1', 'n2'])];
    expect(() => resolvePlacement({ kind: 'move', group: 'nfs-a', to: 'n3' }, two, { groups: [at('nfs-a', 'running', ['n1'])], nodes: [up('n1'), up('n2'), up('n3')], exitCode: 0 })).toThrow(
      'group nfs-a may not run on n3: its nodes are n1, n2; nothing was touched',
    );
    expect(refusal(() => resolve({ kind: 'move', group: 'nfs-a', to: 'n2' }, cluster({}, [up('n1'), down('n2'), up('n3')])))).toBe('cannot move group nfs-a to n2: n2: connection timed out; nothing was touched');
    expect(refusal(() => resolve({ kind: 'move', group: 'nfs-a' }, cluster({}, [up('n1'), down('n2'), down('n3', 'off')])))).toMatch(/^cannot move group nfs-a off n1: no other of its nodes \(n1, n2, n3\) can take it \(n2: n2: connection timed out; n3: /);
  });
});

describe('evacuate', () => {
  it('moves every group on the node to its next preferred other node, and only those', () => {
    const { moves } = resolve({ kind: 'evacuate', node: 'n1' });
    expect(route(moves)).toEqual(['nfs-a n1->n2', 'nfs-d n1->n2']);
    expect(moves.map((m) => [m.lock, m.reason])).toEqual([['service-nfs-a', 'evacuate'], ['service-nfs-d', 'evacuate']]);
    // nfs-c (home n3) runs on n1 today: its next after n1 is n2.
    expect(route(resolve({ kind: 'evacuate', node: 'n1' }, cluster({ 'nfs-c': at('nfs-c', 'running', ['n1']) })).moves)).toEqual(['nfs-a n1->n2', 'nfs-c n1->n2', 'nfs-d n1->n2']);
  });

  it('skips an unreachable target for each group on its own', () => {
    expect(route(resolve({ kind: 'evacuate', node: 'n1' }, cluster({}, [up('n1'), down('n2'), up('n3')])).moves)).toEqual(['nfs-a n1->n3', 'nfs-d n1->n3']);
  });

  it('a node holding nothing: no item, and a note saying so', () => {
    const r = resolve({ kind: 'evacuate', node: 'n2' }, cluster({ 'nfs-b': at('nfs-b', 'running', ['n3']) }));
    expect([r.moves, r.notes]).toEqual([[], ['no group runs on n2: nothing to move']]);
  });

  it('refuses when a group on the node is split or partial (the others elsewhere may be anything)', () => {
    expect(refusal(() => resolve({ kind: 'evacuate', node: 'n1' }, cluster({ 'nfs-d': at('nfs-d', 'split', ['n1', 'n3']) })))).toMatch(/^cannot evacuate n1: group nfs-d: it is SPLIT on n1 and n3/);
    expect(route(resolve({ kind: 'evacuate', node: 'n1' }, cluster({ 'nfs-b': at('nfs-b', 'partial', ['n2']) })).moves)).toEqual(['nfs-a n1->n2', 'nfs-d n1->n2']);
  });

  it('refuses a node that is not one of any group, or cannot be read (that is a failover)', () => {
    expect(refusal(() => resolve({ kind: 'evacuate', node: 'n9' }))).toBe('no service group may run on "n9" (nodes of the groups: n1, n2, n3); nothing was touched');
    expect(refusal(() => resolve({ kind: 'evacuate', node: 'n1' }, cluster({}, [down('n1'), up('n2'), up('n3')])))).toMatch(/^cannot evacuate n1: it could not be read \(n1: connection timed out\); a node that is down is taken over with node-failover/);
  });
});

describe('failover', () => {
  it('takes the groups the failed (unreadable) node held to their first preferred survivor; groups elsewhere untouched', () => {
    const seen = cluster({ 'nfs-a': at('nfs-a', 'unknown', [], ['n1']), 'nfs-d': at('nfs-d', 'unknown', [], ['n1']) }, [down('n1'), up('n2'), up('n3')]);
    const { moves } = resolve({ kind: 'failover', node: 'n1' }, seen);
    expect(route(moves)).toEqual(['nfs-a n1->n2', 'nfs-d n1->n2']);
    expect(moves.every((m) => m.reason === 'failover')).toBe(true);
  });

  it('first preferred survivor, not the next after the failed node', () => {
    // nfs-c prefers n3, then n1, then n2: running on n1 and n1 fails, it goes home to n3.
    expect(route(resolve({ kind: 'failover', node: 'n1' }, cluster({ 'nfs-c': at('nfs-c', 'running', ['n1']) })).moves)).toEqual(['nfs-a n1->n2', 'nfs-c n1->n3', 'nfs-d n1->n2']);
  });

  it('a failed node already powered off: the groups seen nowhere are taken over (it cannot be read, so it may have held them), and the run says so', () => {
    // What observeGroups judges with n2 off by its BMC: nfs-b (home n2) seen nowhere is "stopped".
    const seen = cluster({ 'nfs-b': at('nfs-b', 'stopped', []) }, [up('n1'), down('n2', 'off'), up('n3')]);
    const { moves, notes } = resolve({ kind: 'failover', node: 'n2' }, seen);
    expect(route(moves)).toEqual(['nfs-b n2->n3']);
    expect(notes).toEqual(['group nfs-b is seen on no node and n2 could not be read (powered off): taken over as if n2 held it']);
  });

  it('a failed node that was read: a group seen nowhere was not on it, and is left stopped', () => {
    const { moves, notes } = resolve({ kind: 'failover', node: 'n2' }, cluster({ 'nfs-b': at('nfs-b', 'stopped', []) }));
    expect([moves, notes]).toEqual([[], ['group nfs-b is stopped (not on n2): left stopped', 'no group is held by n2: nothing to take over']]);
  });

  it('a takeover cut short (the group in part on one survivor, the failed node off or silent) is finished on that survivor; with the failed node read, it needs a person', () => {
    const partial = at('nfs-a', 'partial', ['n3']);
    const { moves, notes } = resolve({ kind: 'failover', node: 'n1' }, cluster({ 'nfs-a': partial }, [down('n1', 'off'), up('n2'), up('n3')]));
    // nfs-a prefers n2, but the part on n3 is where it is finished (never a second copy on n2).
    expect(route(moves)).toEqual(['nfs-a n1->n3', 'nfs-d n1->n2']);
    expect(notes[0]).toBe('group nfs-a is partial on n3 (export missing) and n1 could not be read: a takeover cut short, finished on n3');
    expect(route(resolve({ kind: 'failover', node: 'n1' }, cluster({ 'nfs-a': partial }, [down('n1'), up('n2'), up('n3')])).moves)).toEqual(['nfs-a n1->n3', 'nfs-d n1->n2']);
    expect(refusal(() => resolve({ kind: 'failover', node: 'n1' }, cluster({ 'nfs-a': partial })))).toMatch(/^cannot fail n1 over: group nfs-a: it is partial on n3/);
  });

  it('refuses a group that is unknown because of another node too, or split over survivors', () => {
    const seen = cluster({ 'nfs-a': at('nfs-a', 'unknown', [], ['n1', 'n2']) }, [down('n1'), down('n2'), up('n3')]);
    expect(refusal(() => resolve({ kind: 'failover', node: 'n1' }, seen))).toMatch(/^cannot fail n1 over: group nfs-a: it is unknown/);
    expect(refusal(() => resolve({ kind: 'failover', node: 'n1' }, cluster({ 'nfs-a': at('nfs-a', 'split', ['n1', 'n2']) })))).toMatch(/^cannot fail n1 over: group nfs-a: it is SPLIT/);
  });
});

describe('start', () => {
  const stopped = (name: string) => at(name, 'stopped', []);

  it('a stopped group on its first preferred node that can take it: an item from nowhere', () => {
    const { moves, notes } = resolve({ kind: 'start', group: 'nfs-b' }, cluster({ 'nfs-b': stopped('nfs-b') }));
    expect([route(moves), notes]).toEqual([['nfs-b ->n2'], []]);
    expect(moves[0]).toMatchObject({ from: '', to: 'n2', interface: 'eth0', interface_from: '', reason: 'start', lock: 'service-nfs-b' });
    // n2 down, n3 powered off: the next is n1.
    expect(route(resolve({ kind: 'start', group: 'nfs-b' }, cluster({ 'nfs-b': stopped('nfs-b') }, [up('n1'), down('n2'), down('n3', 'off')])).moves)).toEqual(['nfs-b ->n1']);
  });

  it('on a node given, when the group may run there and it can be read', () => {
    expect(route(resolve({ kind: 'start', group: 'nfs-b', on: 'n1' }, cluster({ 'nfs-b': stopped('nfs-b') })).moves)).toEqual(['nfs-b ->n1']);
    expect(refusal(() => resolve({ kind: 'start', group: 'nfs-b', on: 'n1' }, cluster({ 'nfs-b': stopped('nfs-b') }, [{ ...up('n1'), power: 'off' }, up('n2'), up('n3')])))).toBe(
      'cannot start group nfs-b on n1: it is powered off; nothing was touched',
    );
    const two = [group('a', 1, ['n1', 'n2'])];
    expect(() => resolvePlacement({ kind: 'start', group: 'nfs-a', on: 'n3' }, two, { groups: [at('nfs-a', 'stopped', [])], nodes: [up('n1'), up('n2'), up('n3')], exitCode: 1 })).toThrow(
      'group nfs-a may not run on n3: its nodes are n1, n2; nothing was touched',
    );
  });

  it('running whole already: nothing to do, wherever it runs; `on` naming another node is refused and points at service-move', () => {
    const same = resolve({ kind: 'start', group: 'nfs-a' });
    expect([same.moves, same.notes]).toEqual([[], ['group nfs-a already runs on n1: nothing to start']]);
    // Running away from home is still running: not started a second time on its home.
    const away = resolve({ kind: 'start', group: 'nfs-a' }, cluster({ 'nfs-a': at('nfs-a', 'running', ['n3']) }));
    expect([away.moves, away.notes]).toEqual([[], ['group nfs-a already runs on n3: nothing to start']]);
    expect(resolve({ kind: 'start', group: 'nfs-a', on: 'n1' }).moves).toEqual([]);
    expect(refusal(() => resolve({ kind: 'start', group: 'nfs-a', on: 'n2' }))).toBe(
      'group nfs-a already runs on n1, not n2: to move it, run playbooks/service-move.yml -e service=nfs-a -e to=n2; nothing was touched',
    );
  });

  it('refuses a group seen on two nodes, or not seen while one of its nodes could not be read; completes one seen in part where it is', () => {
    expect(refusal(() => resolve({ kind: 'start', group: 'nfs-a' }, cluster({ 'nfs-a': at('nfs-a', 'split', ['n1', 'n2']) })))).toMatch(/^cannot start group nfs-a: it is SPLIT on n1 and n2 .*see `baton status/);
    // In part on one node: completed there, not elsewhere.
    expect(route(resolve({ kind: 'start', group: 'nfs-a' }, cluster({ 'nfs-a': at('nfs-a', 'partial', ['n1']) })).moves)).toEqual(['nfs-a ->n1']);
    expect(refusal(() => resolve({ kind: 'start', group: 'nfs-a', on: 'n2' }, cluster({ 'nfs-a': at('nfs-a', 'partial', ['n1']) })))).toMatch(/^cannot start group nfs-a on n2: it is partial on n1 \(export missing\); complete it there/);
    expect(refusal(() => resolve({ kind: 'start', group: 'nfs-a' }, cluster({ 'nfs-a': at('nfs-a', 'unknown', [], ['n2']) }, [up('n1'), down('n2'), up('n3')])))).toMatch(/^cannot start group nfs-a: it is unknown/);
  });

  it('refuses when none of its nodes can take it', () => {
    expect(refusal(() => resolve({ kind: 'start', group: 'nfs-a' }, cluster({ 'nfs-a': stopped('nfs-a') }, [down('n1', 'off'), down('n2', 'off'), down('n3', 'off')])))).toMatch(
      /^cannot start group nfs-a: none of its nodes \(n1, n2, n3\) can take it \(n1: /,
    );
  });
});

describe('stop', () => {
  it('releases the group where it runs: an item to nowhere', () => {
    const { moves } = resolve({ kind: 'stop', group: 'nfs-c' }, cluster({ 'nfs-c': at('nfs-c', 'running', ['n2']) }));
    expect(route(moves)).toEqual(['nfs-c n2->']);
    expect(moves[0]).toMatchObject({ from: 'n2', to: '', interface: '', interface_from: 'eth0', reason: 'stop', lock: 'service-nfs-c' });
  });

  it('a group seen in part is released where it is seen; stopped already is nothing to do', () => {
    expect(route(resolve({ kind: 'stop', group: 'nfs-a' }, cluster({ 'nfs-a': at('nfs-a', 'partial', ['n3']) })).moves)).toEqual(['nfs-a n3->']);
    const r = resolve({ kind: 'stop', group: 'nfs-a' }, cluster({ 'nfs-a': at('nfs-a', 'stopped', []) }));
    expect([r.moves, r.notes]).toEqual([[], ['group nfs-a is stopped already: nothing to stop']]);
  });

  it('refuses a group seen on two nodes, or not seen while one of its nodes could not be read', () => {
    expect(refusal(() => resolve({ kind: 'stop', group: 'nfs-a' }, cluster({ 'nfs-a': at('nfs-a', 'split', ['n1', 'n2']) })))).toMatch(/^cannot stop group nfs-a: it is SPLIT on n1 and n2/);
    expect(refusal(() => resolve({ kind: 'stop', group: 'nfs-a' }, cluster({ 'nfs-a': at('nfs-a', 'unknown', [], ['n1']) }, [down('n1'), up('n2'), up('n3')])))).toMatch(/^cannot stop group nfs-a: it is unknown/);
    expect(refusal(() => resolve({ kind: 'stop', group: 'nfs-z' }))).toMatch(/^no service group "nfs-z"/);
  });
});

describe('loading placement:', () => {
  const load = (yaml: string) => loadPlaybookText(yaml, 'move.yml', { inventory: localInventory(['n1', 'n2']), registry: defaultRegistry(), extraVars: { service: 'nfs-a' } });
  const problems = (yaml: string): string[] => loadProblems(() => load(yaml));
  const steps = `  steps:\n    - command: { argv: [echo, "{{ move.name }}"] }\n`;

  it('a looped play whose items are left for the run; loop_control applies', () => {
    const play = load(`- hosts: "{{ move.to }}"\n  placement: { move: "{{ service }}" }\n  loop_control: { loop_var: move, concurrency: 2 }\n  lock: "{{ move.lock }}"\n${steps}`).plays[0]!;
    expect(play.placement).toEqual({ move: '{{ service }}' });
    expect(play.loop).toEqual({ items: [], var: 'move', concurrency: 2, onItemFailure: 'rollback_item' });
  });

  it('says where a bad placement is', () => {
    expect(problems(`- hosts: n1\n  placement: { move: a }\n  loop: [1]\n${steps}`)).toContain('2:3 play has both "placement" and "loop": placement makes the item list (one per group to move); keep one');
    expect(problems(`- hosts: n1\n  placement: { move: a, evacuate: n1 }\n  loop_control: { loop_var: move }\n${steps}`)).toEqual(['2:14 placement: give exactly one of move (a group, with to), evacuate (a node), failover (a node), start (a group, with on) or stop (a group), not move and evacuate']);
    expect(problems(`- hosts: n1\n  placement: { evacuate: n1, to: n2 }\n  loop_control: { loop_var: move }\n${steps}`)).toEqual(['2:30 placement: "to" goes with move only: evacuate sends each group to its own next preferred node']);
    expect(problems(`- hosts: n1\n  placement: { start: a, to: n2 }\n  loop_control: { loop_var: move }\n${steps}`)).toEqual(['2:26 placement: "to" goes with move only: start takes "on", the node to start it on']);
    expect(problems(`- hosts: n1\n  placement: { move: a, on: n2 }\n  loop_control: { loop_var: move }\n${steps}`)).toEqual(['2:25 placement: "on" goes with start only: a move names where it goes with "to"']);
    expect(problems(`- hosts: n1\n  placement: { start: a, stop: a }\n  loop_control: { loop_var: move }\n${steps}`)).toEqual([expect.stringMatching(/^2:14 placement: give exactly one of .*, not start and stop$/)]);
    expect(problems(`- hosts: n1\n  placement: { moev: a }\n  loop_control: { loop_var: move }\n${steps}`)).toEqual(expect.arrayContaining([expect.stringMatching(/^2:\d+ .*moev/)]));
    expect(problems(`- hosts: n1\n  placement: { move: "{{ servce }}" }\n  loop_control: { loop_var: move }\n${steps}`)).toEqual([expect.stringMatching(/^2:\d+ undefined variable "servce" in placement.*did you mean "service"/)]);
  });

  it('expanding a play whose placement was not resolved is refused, not read as "nothing to move"', () => {
    const pb = load(`- hosts: "{{ move.to }}"\n  placement: { move: "{{ service }}" }\n  loop_control: { loop_var: move }\n${steps}`);
    expect(() => expandPlays(pb, localInventory(['n1', 'n2']), {})).toThrow(BatonError);
  });
});

describe('the shipped playbooks, resolved over node reads', () => {
  const inventory = loadInventory(path.resolve('test/unit/fixtures/placement-inventory.yml'));
  const registry = defaultRegistry();
  const DISKS = '/var/lib/baton-lab/place/disks';

  /** What the node-view script prints on a node holding the given groups (1 = nfs-a, 2 = nfs-b) whole. */
  function viewText(ids: number[]): string {
    return [
      ...ids.map((i) => `2: eth0    inet 198.18.194.${199 + i}/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever`),
      '--baton--loops',
      `{"loopdevices": [${[1, 2].map((i) => `{"name": "/dev/loop${i - 1}", "back-file": "${DISKS}/d${i}.img"}`).join(',')}]}`,
      '--baton--claims',
      ...ids.map((i) => `/run/baton/loop/loop${i - 1}:${DISKS}/d${i}.img`),
      '--baton--mountinfo',
      ...ids.map((i) => `${200 + i} 184 7:${i - 1} / /srv/disk${i} rw,relatime - ext4 /dev/loop${i - 1} rw`),
      '--baton--ganesha',
      '   array [',
      ...ids.map((i) => `      struct {\n         uint16 ${100 + i}\n         string "/srv/disk${i}"\n      }`),
      '   ]',
      '--baton--kernel',
      '--baton--zfs',
      '--baton--lvm',
      '',
    ].join('\n');
  }

  function transports(held: Record<string, number[]>, unreachable: string[] = []) {
    const reads: string[] = [];
    return {
      reads,
      transportOf: async (node: string): Promise<Transport> => {
        if (unreachable.includes(node)) throw new Error(`${node}: connect timed out`);
        return {
          host: node,
          exec: async (argv: string[]) => {
            reads.push(`${node}: ${argv[0]}`);
            return { code: 0, stdout: viewText(held[node] ?? []), stderr: '', timedOut: false } as ExecResult;
          },
        } as unknown as Transport;
      },
    };
  }

  const load = (file: string, extraVars: Record<string, unknown>) => loadPlaybook(path.resolve(file), { inventory, registry, extraVars });

  it('service-move: one item, from where nfs-a runs to its next node, its lock; hosts from and to', async () => {
    const extraVars = { service: 'nfs-a' };
    const t = transports({ n1: [1], n2: [2] });
    const { playbook } = await resolvePlaybookPlacement(load('playbooks/service-move.yml', extraVars), inventory, extraVars, t);
    const [play] = expandPlays(playbook, inventory, extraVars);
    expect(play!.units.map((u) => [u.item!.label, u.title, u.hosts, u.lock])).toEqual([['nfs-a', 'move nfs-a from n1 to n2', ['n1', 'n2'], 'service-nfs-a']]);
    // Every node read once, in one exec each.
    expect(t.reads.sort()).toEqual(['n1: sh', 'n2: sh', 'n3: sh']);
  });

  it('service-move -e to=n3 goes to n3; -e to=n9 is refused before anything', async () => {
    const t = transports({ n1: [1], n2: [2] });
    const to3 = await resolvePlaybookPlacement(load('playbooks/service-move.yml', { service: 'nfs-a', to: 'n3' }), inventory, { service: 'nfs-a', to: 'n3' }, t);
    expect(expandPlays(to3.playbook, inventory, { service: 'nfs-a', to: 'n3' })[0]!.units.map((u) => u.hosts)).toEqual([['n1', 'n3']]);
    await expect(resolvePlaybookPlacement(load('playbooks/service-move.yml', { service: 'nfs-a', to: 'n9' }), inventory, { service: 'nfs-a', to: 'n9' }, t)).rejects.toThrow(
      'group nfs-a may not run on n9: its nodes are n1, n2, n3; nothing was touched',
    );
  });

  it('an unknown group or node is refused before any node is read', async () => {
    const t = transports({ n1: [1] });
    await expect(resolvePlaybookPlacement(load('playbooks/service-move.yml', { service: 'nfs-z' }), inventory, { service: 'nfs-z' }, t)).rejects.toThrow('no service group "nfs-z" in the inventory (groups: nfs-a, nfs-b); nothing was touched');
    await expect(resolvePlaybookPlacement(load('playbooks/node-evacuate.yml', { node: 'n7' }), inventory, { node: 'n7' }, t)).rejects.toThrow('no service group may run on "n7" (nodes of the groups: n1, n2, n3); nothing was touched');
    // Without -e service the loader says so, at the line, before anything.
    expect(() => load('playbooks/service-move.yml', {})).toThrow(/service-move\.yml:18:11: undefined variable "service" in placement .*pass -e service=/);
    expect(t.reads).toEqual([]);
  });

  it('node-evacuate -e node=n2: both groups held there move, each its own item and lock', async () => {
    const extraVars = { node: 'n2' };
    const t = transports({ n2: [1, 2] });
    const { playbook } = await resolvePlaybookPlacement(load('playbooks/node-evacuate.yml', extraVars), inventory, extraVars, t);
    const [play] = expandPlays(playbook, inventory, extraVars);
    expect(play!.units.map((u) => [u.item!.label, u.hosts, u.lock])).toEqual([
      ['nfs-a', ['n2', 'n3'], 'service-nfs-a'],
      ['nfs-b', ['n2', 'n3'], 'service-nfs-b'],
    ]);
  });

  it('node-failover takes the lock of the node it fences (fence-n2), then each group\'s', async () => {
    const extraVars = { failed: 'n2' };
    const t = transports({ n2: [1] });
    const { playbook } = await resolvePlaybookPlacement(load('playbooks/node-failover.yml', extraVars), inventory, extraVars, t);
    const plays = expandPlays(playbook, inventory, extraVars);
    expect(plays.map((p) => p.units.map((u) => u.lock))).toEqual([['fence-n2'], ['service-nfs-a']]);
  });

  it('node-evacuate refuses when a group it holds is also seen elsewhere (split)', async () => {
    const t = transports({ n1: [1], n2: [1] });
    await expect(resolvePlaybookPlacement(load('playbooks/node-evacuate.yml', { node: 'n1' }), inventory, { node: 'n1' }, t)).rejects.toThrow(/^cannot evacuate n1: group nfs-a: it is SPLIT on n1 and n2/);
  });

  it('a group seen half-moved while another run holds its lock: exit 5 naming that run, not a refusal to look at it', async () => {
    const saved = process.env.BATON_STATE_DIR;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-place-lock-'));
    process.env.BATON_STATE_DIR = dir;
    try {
      const t = () => transports({ n1: [1], n2: [1] });
      const move = () => resolvePlaybookPlacement(load('playbooks/service-move.yml', { service: 'nfs-a' }), inventory, { service: 'nfs-a' }, t());
      // Nobody holds it: what was seen is the reason, exit 2.
      await expect(move()).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/^cannot move group nfs-a: it is SPLIT on n1 and n2/) });
      const other = acquireLock('service-nfs-a', '20261127T000000Z-0ther1', locksDir());
      try {
        await expect(move()).rejects.toMatchObject({ exitCode: 5, message: expect.stringMatching(/^another run holds the lock "service-nfs-a": run 20261127T000000Z-0ther1/) });
        // Another group's lock is no excuse.
        await expect(resolvePlaybookPlacement(load('playbooks/service-move.yml', { service: 'nfs-b' }), inventory, { service: 'nfs-b' }, transports({ n2: [2], n3: [2] }))).rejects.toMatchObject({ exitCode: 2 });
      } finally {
        other.release();
      }
    } finally {
      if (saved === undefined) delete process.env.BATON_STATE_DIR;
      else process.env.BATON_STATE_DIR = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('service-start: the group on its first preferred node, that node only; running already: no item and a note', async () => {
    const t = transports({ n2: [2] });
    const { playbook, notes } = await resolvePlaybookPlacement(load('playbooks/service-start.yml', { service: 'nfs-a' }), inventory, { service: 'nfs-a' }, t);
    const plays = expandPlays(playbook, inventory, { service: 'nfs-a' });
    expect(plays.map((p) => p.units.map((u) => [u.title, u.hosts, u.lock]))).toEqual([[['start nfs-a on n1', ['n1'], 'service-nfs-a']]]);
    expect(notes).toEqual([]);
    const on3 = await resolvePlaybookPlacement(load('playbooks/service-start.yml', { service: 'nfs-a', on: 'n3' }), inventory, { service: 'nfs-a', on: 'n3' }, t);
    expect(expandPlays(on3.playbook, inventory, { service: 'nfs-a', on: 'n3' })[0]!.units.map((u) => u.hosts)).toEqual([['n3']]);
    const running = await resolvePlaybookPlacement(load('playbooks/service-start.yml', { service: 'nfs-b' }), inventory, { service: 'nfs-b' }, t);
    expect(expandPlays(running.playbook, inventory, { service: 'nfs-b' }).map((p) => p.units.length)).toEqual([0]);
    expect(running.notes).toEqual(['group nfs-b already runs on n2: nothing to start']);
  });

  it('service-start refuses a group seen on two nodes before anything; service-stop releases it where it runs', async () => {
    await expect(resolvePlaybookPlacement(load('playbooks/service-start.yml', { service: 'nfs-a' }), inventory, { service: 'nfs-a' }, transports({ n1: [1], n3: [1] }))).rejects.toThrow(
      /^cannot start group nfs-a: it is SPLIT on n1 and n3/,
    );
    const { playbook } = await resolvePlaybookPlacement(load('playbooks/service-stop.yml', { service: 'nfs-b' }), inventory, { service: 'nfs-b' }, transports({ n3: [2] }));
    expect(expandPlays(playbook, inventory, { service: 'nfs-b' })[0]!.units.map((u) => [u.title, u.hosts, u.lock])).toEqual([['stop nfs-b on n3', ['n3'], 'service-nfs-b']]);
  });

  it('node-failover -e failed=n1 with n1 unreachable: fences, then takes nfs-a over on n2 only', async () => {
    const extraVars = { failed: 'n1' };
    const t = transports({ n2: [2] }, ['n1']);
    const { playbook } = await resolvePlaybookPlacement(load('playbooks/node-failover.yml', extraVars), inventory, extraVars, t);
    const [fence, takeover] = expandPlays(playbook, inventory, extraVars);
    expect(fence!.hosts).toEqual(['n2', 'n3']);
    expect(takeover!.units.map((u) => [u.item!.label, u.hosts, u.lock])).toEqual([['nfs-a', ['n2'], 'service-nfs-a']]);
  });
});

describe('a group whose last run was cut short where it now runs (engine/resume.ts owedByGroup)', () => {
  // nfs-b's last run moved it to n1 and died before announcing it: running on n1, owed.
  const owedB = (sameRequest: boolean) => (g: { name: string }) => (g.name === 'nfs-b' ? { runId: 'R1', sameRequest } : undefined);
  const onN1 = cluster({ 'nfs-b': at('nfs-b', 'running', ['n1']) });
  const finishes = (r: { moves: Move[]; notes: string[] }) => [route(r.moves), r.moves.map((m) => m.reason), r.notes.filter((n) => n.includes('cut short'))];
  const NOTE = 'group nfs-b runs on n1, but run R1, which put it there, was cut short: finishing it there (what it still owed: the GARP, the NFSv3 lock holders\' notification)';

  it('move to where it runs: finished there (nothing released), whoever cut it short', () => {
    expect(finishes(resolvePlacement({ kind: 'move', group: 'nfs-b', to: 'n1' }, GROUPS, onN1, undefined, owedB(false)))).toEqual([['nfs-b ->n1'], ['finish'], [NOTE]]);
  });

  it('move with no node named: the same command again finishes it; another one moves it on', () => {
    expect(finishes(resolvePlacement({ kind: 'move', group: 'nfs-b' }, GROUPS, onN1, undefined, owedB(true)))[0]).toEqual(['nfs-b ->n1']);
    expect(route(resolvePlacement({ kind: 'move', group: 'nfs-b' }, GROUPS, onN1, undefined, owedB(false)).moves)).toEqual(['nfs-b n1->n2']);
  });

  it('failover and evacuate: only their own run, cut short, is finished; other groups\' runs are not their business', () => {
    // n2 failed; nfs-b already runs on n1, put there by this very failover before it died.
    const failed = cluster({ 'nfs-b': at('nfs-b', 'running', ['n1']) }, [up('n1'), down('n2', 'off'), up('n3')]);
    const f = resolvePlacement({ kind: 'failover', node: 'n2' }, GROUPS, failed, undefined, owedB(true));
    expect(finishes(f)).toEqual([['nfs-b ->n1'], ['finish'], [NOTE]]);
    expect(resolvePlacement({ kind: 'failover', node: 'n2' }, GROUPS, failed, undefined, owedB(false)).moves).toEqual([]);
    const e = resolvePlacement({ kind: 'evacuate', node: 'n2' }, GROUPS, onN1, undefined, owedB(true));
    expect(route(e.moves)).toEqual(['nfs-b ->n1']);
    expect(route(resolvePlacement({ kind: 'evacuate', node: 'n2' }, GROUPS, onN1, undefined, owedB(false)).moves)).toEqual([]);
  });

  it('start of a group running: finished where it runs; a group seen in part or split is judged as before', () => {
    expect(route(resolvePlacement({ kind: 'start', group: 'nfs-b' }, GROUPS, onN1, undefined, owedB(false)).moves)).toEqual(['nfs-b ->n1']);
    const partial = cluster({ 'nfs-b': at('nfs-b', 'partial', ['n1']) });
    expect(route(resolvePlacement({ kind: 'start', group: 'nfs-b' }, GROUPS, partial, undefined, owedB(true)).moves)).toEqual(['nfs-b ->n1']);
    expect(resolvePlacement({ kind: 'start', group: 'nfs-b' }, GROUPS, partial, undefined, owedB(true)).moves[0]!.reason).toBe('start');
    const split = cluster({ 'nfs-b': at('nfs-b', 'split', ['n1', 'n2']) });
    expect(refusal(() => resolvePlacement({ kind: 'move', group: 'nfs-b', to: 'n1' }, GROUPS, split, undefined, owedB(true)))).toMatch(/cannot move group nfs-b: it is SPLIT/);
  });
});
