/** What the captured iSCSI fixtures were made with (test/helpers/capture-iscsi-fixtures.ts). */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURE = {
  tgtdVersion: '1.0.85',
  initiator: 'iqn.2026-11.test.baton:initiator',
  iqn: 'iqn.2026-11.test.baton:fixture',
  chapIqn: 'iqn.2026-11.test.baton:chap',
  chapUser: 'baton',
  chapSecret: 'baton-chap-secret',
  scsiId: 'ba7012345678',
  scsiSn: 'BATON-SN-0001',
  isid: Buffer.from('80ba7c0c0001', 'hex'),
  lba: 8,
} as const;

/** 16 KiB that no two blocks share: bytes depend on the offset. */
export function pattern(): Buffer {
  const b = Buffer.alloc(16384);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + (i >> 9)) & 0xff;
  return b;
}

export interface CapturedPdu {
  dir: 'out' | 'in';
  bytes: Buffer;
}

export function loadCapture(name: string): CapturedPdu[] {
  const file = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'iscsi', name);
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [dir, hex] = l.split(' ');
      if ((dir !== 'out' && dir !== 'in') || !hex) throw new Error(`${name}: bad line "${l.slice(0, 40)}"`);
      return { dir, bytes: Buffer.from(hex, 'hex') };
    });
}
