/**
 * A small iSCSI initiator (RFC 7143), one connection, one command at a time: enough to log in
 * through a VIP as a client does, read and write a few blocks, read a LUN's identity (INQUIRY
 * VPD 0x80 and 0x83) and list a portal's targets (SendTargets). It is what a client sees of an
 * iSCSI service, asked from baton's own process; no kernel initiator, no libiscsi.
 *
 * Choices, for a prober rather than a data path:
 * - HeaderDigest and DataDigest None; ErrorRecoveryLevel 0; one connection per session.
 * - InitialR2T=Yes offered (the target asks for all write data beyond the immediate data with
 *   R2T), ImmediateData=Yes offered.
 * - Every exchange is bounded by `timeoutMs`: a target that goes quiet is an error naming the
 *   portal and the command, never a hang. On a timeout the connection is dropped.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { CHAP_MD5, chapResponse, decodeBinary, encodeHex } from './chap.js';
import {
  Op, RESERVED_TAG, decodeText, encodePdu, encodeText, itt as pduItt, newBhs, opName, pduFinal, pduOpcode, textMap, u32,
  PduReader, type Pdu, type TextPairs,
} from './pdu.js';
import {
  ScsiError, ScsiStatus, encodeLun, inquiryCdb, naaOf, parseDeviceIdentification, parseReadCapacity16, parseReportLuns,
  parseSense, parseStandardInquiry, parseUnitSerial, read16Cdb, readCapacity16Cdb, reportLunsCdb, testUnitReadyCdb, write16Cdb,
  PrIn, PrOut, parsePrKeys, parsePrReservation, prInCdb, prOutCdb, prOutParams,
  type Capacity, type Designator, type PrReservation, type StandardInquiry,
} from './scsi.js';

export const ISCSI_PORT = 3260;
export const DEFAULT_TIMEOUT_MS = 5000;
/** What baton offers to receive in one data segment; tgtd's own default is 8 KiB. */
const OUR_MAX_RECV = 262144;
const UNIT_ATTENTION = 6;

export interface ChapCredentials {
  user: string;
  secret: string;
}

export interface SessionOptions {
  /** For messages: "198.18.193.100:3260". */
  portal: string;
  initiatorName: string;
  /** The target to log in to; absent: a discovery session. */
  targetName?: string;
  chap?: ChapCredentials;
  /** Bound on each exchange (a login step, a command, a logout), ms. */
  timeoutMs?: number;
  /** 6-byte ISID; default: random-type with random qualifier. Fixed in tests to compare bytes. */
  isid?: Buffer;
  /** Every PDU as it goes on or comes off the wire (captures for fixtures, -v tracing). */
  trace?: (direction: 'out' | 'in', bytes: Buffer) => void;
}

export interface ConnectOptions extends Omit<SessionOptions, 'portal'> {
  host: string;
  port?: number;
  localAddress?: string;
}

/** A login the target refused, with its status class/detail in words. */
export class IscsiLoginError extends Error {
  constructor(
    message: string,
    readonly statusClass: number,
    readonly statusDetail: number,
  ) {
    super(message);
    this.name = 'IscsiLoginError';
  }
  get authFailure(): boolean {
    return this.statusClass === 2 && (this.statusDetail === 1 || this.statusDetail === 2);
  }
}

const LOGIN_STATUS: Record<number, string> = {
  0x0101: 'target moved temporarily',
  0x0102: 'target moved permanently',
  0x0200: 'initiator error',
  0x0201: 'authentication failed',
  0x0202: 'authorization failure (this initiator may not access the target)',
  0x0203: 'target not found',
  0x0204: 'target removed',
  0x0205: 'unsupported version',
  0x0206: 'too many connections',
  0x0207: 'missing parameter',
  0x0208: "can't include in session",
  0x0209: 'session type not supported',
  0x020a: 'session does not exist',
  0x020b: 'invalid request during login',
  0x0300: 'target error',
  0x0301: 'service unavailable',
  0x0302: 'out of resources',
};

export function describeLoginStatus(cls: number, detail: number): string {
  return LOGIN_STATUS[(cls << 8) | detail] ?? `status class ${cls} detail ${detail}`;
}

/** What both sides agreed at login (RFC 7143 §13). */
export interface Negotiated {
  /** The most we may put in one data segment we send (the target's declaration). */
  targetMaxRecv: number;
  maxBurst: number;
  firstBurst: number;
  initialR2T: boolean;
  immediateData: boolean;
  /** Every key the target answered, as it answered them. */
  answered: Record<string, string>;
}

export interface CommandResult {
  status: number;
  /** Data-In bytes received (trimmed to what arrived). */
  data: Buffer;
  sense?: Buffer;
}

export interface DiscoveredTarget {
  name: string;
  /** "198.18.193.100:3260,1" as the target sent them. */
  addresses: string[];
}

let isidCounter = Math.floor(Math.random() * 0xffff);

function randomIsid(): Buffer {
  const b = Buffer.alloc(6);
  // Type 10b (random): top two bits of the first byte; the rest random plus a per-process counter.
  b[0] = 0x80 | Math.floor(Math.random() * 0x40);
  b.writeUIntBE(Math.floor(Math.random() * 0xffff), 1, 2);
  b[3] = Math.floor(Math.random() * 0x100);
  b.writeUInt16BE((isidCounter = (isidCounter + 1) & 0xffff), 4);
  return b;
}

/** Open a TCP connection to a portal, bounded. */
export function connectPortal(host: string, port: number, timeoutMs: number, localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, localAddress });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`iSCSI portal ${host}:${port}: no TCP connection within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.setNoDelay(true);
      resolve(sock);
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(`iSCSI portal ${host}:${port}: ${e.code ?? e.message}`));
    });
  });
}

/** Log in over a fresh TCP connection. The caller logs out (or closes) when done. */
export async function iscsiLogin(o: ConnectOptions): Promise<IscsiSession> {
  const port = o.port ?? ISCSI_PORT;
  const sock = await connectPortal(o.host, port, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, o.localAddress);
  return IscsiSession.login(sock, { ...o, portal: `${o.host}:${port}` });
}

/** SendTargets=All through a discovery session: every target the portal lists, with its addresses. */
export async function discoverTargets(o: Omit<ConnectOptions, 'targetName'>): Promise<DiscoveredTarget[]> {
  const s = await iscsiLogin({ ...o, targetName: undefined });
  try {
    const targets = await s.sendTargets();
    await s.logout();
    return targets;
  } finally {
    s.close();
  }
}

export class IscsiSession {
  private readonly reader = new PduReader();
  private readonly inbox: Pdu[] = [];
  private waiter: ((p: Pdu | Error) => void) | undefined;
  private failure: Error | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private nextItt = 1;
  private cmdSn = 1;
  private expStatSn = 0;
  private tsih = 0;
  readonly isid: Buffer;
  readonly timeoutMs: number;
  negotiated: Negotiated | undefined;
  /** UNIT ATTENTION conditions reported so far (and retried past), oldest first. */
  readonly unitAttentions: Array<{ lun: number; text: string }> = [];
  /** How long the login took, ms (connect not included). */
  readonly timings: { loginMs?: number } = {};

  private constructor(
    private readonly stream: Duplex,
    readonly o: SessionOptions,
  ) {
    this.isid = o.isid ?? randomIsid();
    this.timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    stream.on('data', (chunk: Buffer) => {
      let pdus: Pdu[];
      try {
        pdus = this.reader.push(chunk);
      } catch (e) {
        return this.fail(new Error(`${o.portal}: ${(e as Error).message}`));
      }
      for (const p of pdus) this.receive(p);
    });
    stream.on('error', (e: NodeJS.ErrnoException) => this.fail(new Error(`${o.portal}: connection error ${e.code ?? e.message}`)));
    stream.on('close', () => this.fail(new Error(`${o.portal} closed the iSCSI connection`)));
    stream.on('end', () => this.fail(new Error(`${o.portal} closed the iSCSI connection`)));
  }

  /** Log in on an open stream (a TCP socket, or a replay in unit tests). */
  static async login(stream: Duplex, o: SessionOptions): Promise<IscsiSession> {
    const s = new IscsiSession(stream, o);
    const t0 = performance.now();
    try {
      await s.doLogin();
    } catch (e) {
      s.close();
      // tgtd closes a login without a word when it serves no target at all (seen with 1.0.85).
      if (e instanceof Error && !(e instanceof IscsiLoginError) && / (closed the iSCSI connection|connection error ECONNRESET)$/.test(e.message)) {
        throw new Error(`${e.message} during login, without a login response (a portal that serves no target at all, as tgtd with none, does that)`);
      }
      throw e;
    }
    s.timings.loginMs = Math.round((performance.now() - t0) * 10) / 10;
    return s;
  }

  get discovery(): boolean {
    return this.o.targetName === undefined;
  }

  private what(): string {
    return this.o.targetName ? `${this.o.portal} (${this.o.targetName})` : `${this.o.portal} (discovery)`;
  }

  private receive(p: Pdu): void {
    const op = pduOpcode(p);
    this.o.trace?.('in', encodePdu(p.bhs, p.data));
    // A NOP-In that carries a target transfer tag is a ping the target wants answered.
    if (op === Op.NopIn && p.bhs.readUInt32BE(20) !== RESERVED_TAG) {
      const b = newBhs(Op.NopOut, 0x80, 0, true);
      b.set(p.bhs.subarray(8, 16), 8);
      b.writeUInt32BE(RESERVED_TAG, 16);
      b.writeUInt32BE(p.bhs.readUInt32BE(20), 20);
      b.writeUInt32BE(u32(this.cmdSn), 24);
      b.writeUInt32BE(u32(this.expStatSn), 28);
      this.send(b);
      return;
    }
    if (op === Op.NopIn || op === Op.AsyncMessage) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(p);
    } else this.inbox.push(p);
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    const w = this.waiter;
    this.waiter = undefined;
    w?.(e);
  }

  private send(bhs: Buffer, data?: Buffer): void {
    const bytes = encodePdu(bhs, data);
    this.o.trace?.('out', bytes);
    this.stream.write(bytes);
  }

  /** The next PDU from the target, within the exchange's deadline. */
  private next(deadline: number, doing: string): Promise<Pdu> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(new Error(`${doing}: ${this.failure.message}`));
    return new Promise((resolve, reject) => {
      const left = Math.max(0, deadline - performance.now());
      const timer = setTimeout(() => {
        this.waiter = undefined;
        const e = new Error(`${this.what()}: no answer to ${doing} within ${this.timeoutMs} ms; connection dropped`);
        this.fail(e);
        this.stream.destroy();
        reject(e);
      }, left);
      this.waiter = (p) => {
        clearTimeout(timer);
        if (p instanceof Error) reject(new Error(`${doing}: ${p.message}`));
        else resolve(p);
      };
    });
  }

  /** One exchange at a time on this connection. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private takeStatSn(p: Pdu): void {
    this.expStatSn = u32(p.bhs.readUInt32BE(24) + 1);
  }

  private newItt(): number {
    const t = this.nextItt;
    this.nextItt = this.nextItt >= 0x7fffffff ? 1 : this.nextItt + 1;
    return t;
  }

  // ---- login (RFC 7143 §6.3, §11.12, §11.13) ----

  private loginBhs(transit: boolean, csg: number, nsg: number, itt: number, dataLength: number): Buffer {
    const b = newBhs(Op.LoginRequest, (transit ? 0x80 : 0) | (csg << 2) | (transit ? nsg : 0), dataLength, true);
    b[2] = 0; // version-max
    b[3] = 0; // version-min
    this.isid.copy(b, 8);
    b.writeUInt16BE(this.tsih, 14);
    b.writeUInt32BE(itt, 16);
    b.writeUInt16BE(0, 20); // CID
    b.writeUInt32BE(u32(this.cmdSn), 24);
    b.writeUInt32BE(u32(this.expStatSn), 28);
    return b;
  }

  private async loginExchange(transit: boolean, csg: number, nsg: number, itt: number, pairs: TextPairs, deadline: number, doing: string): Promise<{ keys: Map<string, string>; transit: boolean; nsg: number }> {
    const data = encodeText(pairs);
    this.send(this.loginBhs(transit, csg, nsg, itt, data.length), data);
    const r = await this.next(deadline, doing);
    const op = pduOpcode(r);
    if (op === Op.Reject) throw new Error(`${this.what()}: target rejected the login PDU (reason 0x${r.bhs[2]!.toString(16)})`);
    if (op !== Op.LoginResponse) throw new Error(`${this.what()}: ${opName(op)} during login (a Login Response was expected)`);
    const cls = r.bhs[36]!;
    const detail = r.bhs[37]!;
    this.tsih = r.bhs.readUInt16BE(14);
    this.takeStatSn(r);
    const keys = textMap(decodeText(r.data));
    if (cls !== 0) {
      const where = cls === 1 && keys.get('TargetAddress') ? ` (go to ${keys.get('TargetAddress')})` : '';
      throw new IscsiLoginError(`${this.what()}: login refused: ${describeLoginStatus(cls, detail)}${where}`, cls, detail);
    }
    return { keys, transit: (r.bhs[1]! & 0x80) !== 0, nsg: r.bhs[1]! & 0x03 };
  }

  private async doLogin(): Promise<void> {
    const deadline = performance.now() + this.timeoutMs;
    const itt = this.newItt();
    const first: TextPairs = [
      ['InitiatorName', this.o.initiatorName],
      ['SessionType', this.discovery ? 'Discovery' : 'Normal'],
      ...(this.o.targetName ? ([['TargetName', this.o.targetName]] as TextPairs) : []),
    ];
    // Security negotiation (stage 0).
    if (this.o.chap) {
      const offer = await this.loginExchange(false, 0, 1, itt, [...first, ['AuthMethod', 'CHAP']], deadline, 'the login (security, AuthMethod)');
      if (offer.keys.get('AuthMethod') !== 'CHAP') throw new IscsiLoginError(`${this.what()}: CHAP was asked for, the target answered AuthMethod=${offer.keys.get('AuthMethod') ?? '(nothing)'}`, 2, 1);
      const algo = await this.loginExchange(false, 0, 1, itt, [['CHAP_A', String(CHAP_MD5)]], deadline, 'the login (CHAP_A)');
      const idText = algo.keys.get('CHAP_I');
      const challengeText = algo.keys.get('CHAP_C');
      if (algo.keys.get('CHAP_A') !== String(CHAP_MD5) || idText === undefined || challengeText === undefined) {
        throw new IscsiLoginError(`${this.what()}: the target did not send an MD5 CHAP challenge (CHAP_A=${algo.keys.get('CHAP_A')}, CHAP_I=${idText}, CHAP_C ${challengeText ? 'present' : 'missing'})`, 2, 1);
      }
      const resp = chapResponse(Number(idText), this.o.chap.secret, decodeBinary(challengeText));
      const done = await this.loginExchange(true, 0, 1, itt, [['CHAP_N', this.o.chap.user], ['CHAP_R', encodeHex(resp)]], deadline, 'the login (CHAP_R)');
      if (!done.transit) throw new Error(`${this.what()}: the target accepted CHAP but did not leave the security stage`);
    } else {
      const r = await this.loginExchange(true, 0, 1, itt, [...first, ['AuthMethod', 'None']], deadline, 'the login (security, AuthMethod=None)');
      const method = r.keys.get('AuthMethod');
      if (method !== undefined && method !== 'None') throw new IscsiLoginError(`${this.what()}: the target requires authentication (AuthMethod=${method}); give CHAP credentials`, 2, 1);
      if (!r.transit) throw new IscsiLoginError(`${this.what()}: the target did not accept a login without authentication`, 2, 1);
    }
    // Operational negotiation (stage 1) until the target lets us into full feature phase (3).
    let offer: TextPairs = [
      ['HeaderDigest', 'None'],
      ['DataDigest', 'None'],
      ['MaxRecvDataSegmentLength', String(OUR_MAX_RECV)],
      ['DefaultTime2Wait', '0'],
      ['DefaultTime2Retain', '0'],
      ['ErrorRecoveryLevel', '0'],
    ];
    if (!this.discovery) {
      offer.push(
        ['InitialR2T', 'Yes'],
        ['ImmediateData', 'Yes'],
        ['MaxBurstLength', '262144'],
        ['FirstBurstLength', '65536'],
        ['MaxOutstandingR2T', '1'],
        ['MaxConnections', '1'],
        ['DataPDUInOrder', 'Yes'],
        ['DataSequenceInOrder', 'Yes'],
      );
    }
    const answered: Record<string, string> = {};
    for (let round = 0; round < 8; round++) {
      const r = await this.loginExchange(true, 1, 3, itt, offer, deadline, 'the login (operational negotiation)');
      for (const [k, v] of r.keys) answered[k] = v;
      if (r.transit && r.nsg === 3) {
        this.negotiated = settle(answered);
        for (const [k, v] of [['HeaderDigest', answered.HeaderDigest], ['DataDigest', answered.DataDigest]] as const) {
          if (v !== undefined && v !== 'None') throw new Error(`${this.what()}: the target insists on ${k}=${v}; baton's initiator speaks None only`);
        }
        return;
      }
      offer = [];
    }
    throw new Error(`${this.what()}: operational negotiation did not end after 8 rounds`);
  }

  // ---- SCSI commands (RFC 7143 §11.2-11.8) ----

  /**
   * Run one CDB on a LUN. `read` is the number of bytes expected from the target; `write` the
   * bytes sent (immediate data first, the rest on R2T). Resolves with any status; `command`
   * helpers below turn a non-GOOD status into ScsiError.
   */
  execute(lun: number, cdb: Buffer, o: { read?: number; write?: Buffer; name?: string } = {}): Promise<CommandResult> {
    return this.serial(() => this.executeNow(lun, cdb, o));
  }

  private async executeNow(lun: number, cdb: Buffer, o: { read?: number; write?: Buffer; name?: string }): Promise<CommandResult> {
    if (this.discovery) throw new Error(`${this.what()}: a discovery session carries no SCSI commands`);
    if (cdb.length > 16) throw new Error(`CDB of ${cdb.length} bytes: baton's initiator sends at most 16 (no AHS)`);
    const neg = this.negotiated!;
    const name = o.name ?? `SCSI 0x${cdb[0]!.toString(16)}`;
    const doing = `${name} on LUN ${lun}`;
    const deadline = performance.now() + this.timeoutMs;
    const task = this.newItt();
    const readLen = o.read ?? 0;
    const out = o.write ?? Buffer.alloc(0);
    const immediate = neg.immediateData ? out.subarray(0, Math.min(out.length, neg.firstBurst, neg.targetMaxRecv)) : Buffer.alloc(0);
    const flags = 0x80 | (readLen ? 0x40 : 0) | (out.length ? 0x20 : 0) | 0x01; // F, R, W, ATTR simple
    const b = newBhs(Op.ScsiCommand, flags, immediate.length);
    const lunField = encodeLun(lun);
    lunField.copy(b, 8);
    b.writeUInt32BE(task, 16);
    b.writeUInt32BE(readLen || out.length, 20);
    b.writeUInt32BE(u32(this.cmdSn), 24);
    b.writeUInt32BE(u32(this.expStatSn), 28);
    cdb.copy(b, 32);
    this.cmdSn = u32(this.cmdSn + 1);
    this.send(b, immediate.length ? immediate : undefined);

    const data = Buffer.alloc(readLen);
    let got = 0;
    for (;;) {
      const p = await this.next(deadline, doing);
      const op = pduOpcode(p);
      if (op === Op.Reject) throw new Error(`${this.what()}: target rejected ${doing} (reason 0x${p.bhs[2]!.toString(16)})`);
      if (pduItt(p) !== task) throw new Error(`${this.what()}: ${opName(op)} for task ${pduItt(p)} while waiting for ${doing} (task ${task})`);
      if (op === Op.DataIn) {
        const offset = p.bhs.readUInt32BE(40);
        if (offset + p.data.length > readLen) throw new Error(`${this.what()}: Data-In beyond the ${readLen} bytes asked for by ${doing}`);
        p.data.copy(data, offset);
        got = Math.max(got, offset + p.data.length);
        if (p.bhs[1]! & 0x01) {
          this.takeStatSn(p);
          return { status: p.bhs[3]!, data: data.subarray(0, got) };
        }
      } else if (op === Op.R2T) {
        const ttt = p.bhs.readUInt32BE(20);
        const offset = p.bhs.readUInt32BE(40);
        const wanted = p.bhs.readUInt32BE(44);
        if (offset + wanted > out.length) throw new Error(`${this.what()}: R2T for bytes ${offset}..${offset + wanted} of a ${out.length}-byte write`);
        let dataSn = 0;
        for (let at = offset; at < offset + wanted; ) {
          const n = Math.min(neg.targetMaxRecv, offset + wanted - at);
          const last = at + n >= offset + wanted;
          const d = newBhs(Op.DataOut, last ? 0x80 : 0, n);
          lunField.copy(d, 8);
          d.writeUInt32BE(task, 16);
          d.writeUInt32BE(ttt, 20);
          d.writeUInt32BE(u32(this.expStatSn), 28);
          d.writeUInt32BE(dataSn++, 36);
          d.writeUInt32BE(at, 40);
          this.send(d, out.subarray(at, at + n));
          at += n;
        }
      } else if (op === Op.ScsiResponse) {
        this.takeStatSn(p);
        if (p.bhs[2] !== 0) throw new Error(`${this.what()}: ${doing} not completed by the target (iSCSI response 0x${p.bhs[2]!.toString(16)})`);
        let sense: Buffer | undefined;
        if (p.data.length >= 2) {
          const len = p.data.readUInt16BE(0);
          if (len) sense = p.data.subarray(2, 2 + len);
        }
        return { status: p.bhs[3]!, data: data.subarray(0, got), ...(sense ? { sense } : {}) };
      } else {
        throw new Error(`${this.what()}: unexpected ${opName(op)} while waiting for ${doing}`);
      }
    }
  }

  /** Execute and insist on GOOD status. */
  /**
   * Execute and insist on GOOD status. A UNIT ATTENTION (a new I_T nexus after login, a LUN
   * added, reservations preempted) is the target telling news, not refusing: the command is
   * sent again, a few times at most, and the news kept in `unitAttentions`.
   */
  async command(name: string, lun: number, cdb: Buffer, o: { read?: number; write?: Buffer } = {}): Promise<Buffer> {
    for (let attempt = 0; ; attempt++) {
      const r = await this.execute(lun, cdb, { ...o, name });
      if (r.status === ScsiStatus.GOOD) return r.data;
      const sense = r.sense ? parseSense(r.sense) : undefined;
      if (r.status === ScsiStatus.CHECK_CONDITION && sense?.key === UNIT_ATTENTION && attempt < 4) {
        this.unitAttentions.push({ lun, text: sense.text });
        continue;
      }
      throw new ScsiError(name, lun, r.status, sense);
    }
  }

  async testUnitReady(lun: number): Promise<void> {
    await this.command('TEST UNIT READY', lun, testUnitReadyCdb());
  }

  async inquiry(lun: number): Promise<StandardInquiry> {
    return parseStandardInquiry(await this.command('INQUIRY', lun, inquiryCdb(null, 96), { read: 96 }));
  }

  /** INQUIRY VPD page, raw bytes (header included): what must be byte-identical across a move. */
  async vpd(lun: number, page: number): Promise<Buffer> {
    return this.command(`INQUIRY VPD 0x${page.toString(16).padStart(2, '0')}`, lun, inquiryCdb(page, 255), { read: 255 });
  }

  async unitSerial(lun: number): Promise<string> {
    return parseUnitSerial(await this.vpd(lun, 0x80));
  }

  async deviceIdentification(lun: number): Promise<Designator[]> {
    return parseDeviceIdentification(await this.vpd(lun, 0x83));
  }

  async naa(lun: number): Promise<string | undefined> {
    return naaOf(await this.deviceIdentification(lun));
  }

  async readCapacity(lun: number): Promise<Capacity> {
    return parseReadCapacity16(await this.command('READ CAPACITY(16)', lun, readCapacity16Cdb(32), { read: 32 }));
  }

  async read(lun: number, lba: bigint | number, blocks: number, blockSize: number): Promise<Buffer> {
    const len = blocks * blockSize;
    const d = await this.command('READ(16)', lun, read16Cdb(BigInt(lba), blocks), { read: len });
    if (d.length !== len) throw new Error(`${this.what()}: READ(16) of ${blocks} block(s) at LBA ${lba} on LUN ${lun} returned ${d.length} of ${len} bytes`);
    return d;
  }

  async write(lun: number, lba: bigint | number, data: Buffer, blockSize: number): Promise<void> {
    if (data.length % blockSize) throw new Error(`a write of ${data.length} bytes is not whole ${blockSize}-byte blocks`);
    await this.command('WRITE(16)', lun, write16Cdb(BigInt(lba), data.length / blockSize), { write: data });
  }

  /** LUN numbers the target reports (asked on LUN 0, as initiators do). */
  async reportLuns(): Promise<number[]> {
    return parseReportLuns(await this.command('REPORT LUNS', 0, reportLunsCdb(4096), { read: 4096 }));
  }

  // ---- persistent reservations: what SCSI fencing is made of ----

  /** Registered keys of every I_T nexus (READ KEYS). */
  async prKeys(lun: number): Promise<bigint[]> {
    return parsePrKeys(await this.command('PERSISTENT RESERVE IN (READ KEYS)', lun, prInCdb(PrIn.READ_KEYS, 4096), { read: 4096 })).keys;
  }

  async prReservation(lun: number): Promise<PrReservation> {
    return parsePrReservation(await this.command('PERSISTENT RESERVE IN (READ RESERVATION)', lun, prInCdb(PrIn.READ_RESERVATION, 64), { read: 64 }));
  }

  private prOut(name: string, lun: number, action: number, type: number, key: bigint, saKey: bigint): Promise<Buffer> {
    return this.command(`PERSISTENT RESERVE OUT (${name})`, lun, prOutCdb(action, type), { write: prOutParams(key, saKey) });
  }

  /** Register this nexus with `key` (REGISTER AND IGNORE EXISTING KEY: whatever it had before). */
  async prRegister(lun: number, key: bigint): Promise<void> {
    await this.prOut('REGISTER AND IGNORE EXISTING KEY', lun, PrOut.REGISTER_AND_IGNORE, 0, 0n, key);
  }

  async prReserve(lun: number, key: bigint, type: number): Promise<void> {
    await this.prOut('RESERVE', lun, PrOut.RESERVE, type, key, 0n);
  }

  async prRelease(lun: number, key: bigint, type: number): Promise<void> {
    await this.prOut('RELEASE', lun, PrOut.RELEASE, type, key, 0n);
  }

  /** Remove `victim`'s registration (and take its reservation): fencing. Not PREEMPT AND ABORT, which tgtd lacks. */
  async prPreempt(lun: number, key: bigint, victim: bigint, type: number): Promise<void> {
    await this.prOut('PREEMPT', lun, PrOut.PREEMPT, type, key, victim);
  }

  async prClear(lun: number, key: bigint): Promise<void> {
    await this.prOut('CLEAR', lun, PrOut.CLEAR, 0, key, 0n);
  }

  // ---- text (SendTargets) and logout ----

  sendTargets(): Promise<DiscoveredTarget[]> {
    return this.serial(async () => {
      const deadline = performance.now() + this.timeoutMs;
      const task = this.newItt();
      let ttt = RESERVED_TAG;
      let request: TextPairs = [['SendTargets', 'All']];
      const pairs: TextPairs = [];
      for (let round = 0; round < 64; round++) {
        const data = encodeText(request);
        const b = newBhs(Op.TextRequest, 0x80, data.length);
        b.writeUInt32BE(task, 16);
        b.writeUInt32BE(ttt, 20);
        b.writeUInt32BE(u32(this.cmdSn), 24);
        b.writeUInt32BE(u32(this.expStatSn), 28);
        this.cmdSn = u32(this.cmdSn + 1);
        this.send(b, data.length ? data : undefined);
        const r = await this.next(deadline, 'SendTargets');
        if (pduOpcode(r) !== Op.TextResponse) throw new Error(`${this.what()}: ${opName(pduOpcode(r))} in answer to SendTargets`);
        this.takeStatSn(r);
        pairs.push(...decodeText(r.data));
        // C bit: more text follows; the next request (empty) carries the target's transfer tag.
        if (!(r.bhs[1]! & 0x40) && pduFinal(r)) return parseSendTargets(pairs);
        ttt = r.bhs.readUInt32BE(20);
        request = [];
      }
      throw new Error(`${this.what()}: SendTargets answer did not end after 64 PDUs`);
    });
  }

  /** Close the session (reason 0) and the connection. */
  logout(): Promise<void> {
    return this.serial(async () => {
      if (this.failure) return;
      const deadline = performance.now() + this.timeoutMs;
      const b = newBhs(Op.LogoutRequest, 0x80, 0, true);
      b.writeUInt32BE(this.newItt(), 16);
      b.writeUInt32BE(u32(this.cmdSn), 24);
      b.writeUInt32BE(u32(this.expStatSn), 28);
      this.send(b);
      const r = await this.next(deadline, 'logout');
      if (pduOpcode(r) !== Op.LogoutResponse) throw new Error(`${this.what()}: ${opName(pduOpcode(r))} in answer to logout`);
      this.takeStatSn(r);
      if (r.bhs[2] !== 0) throw new Error(`${this.what()}: logout refused (response ${r.bhs[2]})`);
      this.close();
    });
  }

  /** Drop the connection (after logout, or instead of it on an error path). */
  close(): void {
    this.fail(new Error(`${this.o.portal}: session closed`));
    this.stream.end();
    this.stream.destroy();
  }
}

function settle(a: Record<string, string>): Negotiated {
  const num = (k: string, dflt: number) => {
    const v = Number(a[k]);
    return Number.isFinite(v) && v > 0 ? v : dflt;
  };
  return {
    // RFC 7143 defaults where the target said nothing.
    targetMaxRecv: num('MaxRecvDataSegmentLength', 8192),
    maxBurst: Math.min(num('MaxBurstLength', 262144), 262144),
    firstBurst: Math.min(num('FirstBurstLength', 65536), 65536),
    initialR2T: a.InitialR2T !== 'No',
    immediateData: a.ImmediateData === undefined ? true : a.ImmediateData === 'Yes',
    answered: a,
  };
}

/** SendTargets answers: TargetName starts a target, TargetAddress lines that follow belong to it. */
export function parseSendTargets(pairs: TextPairs): DiscoveredTarget[] {
  const out: DiscoveredTarget[] = [];
  for (const [k, v] of pairs) {
    if (k === 'TargetName') out.push({ name: v, addresses: [] });
    else if (k === 'TargetAddress' && out.length) out[out.length - 1]!.addresses.push(v);
  }
  return out;
}
