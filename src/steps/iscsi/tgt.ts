/**
 * What `iscsi_target` and `iscsi_target_absent` share: the wanted target as a spec, what a node
 * shows of it, the judgement "same identity" (IQN, LUN numbers, backing volume, scsi_id,
 * scsi_sn, ACLs; never the tid), and the tgtadm commands that turn one into the other.
 *
 * Why the tid matters anyway: tgt builds one of the LUN's VPD 0x83 designators (NAA locally
 * assigned) from `tid << 32 | lun`, so a target made with another tid on the other node shows
 * initiators another 0x83 page. The tid is therefore chosen the same on every node: the one the
 * step names, else one derived from the IQN (`tidFor`), else (taken by another target) the next
 * free one, said in the log. It is never what decides "satisfied".
 */
import { StepRefusedError, type StepContext } from '../contract.js';
import { runnerOf } from '../../facts/storage.js';
import { ANY_EXIT_STATUS } from '../../transport/transport.js';
import {
  bindAccountArgv, bindAclArgv, deleteConnArgv, deleteLunArgv, deletePortalArgv, deleteTargetArgv, heldLoopOf, imageOfDevice, lunIdentityArgv, newLunArgv,
  newTargetArgv, portalCovered, readTgtView, splitPortal, unbindAccountArgv, unbindAclArgv, type TgtTarget, type TgtView,
} from '../../facts/iscsi.js';

export interface IscsiLunArgs {
  lun: number | string;
  /** A device or file on the node, as tgtd should open it. */
  backing_store?: string;
  /** The loop device this node attached for this image (import_volume provider loop). */
  backing_image?: string;
  scsi_id: string;
  scsi_sn: string;
}

export interface IscsiTargetArgs {
  iqn: string;
  luns: IscsiLunArgs[];
  /** Initiator addresses (ALL, CIDR, address) and/or names (iqn.…); default [ALL]. */
  acls?: string[];
  /** Where initiators connect, "VIP" or "VIP:PORT": tgtd must listen there (a wildcard portal on the port will do). */
  portal?: string;
  tid?: number | string;
  /** tgtd's management port (`tgtadm -C`), for a node running several tgtds; default tgtd's own. */
  control_port?: number | string;
  peers?: string[];
}

export interface IscsiTargetAbsentArgs {
  iqn: string;
  control_port?: number | string;
  peers?: string[];
}

/** One LUN as the step sees it: the backing volume by image when it is a loop device of one. */
export interface LunState {
  lun: number;
  backingStore: string | null;
  /** The image file behind a loop-device backing store; what "the same volume" means across nodes. */
  backingImage: string | null;
  scsiId: string;
  scsiSn: string;
}

export interface TargetState {
  tid: number;
  iqn: string;
  /** Without tgtd's own LUN 0 (controller), sorted by number. */
  luns: LunState[];
  acls: string[];
  /** CHAP accounts bound for incoming logins: without one, tgtd lets any initiator the ACLs allow in. */
  accounts: string[];
  /** The account bound for mutual CHAP (absent in journals written before it was read). */
  outgoingAccounts?: string[];
  /** Initiators logged in when probed (their addresses); not part of the identity. */
  sessions: string[];
}

/** JSON: it is journaled. */
export interface IscsiTargetObserved {
  /** Whether tgtd answered at all; a node without tgtd serves nothing. */
  running: boolean;
  target: TargetState | null;
  /** For each `backing_image` of the args: the loop device this node holds for it, or null. */
  devices: Record<string, string | null>;
  portals: string[];
  /** Tids of the node's targets: the tid choice needs them, and a revert needs to know them. */
  tids: number[];
}

export const toInt = (v: number | string | undefined, what: string): number | undefined => {
  if (v === undefined || v === '') return undefined;
  const n = typeof v === 'number' ? v : /^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isInteger(n) || n < 0) throw new StepRefusedError(`${what} "${v}" is not a whole number`);
  return n;
};

export const controlPortOf = (a: { control_port?: number | string }): number | undefined => toInt(a.control_port, 'control_port');

export const iscsiResource = (a: { iqn: string }): string => `iscsi ${a.iqn}`;

/** 32-bit FNV-1a: a tid from the IQN that every node computes alike. */
export function tidFor(iqn: string): number {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(iqn, 'utf8')) {
    h ^= ch;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // tgtadm takes tids up to INT_MAX; keep them short to read and clear of hand-made 1, 2, 3….
  return 1000 + (h % 60000);
}

function stateOf(t: TgtTarget, view: TgtView): TargetState {
  return {
    tid: t.tid,
    iqn: t.iqn,
    luns: t.luns
      .filter((l) => !(l.lun === 0 && l.type === 'controller'))
      .map((l) => ({ lun: l.lun, backingStore: l.backingStore, backingImage: imageOfDevice(view.storage, l.backingStore), scsiId: l.scsiId, scsiSn: l.scsiSn }))
      .sort((x, y) => x.lun - y.lun),
    acls: [...t.acls],
    accounts: [...t.accounts],
    outgoingAccounts: [...t.outgoingAccounts],
    sessions: t.nexus.flatMap((n) => n.addresses.map((a) => `${n.initiator}@${a}`)),
  };
}

export async function probeTarget(run: Parameters<typeof readTgtView>[0], a: { iqn: string; luns?: IscsiLunArgs[]; control_port?: number | string }): Promise<IscsiTargetObserved> {
  const view = await readTgtView(run, controlPortOf(a));
  const t = view.targets.find((x) => x.iqn === a.iqn);
  const devices: Record<string, string | null> = {};
  for (const l of a.luns ?? []) if (l.backing_image) devices[l.backing_image] = heldLoopOf(view.storage, l.backing_image);
  return { running: view.running, target: t ? stateOf(t, view) : null, devices, portals: view.portals, tids: view.targets.map((x) => x.tid).sort((x, y) => x - y) };
}

export const probeHere = (ctx: StepContext, a: { iqn: string; luns?: IscsiLunArgs[]; control_port?: number | string }) => probeTarget(runnerOf(ctx), a);

/** The LUNs the args ask for, backing resolved on this node (null: the image is not attached here). */
export function wantedLuns(a: IscsiTargetArgs, o: Pick<IscsiTargetObserved, 'devices'>): Array<LunState & { wantImage: boolean }> {
  return a.luns
    .map((l) => {
      const lun = toInt(l.lun, 'lun')!;
      if (l.backing_image) return { lun, backingStore: o.devices[l.backing_image] ?? null, backingImage: l.backing_image, scsiId: l.scsi_id, scsiSn: l.scsi_sn, wantImage: true };
      return { lun, backingStore: l.backing_store ?? null, backingImage: null, scsiId: l.scsi_id, scsiSn: l.scsi_sn, wantImage: false };
    })
    .sort((x, y) => x.lun - y.lun);
}

const sameSet = (x: string[], y: string[]) => x.length === y.length && [...x].sort().join('\n') === [...y].sort().join('\n');

/** Same volume: the same image when both sides know one, else the same path. */
function sameBacking(have: LunState, want: LunState & { wantImage?: boolean }): boolean {
  if (want.wantImage) return have.backingImage === want.backingImage && want.backingStore !== null && have.backingStore === want.backingStore;
  if (want.backingImage && have.backingImage) return have.backingImage === want.backingImage;
  return have.backingStore === want.backingStore;
}

/**
 * Identity and access as asked: IQN, LUN numbers, backing, scsi_id, scsi_sn, ACLs, and the CHAP
 * accounts when `want` names them (a target as it was). Not the tid.
 */
export function targetMatches(have: TargetState | null, want: { luns: Array<LunState & { wantImage?: boolean }>; acls: string[]; accounts?: string[]; outgoingAccounts?: string[] }): boolean {
  if (!have) return false;
  if (have.luns.length !== want.luns.length) return false;
  for (let i = 0; i < want.luns.length; i++) {
    const h = have.luns[i]!;
    const w = want.luns[i]!;
    if (h.lun !== w.lun || h.scsiId !== w.scsiId || h.scsiSn !== w.scsiSn || !sameBacking(h, w)) return false;
  }
  if (want.accounts && !sameSet(have.accounts, want.accounts)) return false;
  if (want.outgoingAccounts && !sameSet(have.outgoingAccounts ?? [], want.outgoingAccounts)) return false;
  return sameSet(have.acls, want.acls);
}

export const aclsOf = (a: IscsiTargetArgs): string[] => (a.acls && a.acls.length ? a.acls : ['ALL']);

export function portalOf(a: IscsiTargetArgs): string | undefined {
  if (!a.portal) return undefined;
  const p = splitPortal(a.portal);
  return p.address.includes(':') ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`;
}

export function targetSatisfied(o: IscsiTargetObserved, a: IscsiTargetArgs): boolean {
  if (!o.running || !o.target) return false;
  const tid = toInt(a.tid, 'tid');
  if (tid !== undefined && o.target.tid !== tid) return false;
  const portal = portalOf(a);
  if (portal && !portalCovered(o.portals, portal)) return false;
  return targetMatches(o.target, { luns: wantedLuns(a, o), acls: aclsOf(a) });
}

/** The tid to create a target with on this node: the named one, the IQN's, or the next free. */
export function chooseTid(a: { iqn: string; tid?: number | string }, used: number[], log?: (m: string) => void): number {
  const named = toInt(a.tid, 'tid');
  if (named !== undefined) {
    if (named < 1) throw new StepRefusedError(`tid ${named}: tgtd numbers targets from 1`);
    if (used.includes(named)) throw new StepRefusedError(`tid ${named} is taken by another target on this node; pick another tid for ${a.iqn}`);
    return named;
  }
  let tid = tidFor(a.iqn);
  const first = tid;
  while (used.includes(tid)) tid++;
  if (tid !== first) log?.(`tid ${first} (derived from ${a.iqn}) is taken on this node; using ${tid}: the LUNs' NAA-3 designator in VPD 0x83 will differ from a node that has ${first}`);
  return tid;
}

export interface TargetSpec {
  iqn: string;
  luns: Array<{ lun: number; backingStore: string; scsiId: string; scsiSn: string }>;
  acls: string[];
  /** CHAP accounts to bind (a target put back as it was); absent: accounts are left as they are. */
  accounts?: string[];
  outgoingAccounts?: string[];
}

/** The CHAP bindings `spec` asks for that `have` lacks, and those it has that `spec` does not. */
function accountCommands(cp: number | undefined, tid: number, have: Pick<TargetState, 'accounts' | 'outgoingAccounts'>, spec: TargetSpec): string[][] {
  const cmds: string[][] = [];
  for (const [want, got, outgoing] of [
    [spec.accounts, have.accounts, false],
    [spec.outgoingAccounts, have.outgoingAccounts ?? [], true],
  ] as const) {
    if (!want) continue;
    for (const u of got) if (!want.includes(u)) cmds.push(unbindAccountArgv(cp, tid, u, outgoing));
    for (const u of want) if (!got.includes(u)) cmds.push(bindAccountArgv(cp, tid, u, outgoing));
  }
  return cmds;
}

/** Commands that make `spec` from nothing on tid `tid`. */
export function createCommands(cp: number | undefined, tid: number, spec: TargetSpec): string[][] {
  const cmds: string[][] = [newTargetArgv(cp, tid, spec.iqn)];
  for (const l of spec.luns) cmds.push(newLunArgv(cp, tid, l.lun, l.backingStore), lunIdentityArgv(cp, tid, l.lun, l.scsiId, l.scsiSn));
  // CHAP before the ACLs: a target cut short between the two takes no login, rather than one without CHAP.
  cmds.push(...accountCommands(cp, tid, { accounts: [] }, spec));
  for (const acl of spec.acls) cmds.push(bindAclArgv(cp, tid, acl));
  return cmds;
}

/**
 * Commands that turn the target `have` (same IQN, its tid) into `spec`: LUNs whose backing
 * differs are made again, identities updated, ACLs bound and unbound. Logged-in initiators of a
 * LUN made again see it change: that is what the step was asked for.
 */
export function reconcileCommands(cp: number | undefined, have: TargetState, spec: TargetSpec): string[][] {
  const cmds: string[][] = [];
  const tid = have.tid;
  for (const h of have.luns) if (!spec.luns.some((w) => w.lun === h.lun)) cmds.push(deleteLunArgv(cp, tid, h.lun));
  for (const w of spec.luns) {
    const h = have.luns.find((x) => x.lun === w.lun);
    if (h && h.backingStore !== w.backingStore) cmds.push(deleteLunArgv(cp, tid, w.lun));
    if (!h || h.backingStore !== w.backingStore) cmds.push(newLunArgv(cp, tid, w.lun, w.backingStore), lunIdentityArgv(cp, tid, w.lun, w.scsiId, w.scsiSn));
    else if (h.scsiId !== w.scsiId || h.scsiSn !== w.scsiSn) cmds.push(lunIdentityArgv(cp, tid, w.lun, w.scsiId, w.scsiSn));
  }
  cmds.push(...accountCommands(cp, tid, have, spec));
  for (const acl of have.acls) if (!spec.acls.includes(acl)) cmds.push(unbindAclArgv(cp, tid, acl));
  for (const acl of spec.acls) if (!have.acls.includes(acl)) cmds.push(bindAclArgv(cp, tid, acl));
  return cmds;
}

/** The spec the args ask for on this node; refuses while an image's loop device is not attached here. */
export function specOf(ctx: StepContext, a: IscsiTargetArgs, o: IscsiTargetObserved): TargetSpec {
  const luns = wantedLuns(a, o).map((l) => {
    if (l.backingStore === null) {
      throw new StepRefusedError(
        `on ${ctx.transport.host}: LUN ${l.lun} of ${a.iqn} is backed by ${l.backingImage ?? '(nothing)'}, which this node has not attached; import the volume here first (import_volume provider loop)`,
      );
    }
    return { lun: l.lun, backingStore: l.backingStore, scsiId: l.scsiId, scsiSn: l.scsiSn };
  });
  return { iqn: a.iqn, luns, acls: aclsOf(a) };
}

/** The spec a recorded target amounts to on this node now: a loop-backed LUN follows its image to whatever device holds it here. */
export function specOfState(ctx: StepContext, t: TargetState, now: IscsiTargetObserved): TargetSpec {
  return {
    iqn: t.iqn,
    acls: t.acls,
    accounts: t.accounts,
    ...(t.outgoingAccounts ? { outgoingAccounts: t.outgoingAccounts } : {}),
    luns: t.luns.map((l) => {
      let backing = l.backingStore;
      if (l.backingImage) {
        const dev = now.devices[l.backingImage];
        if (!dev) throw new StepRefusedError(`on ${ctx.transport.host}: LUN ${l.lun} of ${t.iqn} was backed by ${l.backingImage}, which this node has not attached now; import the volume here first`);
        backing = dev;
      }
      if (!backing) throw new StepRefusedError(`on ${ctx.transport.host}: LUN ${l.lun} of ${t.iqn} had no backing store to put back`);
      return { lun: l.lun, backingStore: backing, scsiId: l.scsiId, scsiSn: l.scsiSn };
    }),
  };
}

/**
 * Stop serving target `tid`: its initiators' connections closed first (FACTS: before the target;
 * no new command arrives), then `delete --force`, tried again while tgtd refuses it because a LUN
 * still has a command in flight ("this logical unit is still active", until the reply is sent: a
 * slow backing store, or replies stuck once the VIP went), within a third of the step's time (at
 * most 20 s), then reported with tgtd's words.
 */
export async function deleteTarget(ctx: StepContext, cp: number | undefined, tid: number, iqn: string): Promise<void> {
  const view = await readTgtView(runnerOf(ctx), cp);
  const target = view.targets.find((t) => t.tid === tid && t.iqn === iqn);
  for (const n of target?.nexus ?? []) {
    for (const cid of n.cids ?? []) await ctx.run(deleteConnArgv(cp, tid, n.sid!, cid), { okCodes: ANY_EXIT_STATUS });
  }
  const until = Date.now() + Math.min(20_000, (ctx.timeoutMs ?? 30_000) / 3);
  for (let tries = 1; ; tries++) {
    const r = await ctx.run(deleteTargetArgv(cp, tid), { okCodes: ANY_EXIT_STATUS });
    if (r.code === 0) return;
    const busy = /still active|busy|in use/i.test(r.stderr);
    if (!busy || Date.now() >= until) {
      throw new Error(
        `on ${ctx.transport.host}: tgtadm could not delete target ${tid} (${iqn})${tries > 1 ? ` in ${tries} tries` : ''}: exit ${r.code}, ${r.stderr.trim() || '(no stderr)'}` +
          (busy ? '; a LUN still has a command in flight (is its backing store hung?), and LUNs numbered above it may already be gone' : ''),
      );
    }
    await new Promise((res) => setTimeout(res, 250));
  }
}

export async function runAll(ctx: StepContext, cmds: string[][]): Promise<void> {
  for (const argv of cmds) await ctx.run(argv);
}

/**
 * Put this node's target for the IQN back as `want` shows it (null: no such target), tid kept when
 * free; and remove `addedPortal`, the portal the step added. Only that one: portals are tgtd's,
 * shared by every target on the node, and another group's (its VIP's) may have come since.
 */
export async function restoreTarget(ctx: StepContext, a: { iqn: string; control_port?: number | string }, want: TargetState | null, addedPortal?: string): Promise<void> {
  const cp = controlPortOf(a);
  const luns = want?.luns.map((l) => ({ lun: l.lun, backing_image: l.backingImage ?? undefined, backing_store: l.backingImage ? undefined : (l.backingStore ?? undefined), scsi_id: l.scsiId, scsi_sn: l.scsiSn })) ?? [];
  const now = await probeHere(ctx, { iqn: a.iqn, luns, control_port: a.control_port });
  if (!now.running) throw new Error(`on ${ctx.transport.host}: tgtd does not answer (tgtadm exit 107); cannot put ${a.iqn} back`);
  if (!want) {
    if (now.target) await deleteTarget(ctx, cp, now.target.tid, now.target.iqn);
  } else {
    const spec = specOfState(ctx, want, now);
    if (now.target) await runAll(ctx, reconcileCommands(cp, now.target, spec));
    else {
      const tid = now.tids.includes(want.tid) ? chooseTid({ iqn: want.iqn }, now.tids, ctx.log) : want.tid;
      await runAll(ctx, createCommands(cp, tid, spec));
    }
  }
  if (addedPortal) {
    const w = splitPortal(addedPortal);
    const there = now.portals.find((p) => splitPortal(p).address === w.address && splitPortal(p).port === w.port);
    if (there) await ctx.run(deletePortalArgv(cp, there));
  }
}

