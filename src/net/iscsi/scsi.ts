/**
 * The SCSI half of baton's initiator: command descriptor blocks (SPC-4, SBC-3) for the few
 * commands it sends, parsers of what they return, and sense data in words.
 *
 * CDBs used:
 *   TEST UNIT READY   0x00 (6 bytes, all zero)
 *   INQUIRY           0x12, byte 1 bit 0 EVPD, byte 2 page code, bytes 3-4 allocation length
 *   READ CAPACITY(16) 0x9e, service action 0x10 in byte 1, bytes 10-13 allocation length
 *   READ(16)/WRITE(16) 0x88/0x8a, bytes 2-9 LBA, bytes 10-13 number of blocks
 *   REPORT LUNS       0xa0, bytes 6-9 allocation length
 *   PERSISTENT RESERVE IN 0x5e, service action in byte 1, bytes 7-8 allocation length
 *   PERSISTENT RESERVE OUT 0x5f, service action in byte 1, scope/type in byte 2, bytes 5-8
 *                     parameter list length (24: key, service action key, flags with APTPL)
 */

export const ScsiStatus = {
  GOOD: 0x00,
  CHECK_CONDITION: 0x02,
  CONDITION_MET: 0x04,
  BUSY: 0x08,
  RESERVATION_CONFLICT: 0x18,
  TASK_SET_FULL: 0x28,
  ACA_ACTIVE: 0x30,
  TASK_ABORTED: 0x40,
} as const;

const STATUS_NAMES: Record<number, string> = Object.fromEntries(Object.entries(ScsiStatus).map(([k, v]) => [v, k.replace(/_/g, ' ')]));

export function statusName(status: number): string {
  return STATUS_NAMES[status] ?? `status 0x${status.toString(16).padStart(2, '0')}`;
}

export function testUnitReadyCdb(): Buffer {
  return Buffer.alloc(6);
}

export function inquiryCdb(page: number | null, allocation: number): Buffer {
  const c = Buffer.alloc(6);
  c[0] = 0x12;
  if (page !== null) {
    c[1] = 0x01;
    c[2] = page;
  }
  c.writeUInt16BE(allocation, 3);
  return c;
}

export function readCapacity16Cdb(allocation = 32): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x9e;
  c[1] = 0x10;
  c.writeUInt32BE(allocation, 10);
  return c;
}

function rw16Cdb(opcode: number, lba: bigint, blocks: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = opcode;
  c.writeBigUInt64BE(lba, 2);
  c.writeUInt32BE(blocks, 10);
  return c;
}

export function read16Cdb(lba: bigint, blocks: number): Buffer {
  return rw16Cdb(0x88, lba, blocks);
}

export function write16Cdb(lba: bigint, blocks: number): Buffer {
  return rw16Cdb(0x8a, lba, blocks);
}

export function reportLunsCdb(allocation: number): Buffer {
  const c = Buffer.alloc(12);
  c[0] = 0xa0;
  c.writeUInt32BE(allocation, 6);
  return c;
}

export interface StandardInquiry {
  /** Peripheral device type (0 disk, 0x0c storage array controller, …). */
  deviceType: number;
  /** Peripheral qualifier: 0 connected, 1 not connected, 3 no device at this LUN. */
  qualifier: number;
  vendor: string;
  product: string;
  revision: string;
}

export function parseStandardInquiry(d: Buffer): StandardInquiry {
  if (d.length < 36) throw new Error(`standard INQUIRY data of ${d.length} bytes (at least 36 expected)`);
  const text = (a: number, b: number) => d.subarray(a, b).toString('latin1').trim();
  return { qualifier: d[0]! >> 5, deviceType: d[0]! & 0x1f, vendor: text(8, 16), product: text(16, 32), revision: text(32, 36) };
}

function vpdBody(d: Buffer, page: number): Buffer {
  if (d.length < 4) throw new Error(`VPD page 0x${page.toString(16)} of ${d.length} bytes (header is 4)`);
  if (d[1] !== page) throw new Error(`asked for VPD page 0x${page.toString(16)}, got page 0x${d[1]!.toString(16)}`);
  const len = d.readUInt16BE(2);
  if (d.length < 4 + len) throw new Error(`VPD page 0x${page.toString(16)} says ${len} bytes, ${d.length - 4} arrived`);
  return d.subarray(4, 4 + len);
}

/**
 * VPD 0x80, Unit Serial Number: ASCII, padded with spaces (tgt right-aligns it in 36 bytes) or
 * NULs; the padding is dropped here. Compare the raw page (`vpd(lun, 0x80)`) for byte identity.
 */
export function parseUnitSerial(d: Buffer): string {
  return vpdBody(d, 0x80).toString('latin1').replace(/^[ \0]+|[ \0]+$/g, '');
}

export interface Designator {
  /** 1 T10 vendor ID, 2 EUI-64, 3 NAA, 4 relative target port, 5 target port group, 8 SCSI name string… */
  type: number;
  typeName: string;
  /** 0 the logical unit, 1 the target port, 2 the target device. */
  association: number;
  /** 1 binary, 2 ASCII, 3 UTF-8. */
  codeSet: number;
  /** The designator's bytes as hex (what multipath's WWID is made of for NAA). */
  hex: string;
  /** ASCII and UTF-8 designators as text. */
  text?: string;
}

const DESIGNATOR_TYPES: Record<number, string> = { 0: 'vendor-specific', 1: 't10', 2: 'eui64', 3: 'naa', 4: 'relative-port', 5: 'port-group', 6: 'lu-group', 7: 'md5', 8: 'scsi-name' };

/** VPD 0x83, Device Identification: the list of designation descriptors. */
export function parseDeviceIdentification(d: Buffer): Designator[] {
  const body = vpdBody(d, 0x83);
  const out: Designator[] = [];
  let off = 0;
  while (off + 4 <= body.length) {
    const codeSet = body[off]! & 0x0f;
    const association = (body[off + 1]! >> 4) & 0x03;
    const type = body[off + 1]! & 0x0f;
    const len = body[off + 3]!;
    if (off + 4 + len > body.length) throw new Error(`VPD 0x83 descriptor at byte ${off + 4} runs past the page`);
    const bytes = body.subarray(off + 4, off + 4 + len);
    const desc: Designator = { type, typeName: DESIGNATOR_TYPES[type] ?? `type ${type}`, association, codeSet, hex: bytes.toString('hex') };
    if (codeSet === 2 || codeSet === 3) desc.text = bytes.toString('utf8').replace(/\0+$/, '');
    out.push(desc);
    off += 4 + len;
  }
  return out;
}

/** NAA formats, most to least unique: IEEE Registered Extended, Registered, Extended, locally assigned. */
const NAA_PREFERENCE = [6, 5, 2, 3];

/**
 * The logical unit's NAA designator as hex, if it has one: what Linux makes the WWID of
 * (3 + hex). A LU may carry several (tgt: a locally assigned one from tid and LUN, and a
 * Registered Extended one from scsi_id); like udev's scsi_id, prefer the most unique format.
 */
export function naaOf(ids: Designator[]): string | undefined {
  const naas = ids.filter((d) => d.type === 3 && d.association === 0 && d.hex.length > 0);
  const rank = (d: Designator) => {
    const i = NAA_PREFERENCE.indexOf(parseInt(d.hex[0]!, 16));
    return i < 0 ? NAA_PREFERENCE.length : i;
  };
  return naas.sort((x, y) => rank(x) - rank(y))[0]?.hex;
}

export interface Capacity {
  /** Number of logical blocks (last LBA + 1). */
  blocks: bigint;
  blockSize: number;
  bytes: bigint;
}

export function parseReadCapacity16(d: Buffer): Capacity {
  if (d.length < 12) throw new Error(`READ CAPACITY(16) data of ${d.length} bytes (at least 12 expected)`);
  const blocks = d.readBigUInt64BE(0) + 1n;
  const blockSize = d.readUInt32BE(8);
  return { blocks, blockSize, bytes: blocks * BigInt(blockSize) };
}

/** LUN numbers of a REPORT LUNS answer (peripheral and flat addressing; others as raw). */
export function parseReportLuns(d: Buffer): number[] {
  if (d.length < 8) throw new Error(`REPORT LUNS data of ${d.length} bytes (at least 8 expected)`);
  const listLen = d.readUInt32BE(0);
  const out: number[] = [];
  for (let off = 8; off + 8 <= Math.min(d.length, 8 + listLen); off += 8) out.push(decodeLun(d.subarray(off, off + 8)));
  return out;
}

/** The 8-byte LUN field of SAM for a LUN number: peripheral (< 256) or flat space (< 16384). */
export function encodeLun(lun: number): Buffer {
  const b = Buffer.alloc(8);
  if (!Number.isInteger(lun) || lun < 0 || lun > 0x3fff) throw new Error(`LUN ${lun} out of range (0..16383)`);
  if (lun < 256) b[1] = lun;
  else {
    b[0] = 0x40 | (lun >> 8);
    b[1] = lun & 0xff;
  }
  return b;
}

export function decodeLun(b: Buffer): number {
  const method = b[0]! >> 6;
  if (method === 0 || method === 1) return ((b[0]! & 0x3f) << 8) | b[1]!;
  throw new Error(`LUN with addressing method ${method} (${b.toString('hex')}) not supported`);
}

export interface Sense {
  key: number;
  keyName: string;
  asc: number;
  ascq: number;
  /** "NOT READY: medium not present" */
  text: string;
}

const SENSE_KEYS = ['NO SENSE', 'RECOVERED ERROR', 'NOT READY', 'MEDIUM ERROR', 'HARDWARE ERROR', 'ILLEGAL REQUEST', 'UNIT ATTENTION', 'DATA PROTECT', 'BLANK CHECK', 'VENDOR SPECIFIC', 'COPY ABORTED', 'ABORTED COMMAND', 'RESERVED', 'VOLUME OVERFLOW', 'MISCOMPARE', 'COMPLETED'];

/** The common additional sense codes (SPC-4 Annex D), keyed ASC<<8 | ASCQ; 0xff ASCQ = any. */
const ASC_TEXT: Record<number, string> = {
  0x0400: 'logical unit not ready, cause not reportable',
  0x0401: 'logical unit is becoming ready',
  0x0402: 'logical unit not ready, initializing command required',
  0x0403: 'logical unit not ready, manual intervention required',
  0x0800: 'logical unit communication failure',
  0x1100: 'unrecovered read error',
  0x1a00: 'parameter list length error',
  0x2000: 'invalid command operation code',
  0x2100: 'logical block address out of range',
  0x2400: 'invalid field in CDB',
  0x2500: 'logical unit not supported',
  0x2600: 'invalid field in parameter list',
  0x2700: 'write protected',
  0x2800: 'not ready to ready change, medium may have changed',
  0x2900: 'power on, reset, or bus device reset occurred',
  0x2a01: 'mode parameters changed',
  0x2a03: 'reservations preempted',
  0x2a04: 'reservations released',
  0x2a05: 'registrations preempted',
  0x3a00: 'medium not present',
  0x3f0e: 'reported LUNs data has changed',
  0x4700: 'SCSI parity error',
  0x4b00: 'data phase error',
  0x5501: 'system buffer full',
};

/** Fixed (0x70/0x71) or descriptor (0x72/0x73) format sense data; undefined if too short. */
export function parseSense(d: Buffer): Sense | undefined {
  if (d.length < 2) return undefined;
  const code = d[0]! & 0x7f;
  let key: number, asc: number, ascq: number;
  if (code === 0x70 || code === 0x71) {
    if (d.length < 14) {
      if (d.length < 3) return undefined;
      key = d[2]! & 0x0f;
      asc = d[12] ?? 0;
      ascq = d[13] ?? 0;
    } else {
      key = d[2]! & 0x0f;
      asc = d[12]!;
      ascq = d[13]!;
    }
  } else if (code === 0x72 || code === 0x73) {
    if (d.length < 4) return undefined;
    key = d[1]! & 0x0f;
    asc = d[2]!;
    ascq = d[3]!;
  } else return undefined;
  const keyName = SENSE_KEYS[key]!;
  const what = ASC_TEXT[(asc << 8) | ascq] ?? `ASC 0x${asc.toString(16).padStart(2, '0')} ASCQ 0x${ascq.toString(16).padStart(2, '0')}`;
  return { key, keyName, asc, ascq, text: `${keyName}: ${what}` };
}

/**
 * A SCSI command that completed with a status other than GOOD, as a person reads it:
 * "READ(16) on LUN 1: CHECK CONDITION, ILLEGAL REQUEST: logical block address out of range".
 */
export class ScsiError extends Error {
  constructor(
    readonly command: string,
    readonly lun: number,
    readonly status: number,
    readonly sense?: Sense,
  ) {
    super(`${command} on LUN ${lun}: ${statusName(status)}${sense ? `, ${sense.text}` : ''}`);
    this.name = 'ScsiError';
  }

  get reservationConflict(): boolean {
    return this.status === ScsiStatus.RESERVATION_CONFLICT;
  }
}

// ---------------------------------------------------------------- persistent reservations (SPC-4 §6.15, §6.16)

export const PrIn = { READ_KEYS: 0, READ_RESERVATION: 1, REPORT_CAPABILITIES: 2 } as const;
export const PrOut = { REGISTER: 0, RESERVE: 1, RELEASE: 2, CLEAR: 3, PREEMPT: 4, PREEMPT_AND_ABORT: 5, REGISTER_AND_IGNORE: 6 } as const;
/** Reservation types: who may write (WE) or access at all (EA) while it is held. */
export const PrType = { WRITE_EXCLUSIVE: 1, EXCLUSIVE_ACCESS: 3, WE_REGISTRANTS_ONLY: 5, EA_REGISTRANTS_ONLY: 6, WE_ALL_REGISTRANTS: 7, EA_ALL_REGISTRANTS: 8 } as const;

export function prInCdb(action: number, allocation: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x5e;
  c[1] = action & 0x1f;
  c.writeUInt16BE(allocation, 7);
  return c;
}

export function prOutCdb(action: number, type: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x5f;
  c[1] = action & 0x1f;
  c[2] = type & 0x0f; // scope 0: the logical unit
  c.writeUInt32BE(24, 5);
  return c;
}

/** The 24-byte parameter list of PERSISTENT RESERVE OUT (no APTPL: tgt keeps registrations in memory only). */
export function prOutParams(key: bigint, serviceActionKey: bigint): Buffer {
  const p = Buffer.alloc(24);
  p.writeBigUInt64BE(key, 0);
  p.writeBigUInt64BE(serviceActionKey, 8);
  return p;
}

export function parsePrKeys(d: Buffer): { generation: number; keys: bigint[] } {
  if (d.length < 8) throw new Error(`READ KEYS data of ${d.length} bytes (at least 8 expected)`);
  const len = d.readUInt32BE(4);
  const keys: bigint[] = [];
  for (let off = 8; off + 8 <= Math.min(d.length, 8 + len); off += 8) keys.push(d.readBigUInt64BE(off));
  return { generation: d.readUInt32BE(0), keys };
}

export interface PrReservation {
  generation: number;
  /** null: no reservation held. */
  holder: { key: bigint; type: number } | null;
}

export function parsePrReservation(d: Buffer): PrReservation {
  if (d.length < 8) throw new Error(`READ RESERVATION data of ${d.length} bytes (at least 8 expected)`);
  const len = d.readUInt32BE(4);
  if (len < 16 || d.length < 24) return { generation: d.readUInt32BE(0), holder: null };
  return { generation: d.readUInt32BE(0), holder: { key: d.readBigUInt64BE(8), type: d[21]! & 0x0f } };
}
