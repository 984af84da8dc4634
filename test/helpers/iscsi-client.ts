/**
 * An iSCSI initiator in a lab client's network namespace: baton's own initiator (dist/), run with
 * `ip netns exec` as the drill's iSCSI agent is, logging in through a VIP as a client host would.
 * One login per call: discovery, REPORT LUNS, INQUIRY VPD 0x80 and 0x83 (raw bytes, hex), then an
 * optional write and a read of blocks near the end of the LUN (clear of anything at its start).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Lab } from './lab.js';

export interface ClientView {
  error?: string;
  targets?: Array<{ name: string; addresses: string[] }>;
  luns?: number[];
  vpd80?: string;
  vpd83?: string;
  serial?: string;
  naa?: string;
  read?: string;
  /** How long the login and the read took, as the client saw them (printed by tests, never asserted). */
  loginMs?: number;
  readMs?: number;
}

const SCRIPT = (sessionModule: string) => `
import { discoverTargets, iscsiLogin } from ${JSON.stringify(sessionModule)};
const req = JSON.parse(process.argv[2]);
const out = {};
try {
  const base = { host: req.host, initiatorName: req.initiator, timeoutMs: 5000 };
  out.targets = await discoverTargets(base);
  const t0 = performance.now();
  const s = await iscsiLogin({ ...base, targetName: req.iqn });
  out.loginMs = Math.round((performance.now() - t0) * 10) / 10;
  try {
    out.luns = await s.reportLuns();
    const cap = await s.readCapacity(req.lun);
    out.vpd80 = (await s.vpd(req.lun, 0x80)).toString('hex');
    out.vpd83 = (await s.vpd(req.lun, 0x83)).toString('hex');
    out.serial = await s.unitSerial(req.lun);
    out.naa = await s.naa(req.lun);
    const lba = cap.blocks - 64n;
    if (req.write) await s.write(req.lun, lba, Buffer.from(req.write, 'hex'), cap.blockSize);
    const r0 = performance.now();
    out.read = (await s.read(req.lun, lba, req.blocks, cap.blockSize)).toString('hex');
    out.readMs = Math.round((performance.now() - r0) * 10) / 10;
  } finally {
    await s.logout();
  }
} catch (e) {
  out.error = e.message;
}
console.log(JSON.stringify(out));
`;

/** Writes the client script into `work` (dist/ must be built); returns a function that runs it from a client. */
export function iscsiClient(lab: () => Lab, work: string, initiator: string) {
  const script = path.join(work, 'iscsi-client.mjs');
  writeFileSync(script, SCRIPT(pathToFileURL(path.resolve('dist/net/iscsi/session.js')).href));
  return async (t: { vip: string; iqn: string; lun: number; write?: Buffer; blocks?: number }): Promise<ClientView> => {
    const req = { host: t.vip, initiator, iqn: t.iqn, lun: t.lun, blocks: t.blocks ?? 8, ...(t.write ? { write: t.write.toString('hex') } : {}) };
    const r = await lab().clientExec('c1', ['node', script, JSON.stringify(req)], { timeoutMs: 60_000 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (!line.startsWith('{')) throw new Error(`the client's initiator printed no result (exit ${r.code}): ${r.stdout}${r.stderr}`);
    return JSON.parse(line) as ClientView;
  };
}
