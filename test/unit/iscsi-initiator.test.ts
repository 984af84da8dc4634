/**
 * baton's iSCSI initiator against PDUs captured from a real tgtd (test/unit/fixtures/iscsi,
 * made by test/helpers/capture-iscsi-fixtures.ts): the initiator must send the very bytes it sent
 * then, and read tgtd's answers into the identity, capacity and data tgtd served.
 */
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { IscsiLoginError, IscsiSession, parseSendTargets } from '../../src/net/iscsi/session.js';
import { PduReader, decodeText, encodePdu, newBhs, Op, splitPdus } from '../../src/net/iscsi/pdu.js';
import { PrOut, PrType, ScsiError, decodeLun, encodeLun, naaOf, parseDeviceIdentification, parsePrKeys, parsePrReservation, parseSense, parseUnitSerial, prOutCdb, prOutParams } from '../../src/net/iscsi/scsi.js';
import { chapResponse, decodeBinary } from '../../src/net/iscsi/chap.js';
import { FIXTURE, loadCapture, pattern, type CapturedPdu } from './iscsi-fixture-data.js';

/** Plays the target's side of a capture: checks each PDU the initiator writes, answers with the next ones. */
class Replay extends Duplex {
  private i = 0;
  readonly mismatches: string[] = [];
  /** `keepOpen`: stay connected after the script, for a test that answers by hand. */
  constructor(
    private readonly script: CapturedPdu[],
    private readonly keepOpen = false,
  ) {
    super();
    this.answer();
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error) => void): void {
    const want = this.script[this.i];
    if (!want || want.dir !== 'out') this.mismatches.push(`PDU ${this.i}: the initiator sent ${chunk.toString('hex').slice(0, 32)}… where the capture has none`);
    else {
      if (!want.bytes.equals(chunk)) this.mismatches.push(`PDU ${this.i}: sent ${chunk.toString('hex')}\n   captured ${want.bytes.toString('hex')}`);
      this.i++;
    }
    this.answer();
    cb();
  }
  private answer(): void {
    while (this.script[this.i]?.dir === 'in') this.push(this.script[this.i++]!.bytes);
    if (this.i >= this.script.length && !this.keepOpen) this.push(null);
  }
  get consumed(): boolean {
    return this.i >= this.script.length;
  }
}

const base = { portal: '127.0.0.1:3260', initiatorName: FIXTURE.initiator, isid: FIXTURE.isid, timeoutMs: 2000 };

describe('iSCSI initiator, replayed against captured tgtd PDUs', () => {
  it('logs in without authentication, reads the LUN identity and capacity, writes with immediate data + R2T, reads the pattern back, logs out', async () => {
    const wire = new Replay(loadCapture('session.pdus'));
    const s = await IscsiSession.login(wire, { ...base, targetName: FIXTURE.iqn });
    expect(s.negotiated).toMatchObject({ targetMaxRecv: 8192, initialR2T: true, immediateData: true, firstBurst: 65536 });

    await s.testUnitReady(1);
    // tgtd reports the new I_T nexus once; the initiator retried past it.
    expect(s.unitAttentions).toEqual([{ lun: 1, text: 'UNIT ATTENTION: power on, reset, or bus device reset occurred' }]);
    expect(await s.inquiry(1)).toEqual({ qualifier: 0, deviceType: 0, vendor: 'IET', product: 'VIRTUAL-DISK', revision: '0001' });
    const v80 = await s.vpd(1, 0x80);
    expect(parseUnitSerial(v80)).toBe(FIXTURE.scsiSn);
    const ids = parseDeviceIdentification(await s.vpd(1, 0x83));
    expect(ids.find((d) => d.typeName === 't10')?.text).toBe(FIXTURE.scsiId);
    // tgt makes the NAA IEEE Registered Extended designator (type 6) out of scsi_id's hex digits.
    expect(ids.filter((d) => d.typeName === 'naa').map((d) => d.hex)).toEqual(['3000000100000001', `6${'0'.repeat(19)}${FIXTURE.scsiId}`]);
    // The one a multipath WWID is made of: the Registered Extended one, not the tid-based one.
    expect(naaOf(ids)).toBe(`6${'0'.repeat(19)}${FIXTURE.scsiId}`);
    expect(await s.readCapacity(1)).toEqual({ blocks: 16384n, blockSize: 512, bytes: 8n * 1024n * 1024n });
    expect(await s.reportLuns()).toEqual([0, 1]);
    await s.write(1, FIXTURE.lba, pattern(), 512);
    expect((await s.read(1, FIXTURE.lba, pattern().length / 512, 512)).equals(pattern())).toBe(true);
    const err = await s.read(1, 1n << 40n, 1, 512).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScsiError);
    expect((err as Error).message).toBe('READ(16) on LUN 1: CHECK CONDITION, ILLEGAL REQUEST: logical block address out of range');
    await s.logout();
    expect(wire.mismatches).toEqual([]);
    expect(wire.consumed).toBe(true);
  });

  it('logs in with CHAP MD5: the response is MD5(id || secret || challenge) over what tgtd sent', async () => {
    const capture = loadCapture('chap-ok.pdus');
    const wire = new Replay(capture);
    const s = await IscsiSession.login(wire, { ...base, targetName: FIXTURE.chapIqn, chap: { user: FIXTURE.chapUser, secret: FIXTURE.chapSecret } });
    await s.logout();
    expect(wire.mismatches).toEqual([]);
    // The same check made by hand from the capture: tgtd's challenge, the initiator's answer.
    const keysOf = (p: CapturedPdu) => new Map(decodeText(splitPdus(p.bytes)[0]!.data));
    const challenge = capture.map(keysOf).find((k) => k.has('CHAP_C'))!;
    const answer = capture.map(keysOf).find((k) => k.has('CHAP_R'))!;
    const expected = chapResponse(Number(challenge.get('CHAP_I')), FIXTURE.chapSecret, decodeBinary(challenge.get('CHAP_C')!));
    expect(answer.get('CHAP_R')).toBe(`0x${expected.toString('hex')}`);
    expect(answer.get('CHAP_N')).toBe(FIXTURE.chapUser);
  });

  it('a wrong CHAP secret is refused with "authentication failed"', async () => {
    const wire = new Replay(loadCapture('chap-refused.pdus'));
    const err = await IscsiSession.login(wire, { ...base, targetName: FIXTURE.chapIqn, chap: { user: FIXTURE.chapUser, secret: 'not-the-secret' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IscsiLoginError);
    expect((err as IscsiLoginError).authFailure).toBe(true);
    expect((err as Error).message).toBe(`127.0.0.1:3260 (${FIXTURE.chapIqn}): login refused: authentication failed`);
    expect(wire.mismatches).toEqual([]);
  });

  it('lists targets with SendTargets in a discovery session', async () => {
    const wire = new Replay(loadCapture('discovery.pdus'));
    const s = await IscsiSession.login(wire, { ...base });
    const targets = await s.sendTargets();
    await s.logout();
    expect(targets.map((t) => t.name).sort()).toEqual([FIXTURE.chapIqn, FIXTURE.iqn].sort());
    for (const t of targets) expect(t.addresses).toEqual(['127.0.0.1:13269,1']);
    expect(wire.mismatches).toEqual([]);
  });

  it('reassembles PDUs however TCP cuts the stream', () => {
    const bytes = Buffer.concat(loadCapture('session.pdus').filter((p) => p.dir === 'in').map((p) => p.bytes));
    const whole = splitPdus(bytes);
    const r = new PduReader();
    const byteByByte = [];
    for (let i = 0; i < bytes.length; i += 7) byteByByte.push(...r.push(bytes.subarray(i, i + 7)));
    expect(byteByByte.length).toBe(whole.length);
    expect(byteByByte.map((p) => encodePdu(p.bhs, p.data).toString('hex'))).toEqual(whole.map((p) => encodePdu(p.bhs, p.data).toString('hex')));
    expect(r.pending).toBe(0);
  });

  it('a target that goes quiet is an error naming the portal and the exchange, within the bound', async () => {
    const silent = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
    const t0 = performance.now();
    const err = await IscsiSession.login(silent, { ...base, targetName: FIXTURE.iqn, timeoutMs: 150 }).catch((e: unknown) => e as Error);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect((err as Error).message).toBe(`127.0.0.1:3260 (${FIXTURE.iqn}): no answer to the login (security, AuthMethod=None) within 150 ms; connection dropped`);
  });

  it('RESERVATION CONFLICT is reported as such (a SCSI Response with status 0x18, from the captured READ)', async () => {
    const capture = loadCapture('session.pdus');
    // Cut the capture after login + TUR; answer the next command with a reservation conflict.
    const loginAndTur = capture.slice(0, capture.findIndex((p, i) => i > 0 && p.dir === 'out' && splitPdus(p.bytes)[0]!.bhs[32] === 0x12));
    const wire = new Replay(loginAndTur, true);
    const s = await IscsiSession.login(wire, { ...base, targetName: FIXTURE.iqn });
    await s.testUnitReady(1);
    const conflict = newBhs(Op.ScsiResponse, 0x80, 0);
    conflict[3] = 0x18;
    conflict.writeUInt32BE(4, 16); // the task tag the next command gets (login 1, TUR 2 and 3)
    const p = s.inquiry(1);
    wire.push(encodePdu(conflict));
    const err = await p.catch((e: unknown) => e as ScsiError);
    expect(err).toBeInstanceOf(ScsiError);
    expect((err as ScsiError).reservationConflict).toBe(true);
    expect((err as Error).message).toBe('INQUIRY on LUN 1: RESERVATION CONFLICT');
  });
});

describe('SCSI data in words', () => {
  it('decodes fixed and descriptor sense data', () => {
    const fixed = Buffer.alloc(18);
    fixed[0] = 0x70;
    fixed[2] = 0x02;
    fixed[12] = 0x04;
    fixed[13] = 0x03;
    expect(parseSense(fixed)?.text).toBe('NOT READY: logical unit not ready, manual intervention required');
    expect(parseSense(Buffer.from([0x72, 0x05, 0x24, 0x00, 0, 0, 0, 0]))?.text).toBe('ILLEGAL REQUEST: invalid field in CDB');
    expect(parseSense(Buffer.from([0x72, 0x06, 0x2a, 0x03, 0, 0, 0, 0]))?.text).toBe('UNIT ATTENTION: reservations preempted');
    expect(parseSense(Buffer.from([0x72, 0x0b, 0x99, 0x01]))?.text).toBe('ABORTED COMMAND: ASC 0x99 ASCQ 0x01');
  });

  it('encodes LUNs in peripheral and flat addressing and reads them back', () => {
    expect(encodeLun(1).toString('hex')).toBe('0001000000000000');
    expect(encodeLun(300).toString('hex')).toBe('412c000000000000');
    for (const n of [0, 1, 255, 256, 16383]) expect(decodeLun(encodeLun(n))).toBe(n);
    expect(() => encodeLun(16384)).toThrow(/out of range/);
  });

  it('groups SendTargets addresses under their target', () => {
    expect(parseSendTargets([['TargetName', 'a'], ['TargetAddress', '1:3260,1'], ['TargetAddress', '2:3260,1'], ['TargetName', 'b']])).toEqual([
      { name: 'a', addresses: ['1:3260,1', '2:3260,1'] },
      { name: 'b', addresses: [] },
    ]);
  });
});

describe('persistent reservation CDBs and answers', () => {
  it('PREEMPT carries the type in byte 2 and a 24-byte parameter list with both keys, no APTPL', () => {
    expect(prOutCdb(PrOut.PREEMPT, PrType.WE_REGISTRANTS_ONLY).toString('hex')).toBe('5f040500000000001800');
    expect(prOutParams(0xa1n, 0xb2n).toString('hex')).toBe(`${'00000000000000a1'}${'00000000000000b2'}${'00'.repeat(8)}`);
  });

  it('reads keys and the reservation holder', () => {
    const keys = Buffer.from(`00000007${'00000010'}${'00000000000000a1'}${'00000000000000b2'}`, 'hex');
    expect(parsePrKeys(keys)).toEqual({ generation: 7, keys: [0xa1n, 0xb2n] });
    const held = Buffer.from(`00000007${'00000010'}${'00000000000000a1'}${'00000000'}00${'05'}0000`, 'hex');
    expect(parsePrReservation(held)).toEqual({ generation: 7, holder: { key: 0xa1n, type: 5 } });
    expect(parsePrReservation(Buffer.from('0000000700000000', 'hex'))).toEqual({ generation: 7, holder: null });
  });
});
