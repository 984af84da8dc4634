/**
 * Placement resolved at run time, without a lab: the moves `move`, `evacuate` and `failover`
 * ask for, worked out from ClusterStatus values built by hand (what observeGroups would judge),
 * the refusals an operator meets (unknown group, split, partial, unknown, a `to` the group may
 * not use), the loader's checks of `placement:`, and the shipped playbooks resolved end to end
 * over node reads built to match what the nodes would print.
 */
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

const EMPTY_VIEW: NodeView = { addresses: [], storage: { loops: [], claims: [], mounts: [] }, ganeshaExports: [], kernelExports: [], iscsiTargets: [], zpools: [], activeVgs: [] };
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
      },
    ]);
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

  it('refuses a group that is unknown because of another node too, or split over survivors', () => {
    const seen = cluster({ 'nfs-a': at('nfs-a', 'unknown', [], ['n1', 'n2']) }, [down('n1'), down('n2'), up('n3')]);
    expect(refusal(() => resolve({ kind: 'failover', node: 'n1' }, seen))).toMatch(/^cannot fail n1 over: group nfs-a: it is unknown/);
    expect(refusal(() => resolve({ kind: 'failover', node: 'n1' }, cluster({ 'nfs-a': at('nfs-a', 'split', ['n1', 'n2']) })))).toMatch(/^cannot fail n1 over: group nfs-a: it is SPLIT/);
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
    expect(problems(`- hosts: n1\n  placement: { move: a, evacuate: n1 }\n  loop_control: { loop_var: move }\n${steps}`)).toEqual(['2:14 placement: give exactly one of move (a group, with to), evacuate (a node), failover (a node) or start (a group, with to), not move and evacuate']);
    expect(problems(`- hosts: n1\n  placement: { evacuate: n1, to: n2 }\n  loop_control: { loop_var: move }\n${steps}`)).toEqual(['2:30 placement: "to" goes with move and start only: evacuate sends each group to its own next preferred node']);
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

  it('node-evacuate refuses when a group it holds is also seen elsewhere (split)', async () => {
    const t = transports({ n1: [1], n2: [1] });
    await expect(resolvePlaybookPlacement(load('playbooks/node-evacuate.yml', { node: 'n1' }), inventory, { node: 'n1' }, t)).rejects.toThrow(/^cannot evacuate n1: group nfs-a: it is SPLIT on n1 and n2/);
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
