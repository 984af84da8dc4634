/**
 * What the scsi-pr fence provider and its node-side agent (scsi-pr-agent.ts) say to each other:
 * one JSON request as the agent's argument, one JSON line back on its stdout. Kept apart from
 * the agent so the provider can build requests without running the agent's entry point.
 */
import { createHash } from 'node:crypto';
import { scriptPath } from '../../util/paths.js';

/** The shared LUN and who speaks to it: the node's own initiator name is its I_T nexus. */
export interface PrLun {
  /** "198.18.201.250:3260" */
  portal: string;
  iqn: string;
  lun: number;
  /** The initiator name of the node the agent runs on. */
  initiator: string;
}

export type PrRequest = PrLun & { timeoutMs?: number } & (
    | { op: 'keys' }
    | { op: 'register'; key: string; type: number }
    | { op: 'preempt'; key: string; victim: string; type: number }
    | { op: 'unregister' }
    | { op: 'logout' }
    | { op: 'write'; lba: number; data: string }
    | { op: 'read'; lba: number; blocks: number }
  );

export interface PrAnswer {
  ok: boolean;
  /** Registered keys as 0x-hex (READ KEYS), after the operation. */
  keys?: string[];
  reservation?: { key: string; type: number } | null;
  /**
   * The key this node's resident session registered itself with, if it has one; absent when
   * the answer came from a one-shot session (the node has no resident session).
   */
  registered?: string | null;
  /**
   * 'resident': through the node's long-lived session; 'one-shot': a session made for this
   * read; 'kernel': through the node's kernel initiator (sg_persist on a block device).
   */
  nexus?: 'resident' | 'one-shot' | 'kernel';
  /** read: the blocks, base64. */
  data?: string;
  error?: string;
  /** "RESERVATION CONFLICT" when the target refused the command for that reason. */
  status?: string;
}

export const SCSI_PR_AGENT = scriptPath(import.meta.url, 'steps/fence/scsi-pr-agent.js');

export function keyHex(k: bigint): string {
  return `0x${k.toString(16).padStart(16, '0')}`;
}

/**
 * The abstract unix socket of a node's resident session: abstract names live in the network
 * namespace, so each node (and each lab node) has its own, and nothing is left on disk.
 */
export function residentSocket(l: PrLun): string {
  const h = createHash('sha256').update(`${l.portal}\n${l.iqn}\n${l.lun}\n${l.initiator}`).digest('hex').slice(0, 24);
  return `\0baton-scsi-pr-${h}`;
}
