/**
 * Read-only facts about a node's iSCSI target daemon (tgt, userspace): the targets, their LUNs
 * with backing store and identity, CHAP accounts, ACLs, connected initiators, and the portals
 * tgtd listens on; plus the tgtadm argv that steps run to change them (built here so the parsers
 * and the writers agree on one vocabulary). Parsers are unit-tested against tgtadm 1.0.85 output.
 *
 * tgtadm talks to tgtd over a unix socket named after the management port (`-C N`, default 0):
 * several tgtds on one machine (tests) each have their own.
 */
import type { Runner } from './storage.js';
import { loopsOfImage, readStorageView, type StorageView } from './storage.js';

export interface TgtLun {
  lun: number;
  /** disk, controller (LUN 0, made by tgtd itself), cd/dvd… */
  type: string;
  scsiId: string;
  scsiSn: string;
  sizeMb: number | null;
  blockSize: number | null;
  online: boolean;
  readonly: boolean;
  /** rdwr, aio, null… */
  backingStoreType: string;
  /** null for "None" (the controller LUN). */
  backingStore: string | null;
}

export interface TgtNexus {
  initiator: string;
  addresses: string[];
  /** The I_T nexus (session) id and its connections' ids: what `--mode conn --op delete` takes. */
  sid?: number;
  cids?: number[];
}

export interface TgtTarget {
  tid: number;
  iqn: string;
  state: string;
  nexus: TgtNexus[];
  /** Every LUN tgtd shows, LUN 0 (the controller tgtd adds by itself) included. */
  luns: TgtLun[];
  /** CHAP accounts bound for incoming logins. */
  accounts: string[];
  outgoingAccounts: string[];
  /** Initiator addresses (ALL, 198.18.0.0/15, an address) and initiator names, as bound. */
  acls: string[];
}

/** `tgtadm --lld iscsi --mode target --op show`: every target, indentation-structured. */
export function parseTgtadmTargets(stdout: string): TgtTarget[] {
  const out: TgtTarget[] = [];
  let t: TgtTarget | undefined;
  let section = '';
  let lun: TgtLun | undefined;
  let nexus: TgtNexus | undefined;
  let sid: number | undefined;
  for (const raw of stdout.split('\n')) {
    if (!raw.trim()) continue;
    const line = raw.trim();
    const head = /^Target (\d+): (.+)$/.exec(raw);
    if (head) {
      t = { tid: Number(head[1]), iqn: head[2]!.trim(), state: '', nexus: [], luns: [], accounts: [], outgoingAccounts: [], acls: [] };
      out.push(t);
      section = '';
      continue;
    }
    if (!t) throw new Error(`tgtadm output starts with "${line.slice(0, 60)}", not "Target N: IQN"`);
    const indent = raw.length - raw.trimStart().length;
    if (indent === 4) {
      section = line.replace(/:$/, '');
      lun = undefined;
      nexus = undefined;
      continue;
    }
    const kv = /^([^:]+):\s?(.*)$/.exec(line);
    switch (section) {
      case 'System information':
        if (kv?.[1] === 'State') t.state = kv[2]!.trim();
        break;
      case 'I_T nexus information':
        if (kv?.[1] === 'I_T nexus') sid = Number(kv[2]);
        else if (kv?.[1] === 'Initiator') {
          nexus = { initiator: kv[2]!.replace(/ alias: .*$/, '').trim(), addresses: [], ...(Number.isInteger(sid) ? { sid, cids: [] } : {}) };
          t.nexus.push(nexus);
        } else if (kv?.[1] === 'Connection' && nexus?.cids && /^\d+$/.test(kv[2]!.trim())) nexus.cids.push(Number(kv[2]));
        else if (kv?.[1] === 'IP Address' && nexus) nexus.addresses.push(kv[2]!.trim());
        break;
      case 'LUN information':
        if (kv?.[1] === 'LUN') {
          lun = { lun: Number(kv[2]), type: '', scsiId: '', scsiSn: '', sizeMb: null, blockSize: null, online: false, readonly: false, backingStoreType: '', backingStore: null };
          t.luns.push(lun);
        } else if (lun && kv) {
          const v = kv[2]!.trim();
          switch (kv[1]) {
            case 'Type':
              lun.type = v;
              break;
            case 'SCSI ID':
              lun.scsiId = v;
              break;
            case 'SCSI SN':
              lun.scsiSn = v;
              break;
            case 'Size': {
              const m = /^(\d+) MB, Block size: (\d+)$/.exec(v);
              if (m) {
                lun.sizeMb = Number(m[1]);
                lun.blockSize = Number(m[2]);
              }
              break;
            }
            case 'Online':
              lun.online = v === 'Yes';
              break;
            case 'Readonly':
              lun.readonly = v === 'Yes';
              break;
            case 'Backing store type':
              lun.backingStoreType = v;
              break;
            case 'Backing store path':
              lun.backingStore = v === 'None' ? null : v;
              break;
          }
        }
        break;
      case 'Account information': {
        const out = / \(outgoing\)$/.exec(line);
        if (out) t.outgoingAccounts.push(line.replace(/ \(outgoing\)$/, ''));
        else t.accounts.push(line);
        break;
      }
      case 'ACL information':
        t.acls.push(line);
        break;
    }
  }
  return out;
}

/** `tgtadm --lld iscsi --mode portal --op show`: "Portal: 0.0.0.0:3260,1" lines → "0.0.0.0:3260". */
export function parseTgtadmPortals(stdout: string): string[] {
  const out: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^Portal: (.+?)(?:,\d+)?$/.exec(line.trim());
    if (m) out.push(m[1]!);
  }
  return out;
}

/** Split "ADDR:PORT" / "[V6]:PORT" into address and port. */
export function splitPortal(portal: string, defaultPort = 3260): { address: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(portal);
  if (v6) return { address: v6[1]!, port: v6[2] ? Number(v6[2]) : defaultPort };
  const m = /^([^:]+)(?::(\d+))?$/.exec(portal);
  if (m) return { address: m[1]!, port: m[2] ? Number(m[2]) : defaultPort };
  return { address: portal, port: defaultPort };
}

/**
 * Does tgtd listen where an initiator will connect (`ADDR:PORT`)? A wildcard portal on the port
 * covers every address of its family: tgtd sets IPV6_V6ONLY on its IPv6 sockets (usr/iscsi/
 * iscsi_tcp.c), so `[::]:3260` takes no IPv4 login.
 */
export function portalCovered(portals: string[], wanted: string): boolean {
  const w = splitPortal(wanted);
  const v6 = w.address.includes(':');
  return portals.some((p) => {
    const have = splitPortal(p);
    return have.port === w.port && (have.address === w.address || have.address === (v6 ? '::' : '0.0.0.0'));
  });
}

/** Initiator names (bound with --initiator-name) versus addresses (--initiator-address). */
export const isInitiatorName = (acl: string): boolean => /^(iqn|eui|naa)\./i.test(acl);

// ---------------------------------------------------------------- argv

export function tgtadmArgv(controlPort: number | undefined, args: string[]): string[] {
  return ['tgtadm', ...(controlPort !== undefined ? ['-C', String(controlPort)] : []), '--lld', 'iscsi', ...args];
}

export const showTargetsArgv = (cp?: number): string[] => tgtadmArgv(cp, ['--mode', 'target', '--op', 'show']);
export const showPortalsArgv = (cp?: number): string[] => tgtadmArgv(cp, ['--mode', 'portal', '--op', 'show']);
export const newTargetArgv = (cp: number | undefined, tid: number, iqn: string): string[] => tgtadmArgv(cp, ['--mode', 'target', '--op', 'new', '--tid', String(tid), '--targetname', iqn]);
/** `--force`: a target with logged-in initiators is removed too (their connections are closed). */
/** Close one connection of an initiator's session (the target's release does it before deleting the target). */
export const deleteConnArgv = (cp: number | undefined, tid: number, sid: number, cid: number): string[] =>
  tgtadmArgv(cp, ['--mode', 'conn', '--op', 'delete', '--tid', String(tid), '--sid', String(sid), '--cid', String(cid)]);
export const deleteTargetArgv = (cp: number | undefined, tid: number): string[] => tgtadmArgv(cp, ['--mode', 'target', '--op', 'delete', '--force', '--tid', String(tid)]);
export const newLunArgv = (cp: number | undefined, tid: number, lun: number, backing: string): string[] =>
  tgtadmArgv(cp, ['--mode', 'logicalunit', '--op', 'new', '--tid', String(tid), '--lun', String(lun), '--backing-store', backing]);
export const deleteLunArgv = (cp: number | undefined, tid: number, lun: number): string[] => tgtadmArgv(cp, ['--mode', 'logicalunit', '--op', 'delete', '--tid', String(tid), '--lun', String(lun)]);
export const lunIdentityArgv = (cp: number | undefined, tid: number, lun: number, scsiId: string, scsiSn: string): string[] =>
  tgtadmArgv(cp, ['--mode', 'logicalunit', '--op', 'update', '--tid', String(tid), '--lun', String(lun), '--params', `scsi_id=${scsiId},scsi_sn=${scsiSn}`]);
export const bindAclArgv = (cp: number | undefined, tid: number, acl: string): string[] =>
  tgtadmArgv(cp, ['--mode', 'target', '--op', 'bind', '--tid', String(tid), isInitiatorName(acl) ? '--initiator-name' : '--initiator-address', acl]);
export const unbindAclArgv = (cp: number | undefined, tid: number, acl: string): string[] =>
  tgtadmArgv(cp, ['--mode', 'target', '--op', 'unbind', '--tid', String(tid), isInitiatorName(acl) ? '--initiator-name' : '--initiator-address', acl]);
/** Bind an existing CHAP account to the target (`outgoing`: the one the target answers mutual CHAP with). */
export const bindAccountArgv = (cp: number | undefined, tid: number, user: string, outgoing = false): string[] =>
  tgtadmArgv(cp, ['--mode', 'account', '--op', 'bind', '--tid', String(tid), '--user', user, ...(outgoing ? ['--outgoing'] : [])]);
export const unbindAccountArgv = (cp: number | undefined, tid: number, user: string, outgoing = false): string[] =>
  tgtadmArgv(cp, ['--mode', 'account', '--op', 'unbind', '--tid', String(tid), '--user', user, ...(outgoing ? ['--outgoing'] : [])]);
export const newPortalArgv = (cp: number | undefined, portal: string): string[] => tgtadmArgv(cp, ['--mode', 'portal', '--op', 'new', '--param', `portal=${portal}`]);
export const deletePortalArgv = (cp: number | undefined, portal: string): string[] => tgtadmArgv(cp, ['--mode', 'portal', '--op', 'delete', '--param', `portal=${portal}`]);

// ---------------------------------------------------------------- readers

/** tgtadm's exit code when it cannot reach tgtd (ENOTCONN): no tgtd on this node (or this -C port). */
export const TGTADM_NOT_RUNNING = 107;

export interface TgtView {
  /** False when no tgtd answers on this node's control socket. */
  running: boolean;
  targets: TgtTarget[];
  portals: string[];
  /** Loop devices and this node's claims, to say which image a LUN's loop device belongs to. */
  storage: StorageView;
}

/** Targets, portals and loop devices of one node, read in parallel. */
export async function readTgtView(run: Runner, controlPort?: number): Promise<TgtView> {
  const [targets, portals, storage] = await Promise.all([
    run(showTargetsArgv(controlPort), [0, TGTADM_NOT_RUNNING]),
    run(showPortalsArgv(controlPort), [0, TGTADM_NOT_RUNNING]),
    readStorageView(run),
  ]);
  if (targets.code === TGTADM_NOT_RUNNING) return { running: false, targets: [], portals: [], storage };
  return { running: true, targets: parseTgtadmTargets(targets.stdout), portals: parseTgtadmPortals(portals.stdout), storage };
}

/** The image file behind a loop device (null when the path is not a loop device of a file). */
export function imageOfDevice(storage: StorageView, device: string | null): string | null {
  if (!device) return null;
  return storage.loops.find((l) => l.name === device)?.backFile || null;
}

/** The loop device this node attached for an image (its claim), if any. */
export function heldLoopOf(storage: StorageView, image: string): string | null {
  const attached = loopsOfImage(storage.loops, image);
  return storage.claims.find((c) => c.image === image && attached.includes(c.device))?.device ?? null;
}
