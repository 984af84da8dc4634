/**
 * The scsi-pr provider's other channel: `sg_persist` (sg3_utils) on nodes that see the shared
 * LUN as a kernel block device. The node's nexus is then its kernel initiator's session, which
 * lives as long as the node is logged in, so no resident session of baton's is needed.
 * The same requests as the agent (scsi-pr-protocol.ts), answered in the same shape.
 *
 * sg_persist exits 24 when the device answered RESERVATION CONFLICT (sg3_utils' exit status
 * table); its --in output is read as sg3_utils 1.4x prints it:
 *   "  PR generation=0x4, 2 registered reservation keys follow:" then "    0xa1" lines, or
 *   "  PR generation=0x0, there are NO registered reservation keys";
 *   "  PR generation=0x4, Reservation follows:" "    Key=0xa1" "    scope: LU_SCOPE,  type: …",
 *   or "… there is NO reservation held".
 */
import type { ExecResult } from '../../transport/transport.js';
import { keyHex, type PrAnswer, type PrRequest } from './scsi-pr-protocol.js';

export const SG_RESERVATION_CONFLICT = 24;

export function sgPersistArgv(q: PrRequest, device: string): string[][] {
  const dev = ['--no-inquiry', device];
  const keys = ['sg_persist', '--in', '--read-keys', ...dev];
  const reservation = ['sg_persist', '--in', '--read-reservation', ...dev];
  switch (q.op) {
    case 'keys':
      return [keys, reservation];
    case 'register':
      return [['sg_persist', '--out', '--register-ignore', `--param-sark=${q.key}`, ...dev], reservation, ['sg_persist', '--out', '--reserve', `--param-rk=${q.key}`, `--prout-type=${q.type}`, ...dev]];
    case 'preempt':
      return [reservation, ['sg_persist', '--out', '--reserve', `--param-rk=${q.key}`, `--prout-type=${q.type}`, ...dev], keys, ['sg_persist', '--out', '--preempt', `--param-rk=${q.key}`, `--param-sark=${q.victim}`, `--prout-type=${q.type}`, ...dev]];
    case 'unregister':
      return [['sg_persist', '--out', '--register-ignore', '--param-sark=0', ...dev]];
    default:
      throw new Error(`scsi-pr over sg_persist does not do ${q.op}`);
  }
}

function normal(hex: string): string {
  return keyHex(BigInt(hex));
}

export function parseReadKeys(out: string): string[] {
  if (/there are NO registered reservation keys/i.test(out)) return [];
  if (!/registered reservation keys? follows?:/i.test(out)) throw new Error(`sg_persist --read-keys printed what baton cannot read: ${out.trim() || '(nothing)'}`);
  return [...out.matchAll(/^\s+(0x[0-9a-fA-F]+)\s*$/gm)].map((m) => normal(m[1]!));
}

const TYPE_WORDS: Array<[RegExp, number]> = [
  [/Write Exclusive, registrants only/i, 5],
  [/Exclusive Access, registrants only/i, 6],
  [/Write Exclusive, all registrants/i, 7],
  [/Exclusive Access, all registrants/i, 8],
  [/Write Exclusive/i, 1],
  [/Exclusive Access/i, 3],
];

export function parseReadReservation(out: string): PrAnswer['reservation'] {
  if (/there is NO reservation held/i.test(out)) return null;
  const key = /Key=(0x[0-9a-fA-F]+)/.exec(out);
  const type = /type:\s*(.+)$/m.exec(out);
  if (!key || !type) throw new Error(`sg_persist --read-reservation printed what baton cannot read: ${out.trim() || '(nothing)'}`);
  const t = TYPE_WORDS.find(([re]) => re.test(type[1]!))?.[1];
  if (t === undefined) throw new Error(`sg_persist --read-reservation: unknown reservation type "${type[1]!.trim()}"`);
  return { key: normal(key[1]!), type: t };
}

type Exec = (argv: string[]) => Promise<ExecResult>;

function conflict(r: ExecResult): boolean {
  return r.code === SG_RESERVATION_CONFLICT;
}

function failed(argv: string[], r: ExecResult): PrAnswer {
  const what = (r.stderr || r.stdout).trim() || '(no output)';
  return conflict(r)
    ? { ok: false, status: 'RESERVATION CONFLICT', error: `\`${argv.join(' ')}\`: RESERVATION CONFLICT (${what})` }
    : { ok: false, error: `\`${argv.join(' ')}\` exited ${r.code}: ${what}` };
}

/** Answer a request with sg_persist commands run through `exec` (on the right node). */
export async function sgPersistAsk(exec: Exec, q: PrRequest, device: string): Promise<PrAnswer> {
  const argvs = sgPersistArgv(q, device);
  const run = async (argv: string[]) => ({ argv, r: await exec(argv) });
  const read = async (): Promise<PrAnswer> => {
    const [k, v] = sgPersistArgv({ ...q, op: 'keys' }, device) as [string[], string[]];
    const keys = await run(k);
    if (keys.r.code !== 0) return failed(keys.argv, keys.r);
    const res = await run(v);
    if (res.r.code !== 0) return failed(res.argv, res.r);
    return { ok: true, nexus: 'kernel', keys: parseReadKeys(keys.r.stdout), reservation: parseReadReservation(res.r.stdout) };
  };
  switch (q.op) {
    case 'keys':
      return read();
    case 'register': {
      const [reg, res, reserve] = argvs as [string[], string[], string[]];
      const a = await run(reg);
      if (a.r.code !== 0) return failed(a.argv, a.r);
      const held = await run(res);
      if (held.r.code !== 0) return failed(held.argv, held.r);
      if (!parseReadReservation(held.r.stdout)) {
        const b = await run(reserve);
        // Another node reserved in between: fine, if a reservation is held now.
        if (b.r.code !== 0 && !(conflict(b.r) && (await read()).reservation)) return failed(b.argv, b.r);
      }
      return { ...(await read()), registered: q.key };
    }
    case 'preempt': {
      const [res, reserve, keys, preempt] = argvs as [string[], string[], string[], string[]];
      const held = await run(res);
      if (held.r.code !== 0) return failed(held.argv, held.r);
      if (!parseReadReservation(held.r.stdout)) {
        const b = await run(reserve);
        if (b.r.code !== 0) return failed(b.argv, b.r);
      }
      const k = await run(keys);
      if (k.r.code !== 0) return failed(k.argv, k.r);
      if (parseReadKeys(k.r.stdout).includes(q.victim)) {
        const p = await run(preempt);
        if (p.r.code !== 0) return failed(p.argv, p.r);
      }
      return read();
    }
    case 'unregister': {
      const a = await run(argvs[0]!);
      if (a.r.code !== 0) return failed(a.argv, a.r);
      return { ...(await read()), registered: null };
    }
    default:
      return { ok: false, error: `scsi-pr over sg_persist does not do ${q.op}` };
  }
}
