/**
 * iscsi_target / iscsi_target_absent on the namespace lab, driven as a user drives them: small
 * playbooks run by the real CLI (dist/) over real SSH against tgtd in each node, and checked from
 * where an initiator looks — the lab's client namespace logging in through the VIP with baton's
 * own iSCSI initiator (run there with `ip netns exec`): the IQN, the LUN numbers, the VPD 0x80
 * and 0x83 pages byte for byte, and a pattern written before a move read back after it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { batonJson, type JsonRun } from '../helpers/lab-runs.js';
import { iscsiClient, type ClientView } from '../helpers/iscsi-client.js';
import { runRaw } from '../../src/lab/exec.js';
import { parseTgtadmTargets } from '../../src/facts/iscsi.js';
import type { DrillReport } from '../../src/drill/report.js';

const NAME = 'iscsi';
const SUBNET = '198.18.193.0/24';
const CLI = path.resolve('dist/cli/main.js');
const IQN = 'iqn.2026-11.test.baton:lab-g1';
const SCSI_ID = '5ba7019300000001';
const SCSI_SN = 'BATON-LAB-0001';
const INITIATOR = 'iqn.2026-11.test.baton:lab-c1';

let lab: Lab | undefined;
let work = '';
const L = (): Lab => {
  if (!lab) throw new Error('the lab did not come up (see beforeAll)');
  return lab;
};
const disk = () => L().disks[0]!;
const vip = () => L().vip;

type CliRun = JsonRun;
const baton = (args: string[]): Promise<CliRun> => batonJson(args, path.join(work, 'state'));

let pbCount = 0;
function playbook(plays: Array<{ hosts: string; steps: unknown[] }>): string {
  const file = path.join(work, `pb${++pbCount}.yml`);
  writeFileSync(file, JSON.stringify(plays, null, 2));
  return file;
}

const run = (pb: string, ...extra: string[]) => baton(['run', '--yes', '-i', L().inventoryPath, ...extra, pb]);
const changedOn = (r: CliRun, host: string): number => r.summary?.recap?.[host]?.changed ?? -1;
const totalChanged = (r: CliRun): number => Object.values<any>(r.summary?.recap ?? {}).reduce((n, h) => n + (h.changed ?? 0), 0);
const errors = (r: CliRun) => r.events.filter((e) => e.type === 'step-end' && e.status === 'failed').map((e) => String(e.error)).join('\n') + r.stderr;
const runId = (r: CliRun): string => r.summary?.runId ?? '';

const vipArgs = () => ({ address: vip(), prefix: 24, interface: 'eth0' });
const target = () => ({ iscsi_target: { iqn: IQN, portal: `${vip()}:3260`, acls: [SUBNET], luns: [{ lun: 1, backing_image: disk(), scsi_id: SCSI_ID, scsi_sn: SCSI_SN }] } });
const takeSteps = () => [
  { import_volume: { provider: 'loop', image: disk() } },
  target(),
  { raise_vip: vipArgs(), register: 'vip_raised' },
  { garp: { address: vip(), interface: 'eth0' }, when: 'vip_raised is changed' },
];
const releaseSteps = () => [{ lower_vip: vipArgs() }, { iscsi_target_absent: { iqn: IQN } }, { deport_volume: { provider: 'loop', image: disk() } }];
const move = (from: string, to: string) => playbook([{ hosts: from, steps: releaseSteps() }, { hosts: to, steps: takeSteps() }]);

let client: ReturnType<typeof iscsiClient> | undefined;
/** The client's view through the VIP (test/helpers/iscsi-client.ts), optionally writing a pattern first. */
const fromClient = (write?: Buffer): Promise<ClientView> => {
  if (!client) throw new Error('the client script was not written (see beforeAll)');
  return client({ vip: vip(), iqn: IQN, lun: 1, write });
};

async function targetsOn(node: string) {
  return parseTgtadmTargets(await L().sshOk(node, ['tgtadm', '--lld', 'iscsi', '--mode', 'target', '--op', 'show']));
}

async function vipHolders(): Promise<string[]> {
  const out: string[] = [];
  for (const n of ['n1', 'n2']) if ((await L().sshOk(n, ['ip', '-o', 'addr', 'show', 'dev', 'eth0'])).includes(` ${vip()}/`)) out.push(n);
  return out;
}

async function tgtdAnswersOn(node: string): Promise<void> {
  // The lab's nodes start tgtd at boot; it answers tgtadm once its control socket (in the
  // node's private /run) is up.
  for (let i = 0; i < 50; i++) {
    if ((await L().sshExec(node, ['tgtadm', '--lld', 'iscsi', '--mode', 'sys', '--op', 'show'])).code === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`tgtd on ${node} does not answer tgtadm after 5 s`);
}

beforeAll(async () => {
  requireRoot();
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-iscsi-steps-'));
  // Built by `npm test` before any suite runs. Never rebuilt here: tsc would rewrite dist/ under
  // the other suites' running commands (and put its own entry over the bundled one).
  if (!existsSync(path.resolve('dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
  client = iscsiClient(L, work, INITIATOR);
  lab = await startLab({ name: NAME, subnet: SUBNET, nodes: 2, clients: 1, disks: 1 });
  await Promise.all([tgtdAnswersOn('n1'), tgtdAnswersOn('n2')]);
});

afterAll(async () => {
  if (lab) await lab.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('an iSCSI target that moves with its identity (tgt, loop volume, VIP)', () => {
  const pattern = randomBytes(4096);
  let before: ClientView;
  let moveRun = '';

  it('starts on n1: the client logs in through the VIP, sees LUN 1 with the serial and NAA asked for, writes a pattern; a re-run changes nothing', async () => {
    const r = await run(playbook([{ hosts: 'n1', steps: takeSteps() }]));
    expect(r.code, errors(r)).toBe(0);
    expect(changedOn(r, 'n1')).toBe(4);
    expect((await targetsOn('n1')).map((t) => t.iqn)).toEqual([IQN]);
    expect(await targetsOn('n2')).toEqual([]);

    before = await fromClient(pattern);
    expect(before.error).toBeUndefined();
    expect(before.targets).toEqual([{ name: IQN, addresses: expect.arrayContaining([expect.stringMatching(new RegExp(`^${vip().replace(/\./g, '\\.')}:3260,`))]) }]);
    expect(before.luns).toEqual([0, 1]);
    expect(before.serial).toBe(SCSI_SN);
    expect(before.naa).toBeDefined();
    expect(before.vpd83).toContain(Buffer.from(SCSI_ID).toString('hex'));
    expect(before.read).toBe(pattern.toString('hex'));

    const again = await run(playbook([{ hosts: 'n1', steps: takeSteps() }]));
    expect(again.code, errors(again)).toBe(0);
    expect(totalChanged(again)).toBe(0);
  });

  it('a takeover on n2 while n1 still serves the IQN is refused, naming n1; nothing is made on n2', async () => {
    const r = await run(playbook([{ hosts: 'n2', steps: [target()] }]));
    expect(r.code).not.toBe(0);
    expect(errors(r)).toMatch(new RegExp(`will not iscsi_target .*n1 serves ${IQN.replace(/\./g, '\\.')}`));
    expect(await targetsOn('n2')).toEqual([]);
    expect((await targetsOn('n1')).map((t) => t.iqn)).toEqual([IQN]);
  });

  it('moves to n2: same IQN, LUN numbers, VPD 0x80 and 0x83 bytes; the pattern reads back; a re-run changes nothing', async () => {
    const r = await run(move('n1', 'n2'));
    expect(r.code, errors(r)).toBe(0);
    moveRun = runId(r);
    expect(moveRun).not.toBe('');
    expect(await targetsOn('n1')).toEqual([]);
    expect((await targetsOn('n2')).map((t) => t.iqn)).toEqual([IQN]);
    expect(await vipHolders()).toEqual(['n2']);

    const after = await fromClient();
    expect(after.error).toBeUndefined();
    expect(after.targets?.map((t) => t.name)).toEqual([IQN]);
    expect(after.luns).toEqual(before.luns);
    expect(after.vpd80).toBe(before.vpd80);
    expect(after.vpd83).toBe(before.vpd83);
    expect(after.read).toBe(pattern.toString('hex'));
    console.log(`iSCSI move n1 → n2: run ${r.ms} ms; client login ${after.loginMs} ms, read 4 KiB ${after.readMs} ms`);

    const again = await run(move('n1', 'n2'));
    expect(again.code, errors(again)).toBe(0);
    expect(totalChanged(again)).toBe(0);
  });

  it('iscsi_lun check through the VIP: OK as moved; CRITICAL naming the serial when the LUN comes up with another one', async () => {
    const naa = `6${SCSI_ID.padStart(31, '0')}`;
    const pb = playbook([{ hosts: 'nodes', steps: [{ iscsi_lun: { address: vip(), iqn: IQN, lun: 1, scsi_sn: SCSI_SN, scsi_id: SCSI_ID, naa }, run_once: true }] }]);
    const checkJson = async () => {
      const r = await runRaw(['node', CLI, 'check', '-i', L().inventoryPath, pb, '--json'], { timeoutMs: 60_000, env: { ...process.env, BATON_STATE_DIR: path.join(work, 'state') } });
      return { code: r.code, json: JSON.parse(r.stdout) as { status: string; checks: Array<{ kind: string; status: string; message: string }> }, raw: r.stdout + r.stderr };
    };
    const ok = await checkJson();
    expect(ok.code, ok.raw).toBe(0);
    expect(ok.json.status).toBe('OK');

    const tid = String((await targetsOn('n2'))[0]!.tid);
    const setSn = (sn: string) => L().sshOk('n2', ['tgtadm', '--lld', 'iscsi', '--mode', 'logicalunit', '--op', 'update', '--tid', tid, '--lun', '1', '--params', `scsi_sn=${sn}`]);
    await setSn('ANOTHER-DISK');
    try {
      const bad = await checkJson();
      expect(bad.code, bad.raw).toBe(2);
      expect(bad.json.status).toBe('CRITICAL');
      expect(bad.json.checks.find((c) => c.kind === 'iscsi_lun')?.message).toContain(`serial (VPD 0x80) is "ANOTHER-DISK", expected "${SCSI_SN}"`);
    } finally {
      await setSn(SCSI_SN);
    }
  });

  it('undo of the move puts the target back on n1 with the same identity; the pattern reads back through the VIP', async () => {
    const u = await baton(['undo', moveRun, '--yes', '-i', L().inventoryPath]);
    const reverts = JSON.stringify(u.events.filter((e) => e.type === 'revert-end'));
    expect(u.code, errors(u) + reverts).toBe(0);
    expect(await targetsOn('n2')).toEqual([]);
    expect((await targetsOn('n1')).map((t) => t.iqn)).toEqual([IQN]);
    expect(await vipHolders()).toEqual(['n1']);
    const back = await fromClient();
    expect(back.error).toBeUndefined();
    expect(back.luns).toEqual(before.luns);
    expect(back.vpd80).toBe(before.vpd80);
    expect(back.vpd83).toBe(before.vpd83);
    expect(back.read).toBe(pattern.toString('hex'));
  });

  it('baton drill n1 → n2 and back with an iscsi:// probe from the client: passes, every window closed, the same bytes throughout', async () => {
    const probe = `iscsi://${vip()}/${IQN}/1?lba=0&blocks=8`;
    const r = await runRaw(
      ['node', CLI, 'drill', move('n1', 'n2'), '-i', L().inventoryPath, '--then', move('n2', 'n1'), '--probe', probe, '--probe-from', 'c1', '--max-outage', '60s', '--json'],
      { timeoutMs: 180_000, env: { ...process.env, BATON_STATE_DIR: path.join(work, 'state') } },
    );
    expect(r.code, r.stdout.slice(-3000) + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as DrillReport;
    expect(report.verdict).toBe('pass');
    const [p] = report.probes;
    expect(p!.kind).toBe('iscsi');
    expect(p!.from).toBe('c1');
    expect(p!.integrity).toMatchObject({ ok: true, mismatches: 0 });
    expect(p!.windows.every((w) => !w.open)).toBe(true);
    // Each move takes the target away for a moment: a client reading every 50 ms notices.
    expect(p!.windows.length).toBeGreaterThanOrEqual(1);
    console.log(`[drill] iscsi: ${p!.reads} reads, ${p!.windows.length} window(s), total ${p!.totalOutageMs} ms (${p!.windows.map((w) => w.ms).join(', ')}); drill ${report.endedAt - report.startedAt} ms`);
    expect((await targetsOn('n1')).map((t) => t.iqn)).toEqual([IQN]);
  });
});
