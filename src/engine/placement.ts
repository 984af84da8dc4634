/**
 * Placement resolved at run time: a play that says `placement: { move: nfs-a }` (or `evacuate:
 * n1`, `failover: n1`, `start: nfs-a`, `stop: nfs-a`) instead of `loop:` gets its item list from
 * what runs where now. A start is a move from nowhere (`from` is ''), a stop a move to nowhere
 * (`to` is ''): the same item, the same role, the release or the takeover half of it. The
 * request is rendered from play-level vars and -e, the groups are observed (facts/groups.ts), and
 * the moves are worked out here: one item per group, carrying everything its steps need (the
 * VIP, the volume, the mount, the exports, the nodes from and to, its lock). From then on the
 * play is an ordinary looped play with that literal list (docs/play-loops.md).
 *
 * Anything that makes a move unsafe or meaningless is refused before anything is touched (exit 2),
 * naming the group and what was seen: a group seen on two nodes or on one only in part must be
 * looked at by a person first (`baton status`), not moved by a playbook.
 */
import type { Inventory } from '../inventory/model.js';
import { loadServiceGroups, type ServiceGroup } from '../inventory/services.js';
import { observeGroups, type ClusterStatus, type GroupPlacement, type NodeObservation } from '../facts/groups.js';
import type { Play, PlacementRequest, Playbook } from '../playbook/model.js';
import { playLevelVars } from '../playbook/play-items.js';
import { render } from '../playbook/template.js';
import type { Transport } from '../transport/transport.js';
import { BatonError, ExitCode } from '../util/errors.js';
import { describeError } from './errors.js';
import { LockHeldError, lockHolder } from './lock.js';

/** One group's move, as a play item (`{{ move.vip }}`...). Keys are snake_case like the roles' vars. */
export interface Move {
  name: string;
  /** The node it leaves ('' for a start: it runs nowhere; a failover from a node that could not be read still names it). */
  from: string;
  /** The node it goes to ('' for a stop). */
  to: string;
  lock: string;
  vip: string;
  vip_prefix: number;
  /** Where the VIP is raised on `to` and lowered on `from`: the group's interface, else the node's `iface`, else eth0. */
  interface: string;
  interface_from: string;
  volume: Record<string, string>;
  volume_provider: string;
  volume_image: string;
  mount_point: string;
  fstype: string;
  mount_options: string;
  exports: Array<{ path: string; pseudo: string; fsid: number; export_id: number; clients: string; access: string; squash: string }>;
  /**
   * The iSCSI targets, as the iscsi_target step takes them: the portal on the VIP, and each LUN's
   * backing resolved (its own backing_store, else the group's loop image or LVM device).
   */
  iscsi_targets: MoveIscsiTarget[];
  /** The first export's path: statd keeps its state under the mount. */
  export_path: string;
  /** Why this move: `switchover`, `evacuate`, `failover`, `start`, `stop`, `finish` (a run cut short, finished in place). */
  reason: string;
  /** The group's failover MAC ('' without one): `interface` is then its failover interface on both nodes. */
  mac: string;
}

export interface MoveIscsiTarget {
  iqn: string;
  portal: string;
  /** [] is any initiator (the step's default, tgt's ALL). */
  acls: string[];
  luns: Array<{ lun: number; scsi_id: string; scsi_sn: string; backing_image?: string; backing_store?: string }>;
}

/**
 * Did the last run of this group stop short of finishing it (engine/resume.ts owedByGroup)? Its
 * run id, and whether this request is the same one (same playbook, same vars) run again.
 */
export type OwedCheck = (g: ServiceGroup) => { runId: string; sameRequest: boolean } | undefined;

export interface Resolution {
  moves: Move[];
  /** What the operator should hear: groups left where they are and why. */
  notes: string[];
}

/** Refused placement: invalid input, nothing touched. */
export class PlacementRefused extends BatonError {
  constructor(
    message: string,
    /** The group refused for what was seen of it (split, partial, unknown), when that is the reason. */
    readonly unclearGroup?: string,
  ) {
    super(`${message}; nothing was touched`, ExitCode.INVALID);
    this.name = 'PlacementRefused';
  }
}

/** A node a group may be taken over on: it was read, and its BMC does not say it is off. */
const usable = (n: NodeObservation | undefined): boolean => Boolean(n?.view) && n!.power !== 'off';

function ifaceOf(g: ServiceGroup, inventory: Inventory | undefined, node: string): string {
  if (g.mac && g.failoverInterface) return g.failoverInterface;
  if (g.interface) return g.interface;
  const own = g.nodeInterfaces?.[node];
  if (own) return own;
  const v = inventory?.hosts.get(node)?.vars.iface;
  return typeof v === 'string' && v && !v.includes('{{') ? v : 'eth0';
}

function iscsiTargetsOf(g: ServiceGroup): MoveIscsiTarget[] {
  const vol = g.volume;
  // An IPv6 portal is written [addr]:port, as initiators and tgtd write it.
  const host = g.vip.address.includes(':') ? `[${g.vip.address}]` : g.vip.address;
  return g.iscsiTargets.map((t) => ({
    iqn: t.iqn,
    portal: `${host}:${t.port}`,
    acls: t.acls,
    luns: t.luns.map((l) => ({
      lun: l.lun,
      scsi_id: l.scsiId,
      scsi_sn: l.scsiSn,
      ...(l.backingStore ? { backing_store: l.backingStore } : vol?.provider === 'loop' ? { backing_image: vol.image } : vol?.provider === 'lvm' ? { backing_store: vol.device } : {}),
    })),
  }));
}

export function moveOf(g: ServiceGroup, from: string, to: string, reason: string, inventory?: Inventory): Move {
  const vol = g.volume;
  const volume: Record<string, string> = vol ? Object.fromEntries(Object.entries(vol).map(([k, v]) => [k, String(v)])) : { provider: 'none' };
  return {
    name: g.name,
    from,
    to,
    lock: g.lock,
    vip: g.vip.address,
    vip_prefix: g.vip.prefix,
    interface: to ? ifaceOf(g, inventory, to) : '',
    interface_from: from ? ifaceOf(g, inventory, from) : '',
    volume,
    volume_provider: volume.provider!,
    volume_image: vol?.provider === 'loop' ? vol.image : '',
    mount_point: g.mount?.path ?? '',
    fstype: g.mount?.fstype ?? '',
    mount_options: g.mount?.options ?? '',
    exports: g.nfsExports.map((e) => ({ path: e.path, pseudo: e.pseudo, fsid: e.fsid, export_id: e.exportId, clients: e.clients ?? '*', access: e.access ?? 'rw', squash: e.squash ?? 'root_squash' })),
    iscsi_targets: iscsiTargetsOf(g),
    export_path: g.nfsExports[0]?.path ?? g.mount?.path ?? '',
    reason,
    mac: g.mac ?? '',
  };
}

const STATUS_HINT = 'see `baton status -i INVENTORY`, and put it right by hand (a group seen in part on one node: service-stop releases what is left) before moving it';

function refuseUnclear(p: GroupPlacement, cannot: string, hint = STATUS_HINT): never {
  throw new PlacementRefused(`${cannot}: it is ${p.summary}; ${hint}`, p.name);
}

/**
 * A group seen half-moved while another run holds its lock is that run at work, not a mess for a
 * person: said as the lock it is (exit 5, naming the holder), as when both runs read it before
 * either changed it. Only this controller's lock files are asked (no node is contacted).
 */
function resolveOrLocked(req: PlacementRequest, groups: ServiceGroup[], status: ClusterStatus, inventory: Inventory, owed?: OwedCheck): Resolution {
  try {
    return resolvePlacement(req, groups, status, inventory, owed);
  } catch (e) {
    const g = e instanceof PlacementRefused && e.unclearGroup ? groups.find((x) => x.name === e.unclearGroup) : undefined;
    const holder = g && lockHolder(g.lock);
    if (holder) throw new LockHeldError(holder);
    throw e;
  }
}

/** The nodes after `from` in the group's preference order (wrapping round), that may take it. */
function nextPreferred(g: ServiceGroup, from: string, nodes: Map<string, NodeObservation>): string[] {
  const i = g.nodes.indexOf(from);
  const order = i < 0 ? g.nodes : [...g.nodes.slice(i + 1), ...g.nodes.slice(0, i)];
  return order.filter((n) => n !== from && usable(nodes.get(n)));
}

function unreadable(g: ServiceGroup, nodes: Map<string, NodeObservation>, except: string): string {
  const bad = g.nodes.filter((n) => n !== except && !usable(nodes.get(n)));
  return bad.length ? ` (${bad.map((n) => `${n}: ${nodes.get(n)?.error ?? (nodes.get(n)?.power === 'off' ? 'powered off' : 'not read')}`).join('; ')})` : '';
}

/**
 * The moves a request asks for, given the groups and what was observed. Throws PlacementRefused
 * (exit 2) for an unknown group or node, a group that is not cleanly running where it would move
 * from, a `to` the group may not run on or that cannot be reached.
 */
export function resolvePlacement(req: PlacementRequest, groups: ServiceGroup[], status: ClusterStatus, inventory?: Inventory, owed?: OwedCheck): Resolution {
  checkNames(req, groups);
  /**
   * A group running whole where this request leaves it, whose last run was cut short there: an
   * item that only finishes it (nothing is released; the takeover steps find their work done, and
   * the announcements that run owed go out). Undefined when nothing is owed.
   */
  const finish = (g: ServiceGroup, p: GroupPlacement, sameRequestOnly = false): Move | undefined => {
    const o = p.state === 'running' ? owed?.(g) : undefined;
    if (!o || (sameRequestOnly && !o.sameRequest)) return undefined;
    notes.push(`group ${g.name} runs on ${p.nodes[0]}, but run ${o.runId}, which put it there, was cut short: finishing it there (what it still owed: the GARP, the NFSv3 lock holders' notification)`);
    return moveOf(g, '', p.nodes[0]!, 'finish', inventory);
  };
  const byGroup = new Map(groups.map((g) => [g.name, g]));
  const placed = new Map(status.groups.map((p) => [p.name, p]));
  const nodes = new Map(status.nodes.map((n) => [n.name, n]));
  const notes: string[] = [];

  if (req.kind === 'move') {
    const g = byGroup.get(req.group)!;
    const p = placed.get(g.name)!;
    if (p.state === 'stopped') throw new PlacementRefused(`group ${g.name} is stopped: there is nothing to move (start it first)`);
    if (p.state !== 'running') refuseUnclear(p, `cannot move group ${g.name}`);
    const from = p.nodes[0]!;
    if (req.to) {
      if (req.to === from) {
        const done = finish(g, p);
        return done ? { moves: [done], notes } : { moves: [], notes: [`group ${g.name} already runs on ${from}: nothing to move`] };
      }
      if (!usable(nodes.get(req.to))) throw new PlacementRefused(`cannot move group ${g.name} to ${req.to}: ${nodes.get(req.to)?.error ?? (nodes.get(req.to)?.power === 'off' ? 'it is powered off' : 'it could not be read')}`);
      return { moves: [moveOf(g, from, req.to, 'switchover', inventory)], notes };
    }
    // The same command again after it was cut short finishes it, as any re-run does; it does not move the group on.
    const again = finish(g, p, true);
    if (again) return { moves: [again], notes };
    const to = nextPreferred(g, from, nodes)[0];
    if (!to) throw new PlacementRefused(`cannot move group ${g.name} off ${from}: no other of its nodes (${g.nodes.join(', ')}) can take it${unreadable(g, nodes, from)}`);
    return { moves: [moveOf(g, from, to, 'switchover', inventory)], notes };
  }

  if (req.kind === 'start') {
    const g = byGroup.get(req.group)!;
    const p = placed.get(req.group)!;
    const done = !req.on || req.on === p.nodes[0] ? finish(g, p) : undefined;
    return done ? { moves: [done], notes } : resolveStart(g, p, nodes, req.on, inventory);
  }
  if (req.kind === 'stop') return resolveStop(byGroup.get(req.group)!, placed.get(req.group)!, inventory);

  if (req.kind === 'evacuate') {
    const node = req.node;
    const n = nodes.get(node);
    if (!n?.view) throw new PlacementRefused(`cannot evacuate ${node}: it could not be read (${n?.error ?? n?.powerError ?? 'not observed'}); a node that is down is taken over with node-failover, which fences it first`);
    const moves: Move[] = [];
    for (const g of groups) {
      const p = placed.get(g.name)!;
      if (!p.nodes.includes(node)) {
        // Only what this same evacuation, cut short, left owed: other groups' runs are not its business.
        const done = finish(g, p, true);
        if (done) moves.push(done);
        continue;
      }
      if (p.state !== 'running') refuseUnclear(p, `cannot evacuate ${node}: group ${g.name}`);
      const to = nextPreferred(g, node, nodes)[0];
      if (!to) throw new PlacementRefused(`cannot evacuate ${node}: no other node of group ${g.name} (${g.nodes.join(', ')}) can take it${unreadable(g, nodes, node)}`);
      moves.push(moveOf(g, node, to, 'evacuate', inventory));
    }
    if (!moves.length) notes.push(`no group runs on ${node}: nothing to move`);
    return { moves, notes };
  }

  // failover: the groups the failed node held, each to its first preferred surviving node.
  const failed = req.node;
  const moves: Move[] = [];
  for (const g of groups) {
    if (!g.nodes.includes(failed)) continue;
    const p = placed.get(g.name)!;
    // Held by the failed node: seen (only) there, or seen nowhere while the failed node is the
    // one that could not be read, whether it does not answer or its BMC already says off (a
    // node that is off runs nothing, but what it ran before is what failover is for). A group
    // running whole on a survivor is left alone; one in part on one survivor while the failed
    // node cannot be read is finished there; one in part otherwise or on two nodes needs a person.
    let held: boolean;
    const failedUnread = !nodes.get(failed)?.view;
    const heldUnseen = () => notes.push(`group ${g.name} is seen on no node and ${failed} could not be read (${nodes.get(failed)?.power === 'off' ? 'powered off' : 'no answer'}): taken over as if ${failed} held it`);
    if (p.nodes.length === 1 && p.nodes[0] === failed) held = true;
    else if (p.state === 'unknown') {
      if (p.unknownNodes.some((u) => u !== failed)) refuseUnclear(p, `cannot fail ${failed} over: group ${g.name}`);
      held = true;
      heldUnseen();
    } else if (p.nodes.length === 0) {
      held = failedUnread;
      if (held) heldUnseen();
    }
    else if (p.state === 'running') held = false;
    else if (p.state === 'partial' && p.nodes.length === 1 && failedUnread && usable(nodes.get(p.nodes[0]!))) {
      // A takeover from the failed node cut short (its controller died mid-run, say): the group
      // is in part on one survivor and the failed node, which cannot be read, cannot hold the
      // rest. Finished there, as service-start finishes a partial group in place.
      const at = p.nodes[0]!;
      notes.push(`group ${g.name} is ${p.summary} and ${failed} could not be read: a takeover cut short, finished on ${at}`);
      moves.push(moveOf(g, failed, at, 'failover', inventory));
      continue;
    } else refuseUnclear(p, `cannot fail ${failed} over: group ${g.name}`);
    if (!held) {
      if (p.state === 'stopped') notes.push(`group ${g.name} is stopped (not on ${failed}): left stopped`);
      // A failover of this node cut short (the watcher re-runs an orphan as the same request).
      const done = finish(g, p, true);
      if (done) moves.push(done);
      continue;
    }
    const to = g.nodes.find((x) => x !== failed && usable(nodes.get(x)));
    if (!to) throw new PlacementRefused(`cannot fail ${failed} over: no surviving node of group ${g.name} (${g.nodes.join(', ')}) can take it${unreadable(g, nodes, failed)}`);
    moves.push(moveOf(g, failed, to, 'failover', inventory));
  }
  if (!moves.length) notes.push(`no group is held by ${failed}: nothing to take over`);
  return { moves, notes };
}

const nodeProblem = (n: NodeObservation | undefined): string => n?.error ?? (n?.power === 'off' ? 'it is powered off' : 'it could not be read');

/**
 * Start: a stopped group on `on`, or on its first preferred node that may take it. Running whole
 * already is nothing to do, unless `on` names another node: that is a move, and said so. Seen in
 * part on one node: completed there (what is missing is started; the takeover steps still ask
 * every other node). On two nodes, or not seen while one of its nodes could not be read:
 * refused, since starting it could make a second copy of it.
 */
function resolveStart(g: ServiceGroup, p: GroupPlacement, nodes: Map<string, NodeObservation>, on: string | undefined, inventory?: Inventory): Resolution {
  if (p.state === 'running') {
    const at = p.nodes[0]!;
    if (on && on !== at) throw new PlacementRefused(`group ${g.name} already runs on ${at}, not ${on}: to move it, run playbooks/service-move.yml -e service=${g.name} -e to=${on}`);
    return { moves: [], notes: [`group ${g.name} already runs on ${at}: nothing to start`] };
  }
  if (p.state === 'partial') {
    // Completed where it is: the takeover steps are idempotent, and every other node is asked.
    const at = p.nodes[0]!;
    if (on && on !== at) throw new PlacementRefused(`cannot start group ${g.name} on ${on}: it is ${p.summary}; complete it there (without -e on), or stop it with playbooks/service-stop.yml -e service=${g.name} first`);
    return { moves: [moveOf(g, '', at, 'start', inventory)], notes: [`group ${g.name} is ${p.summary}: completing it there`] };
  }
  if (p.state !== 'stopped') refuseUnclear(p, `cannot start group ${g.name}`);
  if (on) {
    if (!usable(nodes.get(on))) throw new PlacementRefused(`cannot start group ${g.name} on ${on}: ${nodeProblem(nodes.get(on))}`);
    return { moves: [moveOf(g, '', on, 'start', inventory)], notes: [] };
  }
  const first = g.nodes.find((n) => usable(nodes.get(n)));
  if (!first) throw new PlacementRefused(`cannot start group ${g.name}: none of its nodes (${g.nodes.join(', ')}) can take it${unreadable(g, nodes, '')}`);
  return { moves: [moveOf(g, '', first, 'start', inventory)], notes: [] };
}

/**
 * Stop: release the group where it runs, whole or in part (every release step is a no-op for a
 * part that is not there). Stopped already is nothing to do. On two nodes, or not seen while one
 * of its nodes could not be read: refused, since a stop would leave a copy running.
 */
function resolveStop(g: ServiceGroup, p: GroupPlacement, inventory?: Inventory): Resolution {
  if (p.state === 'stopped') return { moves: [], notes: [`group ${g.name} is stopped already: nothing to stop`] };
  if (p.state !== 'running' && p.state !== 'partial') refuseUnclear(p, `cannot stop group ${g.name}`);
  return { moves: [moveOf(g, p.nodes[0]!, '', 'stop', inventory)], notes: [] };
}

/** The names a request gives, checked against the inventory before any node is read (exit 2). */
export function checkNames(req: PlacementRequest, groups: ServiceGroup[]): void {
  if (req.kind === 'move' || req.kind === 'start' || req.kind === 'stop') {
    const g = groups.find((x) => x.name === req.group);
    if (!g) throw new PlacementRefused(`no service group "${req.group}" in the inventory (groups: ${groups.map((x) => x.name).join(', ') || 'none'})`);
    const node = req.kind === 'move' ? req.to : req.kind === 'start' ? req.on : undefined;
    if (node && !g.nodes.includes(node)) throw new PlacementRefused(`group ${g.name} may not run on ${node}: its nodes are ${g.nodes.join(', ')}`);
    return;
  }
  const allNodes = [...new Set(groups.flatMap((g) => g.nodes))];
  if (!allNodes.includes(req.node)) throw new PlacementRefused(`no service group may run on "${req.node}" (nodes of the groups: ${allNodes.join(', ')})`);
}

/** A play's `placement:` rendered from play-level vars and -e. */
export function renderRequest(play: Play, inventory: Inventory, extraVars: Record<string, unknown>): PlacementRequest {
  const spec = play.placement!;
  const vars = playLevelVars(play, inventory, extraVars);
  const r = (v: string, key: string): string => {
    try {
      return String(render(v, vars) ?? '').trim();
    } catch (e) {
      throw new PlacementRefused(`play "${play.name}" (${play.loc.file}:${play.loc.line}:${play.loc.col}): placement.${key}: ${describeError(e)}`);
    }
  };
  const need = (v: string, key: string, what: string): string => {
    const s = r(v, key);
    if (!s) throw new PlacementRefused(`play "${play.name}" (${play.loc.file}:${play.loc.line}:${play.loc.col}): placement.${key} rendered empty: give the ${what} (e.g. -e ${key === 'evacuate' || key === 'failover' ? 'node=n1' : 'service=nfs-a'})`);
    return s;
  };
  if (spec.move !== undefined) return { kind: 'move', group: need(spec.move, 'move', 'service group to move'), ...(spec.to !== undefined && r(spec.to, 'to') ? { to: r(spec.to, 'to') } : {}) };
  if (spec.start !== undefined) return { kind: 'start', group: need(spec.start, 'start', 'service group to start'), ...(spec.on !== undefined && r(spec.on, 'on') ? { on: r(spec.on, 'on') } : {}) };
  if (spec.stop !== undefined) return { kind: 'stop', group: need(spec.stop, 'stop', 'service group to stop') };
  if (spec.evacuate !== undefined) return { kind: 'evacuate', node: need(spec.evacuate, 'evacuate', 'node to empty') };
  return { kind: 'failover', node: need(spec.failover!, 'failover', 'failed node') };
}

export const hasPlacement = (playbook: Playbook): boolean => playbook.plays.some((p) => p.placement);

/**
 * The playbook with every `placement:` play turned into a looped play over its resolved moves
 * (the same playbook when there is none). Observes the groups once for all such plays.
 */
export async function resolvePlaybookPlacement(
  playbook: Playbook,
  inventory: Inventory,
  extraVars: Record<string, unknown>,
  o: { transportOf(node: string): Promise<Transport>; bmcRunner?: Transport; onPoweredOff?(node: string): void; owed?: OwedCheck },
): Promise<{ playbook: Playbook; notes: string[] }> {
  if (!hasPlacement(playbook)) return { playbook, notes: [] };
  const requests = playbook.plays.map((p) => (p.placement ? renderRequest(p, inventory, extraVars) : undefined));
  const groups = loadServiceGroups(inventory);
  if (!groups.length) throw new PlacementRefused(`${inventory.file}: no service group to place: declare them in all.vars.baton_services`);
  for (const r of requests) if (r) checkNames(r, groups);
  const status = await observeGroups({ inventory, groups, transportOf: o.transportOf, ...(o.bmcRunner ? { bmcRunner: o.bmcRunner } : {}), ...(o.onPoweredOff ? { onPoweredOff: o.onPoweredOff } : {}) });
  const notes: string[] = [];
  const plays = playbook.plays.map((play, i) => {
    const req = requests[i];
    if (!req) return play;
    const res = resolveOrLocked(req, groups, status, inventory, o.owed);
    notes.push(...res.notes);
    const { placement: _, ...rest } = play;
    return { ...rest, loop: { ...play.loop!, items: res.moves } };
  });
  return { playbook: { ...playbook, plays }, notes };
}
