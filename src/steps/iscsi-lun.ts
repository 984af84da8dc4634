import { checkKind, type SeverityArg } from './check/common.js';
import { ISCSI_PORT, iscsiLogin } from '../net/iscsi/session.js';
import { naaOf, type Designator } from '../net/iscsi/scsi.js';

/**
 * `iscsi_lun`: an initiator logging in through `address` (the VIP) finds LUN `lun` of target
 * `iqn`, with the identity the inventory says (unit serial, VPD 0x80; T10 designator `scsi_id`
 * and NAA, VPD 0x83), and can read its first block. Made from baton's own process on the
 * controller with baton's initiator, as `nfs_null` is: the controller crosses the network to
 * whichever node answers for the VIP, as a client does.
 *
 *   - iscsi_lun: { address: "{{ vip }}", iqn: "{{ iqn }}", lun: 1, scsi_sn: "{{ scsi_sn }}", scsi_id: "{{ scsi_id }}" }
 */
export interface IscsiLunArgs extends SeverityArg {
  address: string;
  port?: number;
  iqn: string;
  lun: number | string;
  /** Expected unit serial number (VPD 0x80, padding ignored). */
  scsi_sn?: string;
  /** Expected T10 vendor designator text (VPD 0x83; what tgt's scsi_id is). */
  scsi_id?: string;
  /** Expected NAA designator, hex (the WWID without its leading 3). */
  naa?: string;
  initiator_name?: string;
  chap?: { user: string; secret: string };
  /** Seconds for each exchange (default 5). */
  timeout?: number;
}

export interface IscsiLunObserved {
  /** What went wrong before the identity could be read (connection, login, a SCSI error). */
  error: string | null;
  luns: number[];
  serial: string | null;
  t10: string | null;
  naa: string | null;
  /** Login to first block read, ms. */
  ms: number;
}

const DEFAULT_INITIATOR = 'iqn.2026-11.dev.baton:check';
const where = (a: IscsiLunArgs) => `${a.address}:${a.port ?? ISCSI_PORT} ${a.iqn} LUN ${a.lun}`;
const lunOf = (a: IscsiLunArgs) => (typeof a.lun === 'number' ? a.lun : Number(a.lun));

export function lunProblem(seen: IscsiLunObserved, a: IscsiLunArgs): string | undefined {
  if (seen.error) return `${where(a)}: ${seen.error}`;
  const lun = lunOf(a);
  if (!seen.luns.includes(lun)) return `${where(a)}: the target reports LUNs ${seen.luns.join(', ') || '(none)'}, not ${lun}`;
  const wrong: string[] = [];
  if (a.scsi_sn !== undefined && seen.serial !== a.scsi_sn) wrong.push(`serial (VPD 0x80) is "${seen.serial}", expected "${a.scsi_sn}"`);
  if (a.scsi_id !== undefined && seen.t10 !== a.scsi_id) wrong.push(`scsi_id (VPD 0x83 T10) is "${seen.t10}", expected "${a.scsi_id}"`);
  if (a.naa !== undefined && seen.naa?.toLowerCase() !== a.naa.toLowerCase().replace(/^0x/, '')) wrong.push(`NAA (VPD 0x83) is ${seen.naa ?? '(none)'}, expected ${a.naa}`);
  return wrong.length ? `${where(a)}: ${wrong.join('; ')} — initiators would see another disk` : undefined;
}

export const iscsiLun = checkKind<IscsiLunArgs, IscsiLunObserved>({
  fromController: true,
  kind: 'iscsi_lun',
  secretArgs: ['chap.secret'],

  async probe(_ctx, a) {
    const t0 = performance.now();
    const seen: IscsiLunObserved = { error: null, luns: [], serial: null, t10: null, naa: null, ms: 0 };
    const lun = lunOf(a);
    try {
      const s = await iscsiLogin({
        host: a.address,
        port: a.port ?? ISCSI_PORT,
        initiatorName: a.initiator_name ?? DEFAULT_INITIATOR,
        targetName: a.iqn,
        timeoutMs: (a.timeout ?? 5) * 1000,
        ...(a.chap ? { chap: a.chap } : {}),
      });
      try {
        seen.luns = await s.reportLuns();
        if (seen.luns.includes(lun)) {
          seen.serial = await s.unitSerial(lun);
          const ids: Designator[] = await s.deviceIdentification(lun);
          seen.t10 = ids.find((d) => d.typeName === 't10')?.text ?? null;
          seen.naa = naaOf(ids) ?? null;
          const cap = await s.readCapacity(lun);
          await s.read(lun, 0, 1, cap.blockSize);
        }
        await s.logout();
      } finally {
        s.close();
      }
    } catch (e) {
      seen.error = (e as Error).message;
    }
    seen.ms = Math.round((performance.now() - t0) * 10) / 10;
    return seen;
  },

  problem: lunProblem,

  healthy: (seen, a) => `${where(a)}: serial "${seen.serial}", NAA ${seen.naa ?? '(none)'}, first block read; ${seen.ms} ms`,

  describe(a) {
    return { summary: `iSCSI ${where(a)} logs in from the controller with the expected identity`, commands: [] };
  },
});
