/**
 * Re-captures the PDU fixtures of test/unit/iscsi-*.test.ts from a real exchange between
 * baton's initiator and a tgtd on loopback (root):
 *
 *   npx vite-node test/helpers/capture-iscsi-fixtures.ts
 *
 * Each fixture is text: `#` comment lines, then one PDU per line, `out HEX` (what the initiator
 * sent) or `in HEX` (what tgtd answered), in wire order. The ISID is fixed so the initiator's
 * bytes are reproducible; the CHAP challenge is tgtd's, recorded with the rest.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { iscsiLogin, discoverTargets } from '../../src/net/iscsi/session.js';
import { addChap, addTarget, startTgtd } from './tgtd.js';
import { FIXTURE, pattern } from '../unit/iscsi-fixture-data.js';

const outDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'unit', 'fixtures', 'iscsi');
mkdirSync(outDir, { recursive: true });

function recorder(title: string) {
  const lines = [`# ${title}`, `# captured from tgtd ${FIXTURE.tgtdVersion} on 127.0.0.1 by test/helpers/capture-iscsi-fixtures.ts`];
  return {
    trace: (d: 'out' | 'in', b: Buffer) => lines.push(`${d} ${b.toString('hex')}`),
    save: (name: string) => writeFileSync(join(outDir, name), `${lines.join('\n')}\n`),
  };
}

const t = await startTgtd({ port: 13269, controlPort: 13269 });
try {
  await addTarget(t, { tid: 1, iqn: FIXTURE.iqn, lun: 1, backing: t.backingFile('disk1.img', 8), scsiId: FIXTURE.scsiId, scsiSn: FIXTURE.scsiSn });
  await addTarget(t, { tid: 2, iqn: FIXTURE.chapIqn, lun: 1, backing: t.backingFile('disk2.img', 8), scsiId: 'c0ffee02', scsiSn: 'CHAP0002' });
  await addChap(t, 2, FIXTURE.chapUser, FIXTURE.chapSecret);
  const base = { host: t.host, port: t.port, initiatorName: FIXTURE.initiator, isid: FIXTURE.isid, timeoutMs: 5000 };

  {
    const r = recorder('a session without authentication: login, TUR, INQUIRY, VPD 0x80/0x83, READ CAPACITY(16), REPORT LUNS, WRITE(16) of 16 KiB (immediate data + R2T), READ(16), READ(16) out of range, logout');
    const s = await iscsiLogin({ ...base, targetName: FIXTURE.iqn, trace: r.trace });
    await s.testUnitReady(1);
    await s.inquiry(1);
    await s.vpd(1, 0x80);
    await s.vpd(1, 0x83);
    await s.readCapacity(1);
    await s.reportLuns();
    await s.write(1, FIXTURE.lba, pattern(), 512);
    await s.read(1, FIXTURE.lba, pattern().length / 512, 512);
    await s.read(1, 1n << 40n, 1, 512).catch(() => undefined);
    await s.logout();
    r.save('session.pdus');
  }
  {
    const r = recorder('CHAP (MD5) login accepted, then logout');
    const s = await iscsiLogin({ ...base, targetName: FIXTURE.chapIqn, chap: { user: FIXTURE.chapUser, secret: FIXTURE.chapSecret }, trace: r.trace });
    await s.logout();
    r.save('chap-ok.pdus');
  }
  {
    const r = recorder('CHAP login with a wrong secret: refused');
    await iscsiLogin({ ...base, targetName: FIXTURE.chapIqn, chap: { user: FIXTURE.chapUser, secret: 'not-the-secret' }, trace: r.trace }).then(
      () => {
        throw new Error('tgtd accepted a wrong CHAP secret');
      },
      () => undefined,
    );
    r.save('chap-refused.pdus');
  }
  {
    const r = recorder('discovery session: SendTargets=All, logout');
    await discoverTargets({ ...base, trace: r.trace });
    r.save('discovery.pdus');
  }
  console.log(`fixtures written to ${outDir}`);
} finally {
  await t.stop();
}
