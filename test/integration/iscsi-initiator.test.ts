/**
 * baton's iSCSI initiator against a real tgtd on 127.0.0.1 (started here, own ports and control
 * socket, killed in afterAll whatever happened): login, a pattern written and read back across
 * sessions, the LUN identity equal to what tgtadm set, CHAP accepted and refused, an ACL refusal,
 * SendTargets. Needs root (tgtd).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverTargets, iscsiLogin, IscsiLoginError } from '../../src/net/iscsi/session.js';
import { PrType, ScsiError, naaOf, parseUnitSerial } from '../../src/net/iscsi/scsi.js';
import { addChap, addTarget, startTgtd, type Tgtd } from '../helpers/tgtd.js';

const PORT = 13262;
const INITIATOR = 'iqn.2026-11.test.baton:integration';
const T1 = { tid: 1, iqn: 'iqn.2026-11.test.baton:open', lun: 1, scsiId: '5ba7000000000001', scsiSn: 'BATON-INT-0001' };
const T2 = { tid: 2, iqn: 'iqn.2026-11.test.baton:chap', lun: 3, scsiId: '5ba7000000000002', scsiSn: 'BATON-INT-0002' };
const T3 = { tid: 3, iqn: 'iqn.2026-11.test.baton:acl', lun: 1, scsiId: '5ba7000000000003', scsiSn: 'BATON-INT-0003' };
const T4 = { tid: 4, iqn: 'iqn.2026-11.test.baton:shared', lun: 1, scsiId: '5ba7000000000004', scsiSn: 'BATON-INT-0004' };
const CHAP = { user: 'baton-int', secret: 'integration-secret-1' };

let tgtd: Tgtd | undefined;
const at = () => ({ host: '127.0.0.1', port: PORT, initiatorName: INITIATOR, timeoutMs: 5000 });

function pattern(seed: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (i * 31 + seed + (i >> 9)) & 0xff;
  return b;
}

beforeAll(async () => {
  tgtd = await startTgtd({ port: PORT, controlPort: PORT });
  await addTarget(tgtd, { ...T1, backing: tgtd.backingFile('t1.img', 16) });
  await addTarget(tgtd, { ...T2, backing: tgtd.backingFile('t2.img', 8) });
  await addChap(tgtd, T2.tid, CHAP.user, CHAP.secret);
  // Only initiators from an address of the lab range may log in to T3; we come from 127.0.0.1.
  await addTarget(tgtd, { ...T3, backing: tgtd.backingFile('t3.img', 8), acl: '198.18.193.77' });
  await addTarget(tgtd, { ...T4, backing: tgtd.backingFile('t4.img', 8) });
});

afterAll(async () => {
  await tgtd?.stop();
});

describe('iSCSI initiator against tgtd on loopback', () => {
  it('writes a pattern and reads it back, in the same session and in a new one', async () => {
    const data = pattern(1, 64 * 1024);
    const t0 = performance.now();
    const s = await iscsiLogin({ ...at(), targetName: T1.iqn });
    const loginMs = performance.now() - t0;
    try {
      const cap = await s.readCapacity(T1.lun);
      expect(cap).toEqual({ blocks: 32768n, blockSize: 512, bytes: 16n * 1024n * 1024n });
      await s.write(T1.lun, 2048, data, cap.blockSize);
      expect((await s.read(T1.lun, 2048, data.length / 512, 512)).equals(data)).toBe(true);
    } finally {
      await s.logout();
    }
    const t1 = performance.now();
    const again = await iscsiLogin({ ...at(), targetName: T1.iqn });
    const r0 = performance.now();
    const back = await again.read(T1.lun, 2048, 8, 512);
    const readMs = performance.now() - r0;
    await again.logout();
    const sessionMs = performance.now() - t1;
    expect(back.equals(data.subarray(0, 4096))).toBe(true);
    // Figures for the note, not assertions (speed targets live in bench/).
    console.log(`iSCSI on loopback: login ${loginMs.toFixed(1)} ms; login+read 4 KiB+logout ${sessionMs.toFixed(1)} ms (read ${readMs.toFixed(1)} ms)`);
  });

  it('a 1 MiB write crosses several R2Ts (MaxBurstLength 256 KiB) and reads back whole', async () => {
    const big = pattern(7, 1024 * 1024);
    const s = await iscsiLogin({ ...at(), targetName: T1.iqn });
    try {
      await s.write(T1.lun, 8192, big, 512);
      expect((await s.read(T1.lun, 8192, big.length / 512, 512)).equals(big)).toBe(true);
    } finally {
      await s.logout();
    }
  });

  it('sees the identity tgtadm set: LUN numbers, VPD 0x80 serial, VPD 0x83 T10 id and NAA from scsi_id', async () => {
    const s = await iscsiLogin({ ...at(), targetName: T1.iqn });
    try {
      expect(await s.reportLuns()).toEqual([0, T1.lun]);
      expect(await s.unitSerial(T1.lun)).toBe(T1.scsiSn);
      const ids = await s.deviceIdentification(T1.lun);
      expect(ids.find((d) => d.typeName === 't10')?.text).toBe(T1.scsiId);
      // tgt's NAA IEEE Registered Extended designator: 6, then scsi_id's hex digits right-aligned in 128 bits.
      expect(naaOf(ids)).toBe(`6${T1.scsiId.padStart(31, '0')}`);
      const inq = await s.inquiry(T1.lun);
      expect(inq.deviceType).toBe(0);
      // The raw page, as a multipath layer compares it.
      expect(parseUnitSerial(await s.vpd(T1.lun, 0x80))).toBe(T1.scsiSn);
    } finally {
      await s.logout();
    }
  });

  it('CHAP: accepted with the right secret, refused with a wrong one and without credentials', async () => {
    const s = await iscsiLogin({ ...at(), targetName: T2.iqn, chap: CHAP });
    expect(await s.unitSerial(T2.lun)).toBe(T2.scsiSn);
    await s.logout();

    const wrong = await iscsiLogin({ ...at(), targetName: T2.iqn, chap: { ...CHAP, secret: 'wrong-secret-000' } }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(IscsiLoginError);
    expect((wrong as Error).message).toBe(`127.0.0.1:${PORT} (${T2.iqn}): login refused: authentication failed`);

    const none = await iscsiLogin({ ...at(), targetName: T2.iqn }).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(IscsiLoginError);
    expect((none as IscsiLoginError).authFailure).toBe(true);
  });

  it('an initiator address outside the ACL cannot log in; a target that does not exist is named', async () => {
    const acl = await iscsiLogin({ ...at(), targetName: T3.iqn }).catch((e: unknown) => e);
    expect(acl).toBeInstanceOf(IscsiLoginError);
    expect((acl as Error).message).toMatch(new RegExp(`^127\\.0\\.0\\.1:${PORT} \\(${T3.iqn.replace(/\./g, '\\.')}\\): login refused: `));
    const missing = await iscsiLogin({ ...at(), targetName: 'iqn.2026-11.test.baton:nowhere' }).catch((e: unknown) => e);
    expect((missing as Error).message).toBe(`127.0.0.1:${PORT} (iqn.2026-11.test.baton:nowhere): login refused: target not found`);
  });

  it('lists the targets through SendTargets', async () => {
    const targets = await discoverTargets(at());
    const names = targets.map((t) => t.name);
    expect(names).toContain(T1.iqn);
    expect(names).toContain(T2.iqn);
    expect(targets.find((t) => t.name === T1.iqn)?.addresses).toEqual([`127.0.0.1:${PORT},1`]);
  });

  it('a portal nobody listens on is a clear error, bounded', async () => {
    const err = await iscsiLogin({ ...at(), port: PORT + 7, targetName: T1.iqn, timeoutMs: 1000 }).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`iSCSI portal 127.0.0.1:${PORT + 7}: ECONNREFUSED`);
  });
});

describe('persistent reservations through the initiator (what SCSI fencing is made of)', () => {
  it('after node A preempts node B, B\'s write gets RESERVATION CONFLICT; B registering again restores its access', async () => {
    const KEY_A = 0xa1n;
    const KEY_B = 0xb2n;
    const a = await iscsiLogin({ ...at(), initiatorName: 'iqn.2026-11.test.baton:node-a', targetName: T4.iqn });
    const b = await iscsiLogin({ ...at(), initiatorName: 'iqn.2026-11.test.baton:node-b', targetName: T4.iqn });
    const block = Buffer.alloc(512, 0xbb);
    try {
      await a.prRegister(T4.lun, KEY_A);
      await b.prRegister(T4.lun, KEY_B);
      await a.prReserve(T4.lun, KEY_A, PrType.WE_REGISTRANTS_ONLY);
      expect((await a.prKeys(T4.lun)).sort()).toEqual([KEY_A, KEY_B]);
      expect((await b.prReservation(T4.lun)).holder).toEqual({ key: KEY_A, type: PrType.WE_REGISTRANTS_ONLY });
      await b.write(T4.lun, 10, block, 512); // a registrant may write

      await a.prPreempt(T4.lun, KEY_A, KEY_B, PrType.WE_REGISTRANTS_ONLY);
      expect(await a.prKeys(T4.lun)).toEqual([KEY_A]);
      const refused = await b.write(T4.lun, 11, block, 512).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ScsiError);
      expect((refused as ScsiError).reservationConflict).toBe(true);
      expect((refused as Error).message).toBe('WRITE(16) on LUN 1: RESERVATION CONFLICT');
      // Reading stays allowed under Write Exclusive - Registrants Only.
      expect((await b.read(T4.lun, 10, 1, 512)).equals(block)).toBe(true);

      await b.prRegister(T4.lun, KEY_B);
      await b.write(T4.lun, 11, block, 512);
      expect((await a.read(T4.lun, 11, 1, 512)).equals(block)).toBe(true);
    } finally {
      await a.prClear(T4.lun, KEY_A).catch(() => undefined);
      await a.logout().catch(() => a.close());
      await b.logout().catch(() => b.close());
    }
  });
});
