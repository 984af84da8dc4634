/**
 * The iscsi_target / iscsi_target_absent kinds against a real tgtd on 127.0.0.1 (its own portal
 * and control port; the steps reach it with `control_port`), on the local transport, checked
 * from the initiator's side with baton's own initiator: the target a step makes serves the
 * identity asked for; a removal disconnects initiators; its revert brings back the very same
 * disk (IQN, LUN numbers, VPD 0x80 and 0x83 bytes, the data). Needs root (tgtd).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeStepContext } from '../../src/engine/context.js';
import { connectionFor } from '../../src/inventory/connection.js';
import { TransportPool } from '../../src/transport/index.js';
import type { StepContext, StepKind } from '../../src/steps/contract.js';
import { iscsiTarget } from '../../src/steps/iscsi-target.js';
import { iscsiTargetAbsent } from '../../src/steps/iscsi-target-absent.js';
import { tidFor } from '../../src/steps/iscsi/tgt.js';
import { iscsiLogin } from '../../src/net/iscsi/session.js';
import { check } from '../../src/engine/check.js';
import { iscsiProbe } from '../../src/drill/iscsi-probe.js';
import { outageWindows, totalOutageMs } from '../../src/drill/outage.js';
import { checkIntegrity } from '../../src/drill/integrity.js';
import { defaultRegistry } from '../../src/steps/registry.js';
import { localInventory, playbook, step as stepSpec } from '../helpers/model.js';
import { startTgtd, type Tgtd } from '../helpers/tgtd.js';

const PORT = 13264;
const IQN = 'iqn.2026-11.test.baton:steps';
const inventory = localInventory(['local']);
let tgtd: Tgtd | undefined;
let pool: TransportPool | undefined;
let ctx: StepContext;
let backing: string;
const logs: string[] = [];

beforeAll(async () => {
  tgtd = await startTgtd({ port: PORT, controlPort: PORT });
  backing = tgtd.backingFile('lun1.img', 8);
  pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
  const transport = await pool.get('local');
  ctx = makeStepContext({ host: inventory.hosts.get('local')!, transport, inventory, pool, vars: {}, force: false, log: (m) => logs.push(m), timeoutMs: 30_000 });
});

afterAll(async () => {
  await pool?.closeAll();
  await tgtd?.stop();
});

/** What the engine does for one step: probe, apply unless satisfied, probe again and insist. */
async function step<A, O>(kind: StepKind<A, O>, args: A): Promise<{ before: O; after: O; changed: boolean }> {
  const before = await kind.probe(ctx, args);
  if (kind.satisfied(before, args)) return { before, after: before, changed: false };
  await kind.apply(ctx, args, before);
  const after = await kind.probe(ctx, args);
  expect(kind.satisfied(after, args)).toBe(true);
  return { before, after, changed: true };
}

const targetArgs = () => ({
  iqn: IQN,
  control_port: PORT,
  portal: `127.0.0.1:${PORT}`,
  acls: ['127.0.0.1'],
  luns: [{ lun: '1', backing_store: backing, scsi_id: '5ba7000000000042', scsi_sn: 'BATON-STEPS-42' }],
});
const login = () => iscsiLogin({ host: '127.0.0.1', port: PORT, initiatorName: 'iqn.2026-11.test.baton:steps-client', targetName: IQN, timeoutMs: 5000 });

describe('iscsi_target and iscsi_target_absent against tgtd', () => {
  let vpd80: Buffer;
  let vpd83: Buffer;
  const data = Buffer.alloc(8192, 0x5a);

  it('iscsi_target makes the target with the identity asked for, on the tid derived from the IQN; a second run changes nothing', async () => {
    const r = await step(iscsiTarget, targetArgs());
    expect(r.changed).toBe(true);
    expect(r.before.target).toBeNull();
    expect(r.after.target?.tid).toBe(tidFor(IQN));
    expect((await step(iscsiTarget, targetArgs())).changed).toBe(false);

    const s = await login();
    try {
      expect(await s.reportLuns()).toEqual([0, 1]);
      expect(await s.unitSerial(1)).toBe('BATON-STEPS-42');
      expect(await s.naa(1)).toBeDefined();
      vpd80 = await s.vpd(1, 0x80);
      vpd83 = await s.vpd(1, 0x83);
      await s.write(1, 100, data, 512);
    } finally {
      await s.logout();
    }
  });

  it('iscsi_target_absent removes it while an initiator is logged in, and the initiator loses its session', async () => {
    const s = await login();
    await s.testUnitReady(1);
    const r = await step(iscsiTargetAbsent, { iqn: IQN, control_port: PORT });
    expect(r.changed).toBe(true);
    expect(r.before.target?.sessions).toEqual(['iqn.2026-11.test.baton:steps-client@127.0.0.1']);
    expect(r.after.target).toBeNull();
    await expect(s.read(1, 100, 1, 512)).rejects.toThrow(/closed the iSCSI connection|no answer/);
    s.close();
    // tgtd serving no target at all closes a login without answering.
    await expect(login()).rejects.toThrow(/(closed the iSCSI connection|ECONNRESET) during login, without a login response/);

    // The revert puts back the very same disk: same LUNs, same VPD pages byte for byte, the data.
    await iscsiTargetAbsent.revert(ctx, { iqn: IQN, control_port: PORT }, r.before);
    const now = await iscsiTargetAbsent.probe(ctx, { iqn: IQN, control_port: PORT });
    expect(iscsiTargetAbsent.restored!(r.before, now, { iqn: IQN })).toBe(true);
    expect(now.target?.tid).toBe(r.before.target?.tid);
    const again = await login();
    try {
      expect(await again.reportLuns()).toEqual([0, 1]);
      expect((await again.vpd(1, 0x80)).equals(vpd80)).toBe(true);
      expect((await again.vpd(1, 0x83)).equals(vpd83)).toBe(true);
      expect((await again.read(1, 100, data.length / 512, 512)).equals(data)).toBe(true);
    } finally {
      await again.logout();
    }
  });

  it('iscsi_target changes a wrong serial back, and its revert puts the wrong one back (exactly what was there)', async () => {
    await tgtd!.tgtadm(['--lld', 'iscsi', '--mode', 'logicalunit', '--op', 'update', '--tid', String(tidFor(IQN)), '--lun', '1', '--params', 'scsi_sn=SOMETHING-ELSE']);
    const r = await step(iscsiTarget, targetArgs());
    expect(r.changed).toBe(true);
    expect(r.before.target?.luns[0]?.scsiSn).toBe('SOMETHING-ELSE');
    expect(r.after.target?.luns[0]?.scsiSn).toBe('BATON-STEPS-42');
    await iscsiTarget.revert(ctx, targetArgs(), r.before);
    const now = await iscsiTarget.probe(ctx, targetArgs());
    expect(now.target?.luns[0]?.scsiSn).toBe('SOMETHING-ELSE');
    expect(iscsiTarget.restored!(r.before, now, targetArgs())).toBe(true);
    await step(iscsiTarget, targetArgs());
  });

  it('the revert of a target that was not there removes it', async () => {
    const gone = await step(iscsiTargetAbsent, { iqn: IQN, control_port: PORT });
    const made = await step(iscsiTarget, targetArgs());
    expect(made.before.target).toBeNull();
    await iscsiTarget.revert(ctx, targetArgs(), made.before);
    expect((await iscsiTarget.probe(ctx, targetArgs())).target).toBeNull();
    expect(gone.changed).toBe(true);
  });

  it('a portal tgtd does not listen on yet is added (initiators reach the target there), and the revert removes it again', async () => {
    const portal = `127.0.0.2:${PORT}`;
    const args = { ...targetArgs(), portal, acls: ['ALL'] };
    const r = await step(iscsiTarget, args);
    expect(r.changed).toBe(true);
    expect(r.before.portals).not.toContain(portal);
    expect(r.after.portals).toContain(portal);
    const s = await iscsiLogin({ host: '127.0.0.2', port: PORT, initiatorName: 'iqn.2026-11.test.baton:steps-client', targetName: IQN, timeoutMs: 5000 });
    expect(await s.unitSerial(1)).toBe('BATON-STEPS-42');
    await s.logout();
    await iscsiTarget.revert(ctx, args, r.before);
    const now = await iscsiTarget.probe(ctx, args);
    expect(now.portals).toEqual(r.before.portals);
    expect(iscsiTarget.restored!(r.before, now, args)).toBe(true);
  });

  it('without tgtd the step says so, naming the control port', async () => {
    const a = { ...targetArgs(), control_port: PORT + 5 };
    const o = await iscsiTarget.probe(ctx, a);
    expect(o.running).toBe(false);
    await expect(iscsiTarget.apply(ctx, a, o)).rejects.toThrow(`on local: tgtd does not answer (tgtadm exit 107: no daemon on control port ${PORT + 5}); start tgtd on this node first`);
  });
});

describe('iscsi_lun check against tgtd', () => {
  async function lunCheck(args: Record<string, unknown>) {
    const pb = playbook([stepSpec('iscsi_lun', { address: '127.0.0.1', port: PORT, iqn: IQN, lun: 1, initiator_name: 'iqn.2026-11.test.baton:checker', ...args })], { hosts: 'local' });
    const [r] = await check({ playbook: pb, inventory, extraVars: {}, registry: defaultRegistry(), pool: pool! });
    return r!;
  }

  it('OK when the LUN has the identity asked for; CRITICAL naming the mismatch when it comes up with another serial', async () => {
    await step(iscsiTarget, targetArgs());
    const naa = `6${'5ba7000000000042'.padStart(31, '0')}`;
    const ok = await lunCheck({ scsi_sn: 'BATON-STEPS-42', scsi_id: '5ba7000000000042', naa });
    expect(ok.status, ok.message).toBe('OK');

    await tgtd!.tgtadm(['--lld', 'iscsi', '--mode', 'logicalunit', '--op', 'update', '--tid', String(tidFor(IQN)), '--lun', '1', '--params', 'scsi_sn=ANOTHER-DISK']);
    const bad = await lunCheck({ scsi_sn: 'BATON-STEPS-42', scsi_id: '5ba7000000000042', naa });
    expect(bad.status).toBe('CRITICAL');
    expect(bad.message).toContain(`127.0.0.1:${PORT} ${IQN} LUN 1: serial (VPD 0x80) is "ANOTHER-DISK", expected "BATON-STEPS-42" — initiators would see another disk`);

    const missing = await lunCheck({ lun: 4 });
    expect(missing.status).toBe('CRITICAL');
    expect(missing.message).toContain('the target reports LUNs 0, 1, not 4');
  });

  it('CRITICAL naming the login refusal when the target is not there', async () => {
    await step(iscsiTargetAbsent, { iqn: IQN, control_port: PORT });
    const r = await lunCheck({ scsi_sn: 'BATON-STEPS-42' });
    expect(r.status).toBe('CRITICAL');
    // tgtd now serves no target at all: it closes the login instead of answering "target not found".
    expect(r.message).toMatch(new RegExp(`${IQN.replace(/\./g, '\\.')} LUN 1: the login \\(security, AuthMethod=None\\): 127\\.0\\.0\\.1:${PORT}(?: closed the iSCSI connection|: connection error ECONNRESET) during login, without a login response`));
  });
});

describe('drill probe iscsi:// against tgtd', () => {
  it('reads the same bytes throughout; the time the target is gone is one outage window, and the reader logs in again by itself', async () => {
    await step(iscsiTarget, targetArgs());
    const probe = iscsiProbe({ host: '127.0.0.1', port: PORT, iqn: IQN, lun: 1, lba: 100, blocks: 8, intervalMs: 20, readTimeoutMs: 300 });
    probe.start();
    await new Promise((r) => setTimeout(r, 400));
    const gone = await step(iscsiTargetAbsent, { iqn: IQN, control_port: PORT });
    const outStart = Date.now();
    await new Promise((r) => setTimeout(r, 500));
    await iscsiTargetAbsent.revert(ctx, { iqn: IQN, control_port: PORT }, gone.before);
    const outEnd = Date.now();
    await new Promise((r) => setTimeout(r, 400));
    const samples = await probe.stop();

    const windows = outageWindows(samples);
    expect(windows.length, JSON.stringify(samples.filter((x) => !x.ok).slice(0, 3))).toBe(1);
    const outage = totalOutageMs(windows);
    expect(outage).toBeGreaterThanOrEqual(400);
    expect(outage).toBeLessThan(outEnd - outStart + 1000);
    expect(samples.filter((x) => x.ok).length).toBeGreaterThan(10);
    expect(checkIntegrity(samples, outStart, outEnd)).toMatchObject({ ok: true, mismatches: 0 });
    console.log(`iscsi:// probe on loopback: ${samples.length} reads, outage ${outage} ms while the target was gone ${outEnd - outStart} ms`);
  });
});
