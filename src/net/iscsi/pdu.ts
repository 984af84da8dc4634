/**
 * iSCSI PDUs (RFC 7143 §11): the 48-byte Basic Header Segment, the data segment padded to a
 * multiple of 4, and the text key=value format of login and text exchanges. Only what baton's
 * initiator sends and reads; no AHS, no digests (HeaderDigest/DataDigest are negotiated None).
 *
 * BHS, all opcodes:
 *   byte 0      I bit (0x40, immediate delivery) | opcode (low 6 bits)
 *   byte 1      F bit (0x80, final) and opcode-specific flags
 *   byte 4      TotalAHSLength (4-byte words); bytes 5-7 DataSegmentLength (bytes, before padding)
 *   bytes 8-15  LUN or opcode-specific; bytes 16-19 Initiator Task Tag; 20-47 opcode-specific
 */

export const BHS_LENGTH = 48;

export const Op = {
  NopOut: 0x00,
  ScsiCommand: 0x01,
  LoginRequest: 0x03,
  TextRequest: 0x04,
  DataOut: 0x05,
  LogoutRequest: 0x06,
  NopIn: 0x20,
  ScsiResponse: 0x21,
  LoginResponse: 0x23,
  TextResponse: 0x24,
  DataIn: 0x25,
  LogoutResponse: 0x26,
  R2T: 0x31,
  AsyncMessage: 0x32,
  Reject: 0x3f,
} as const;

const OP_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Op).map(([k, v]) => [v, k]));

export function opName(op: number): string {
  return OP_NAMES[op] ?? `opcode 0x${op.toString(16).padStart(2, '0')}`;
}

/** The "no tag" value of ITT/TTT fields. */
export const RESERVED_TAG = 0xffffffff;

/** Never accept a data segment larger than this from a target, whatever it negotiated. */
export const MAX_DATA_SEGMENT = 16 * 1024 * 1024;

export interface Pdu {
  /** The whole 48-byte header. Opcode-specific fields are read from it by the helpers below. */
  bhs: Buffer;
  /** The data segment without padding. */
  data: Buffer;
}

export function pduOpcode(p: Pdu): number {
  return p.bhs[0]! & 0x3f;
}

export function pduFinal(p: Pdu): boolean {
  return (p.bhs[1]! & 0x80) !== 0;
}

export function itt(p: Pdu): number {
  return p.bhs.readUInt32BE(16);
}

/** A fresh BHS with opcode, immediate bit, flags byte and the data segment length set. */
export function newBhs(opcode: number, flags: number, dataLength: number, immediate = false): Buffer {
  const b = Buffer.alloc(BHS_LENGTH);
  b[0] = (immediate ? 0x40 : 0) | opcode;
  b[1] = flags;
  b.writeUIntBE(dataLength, 5, 3);
  return b;
}

/** Header and data as they go on the wire, data padded with zeros to 4 bytes. */
export function encodePdu(bhs: Buffer, data: Buffer = Buffer.alloc(0)): Buffer {
  if (bhs.readUIntBE(5, 3) !== data.length) throw new Error(`BHS says ${bhs.readUIntBE(5, 3)} data bytes, ${data.length} given`);
  const pad = (4 - (data.length % 4)) % 4;
  return Buffer.concat([bhs, data, Buffer.alloc(pad)]);
}

/** Reassembles PDUs from a TCP byte stream: `push` returns every PDU complete so far. */
export class PduReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Pdu[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Pdu[] = [];
    for (;;) {
      if (this.buf.length < BHS_LENGTH) return out;
      const ahs = this.buf[4]! * 4;
      const dlen = this.buf.readUIntBE(5, 3);
      if (dlen > MAX_DATA_SEGMENT) throw new Error(`iSCSI PDU (${opName(this.buf[0]! & 0x3f)}) announces a ${dlen}-byte data segment: not an iSCSI target speaking`);
      const total = BHS_LENGTH + ahs + dlen + ((4 - (dlen % 4)) % 4);
      if (this.buf.length < total) return out;
      const bhs = Buffer.from(this.buf.subarray(0, BHS_LENGTH));
      const data = Buffer.from(this.buf.subarray(BHS_LENGTH + ahs, BHS_LENGTH + ahs + dlen));
      out.push({ bhs, data });
      this.buf = this.buf.subarray(total);
    }
  }

  /** Bytes received that are not a whole PDU yet. */
  get pending(): number {
    return this.buf.length;
  }
}

/** Split a byte stream (a capture) into PDUs; throws if bytes are left over. */
export function splitPdus(stream: Buffer): Pdu[] {
  const r = new PduReader();
  const pdus = r.push(stream);
  if (r.pending) throw new Error(`${r.pending} bytes after the last whole PDU`);
  return pdus;
}

/**
 * Text keys (RFC 7143 §6.1): `key=value` each followed by a NUL. Order is kept (a list of pairs),
 * since SendTargets answers repeat `TargetAddress` after each `TargetName`.
 */
export type TextPairs = Array<[string, string]>;

export function encodeText(pairs: TextPairs): Buffer {
  return Buffer.from(pairs.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

export function decodeText(data: Buffer): TextPairs {
  const out: TextPairs = [];
  for (const item of data.toString('utf8').split('\0')) {
    if (!item) continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new Error(`malformed iSCSI text key "${item.slice(0, 60)}" (no key=value)`);
    out.push([item.slice(0, eq), item.slice(eq + 1)]);
  }
  return out;
}

/** Last value of each key, for answers where keys do not repeat. */
export function textMap(pairs: TextPairs): Map<string, string> {
  return new Map(pairs);
}

/** Serial number arithmetic is not needed for one command at a time; words wrap at 2^32. */
export function u32(n: number): number {
  return n >>> 0;
}
