/**
 * SCSI reservation fencing against a real tgtd: `lab up --san` serves one shared LUN from a
 * SAN namespace; both nodes register their keys through their own sessions (unfence, provider
 * scsi-pr); n1 fences n2 with PREEMPT; n2's write through its own session (its I_T nexus) gets
 * RESERVATION CONFLICT while n1's passes; unfencing n2 gives it its writes back. Driven as a
 * user drives it: playbooks, the lab's inventory and the built CLI; the writes are issued on
 * the nodes over SSH, through the node's resident session.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import yaml from 'js-yaml';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { CLI, labRuns } from '../helpers/lab-runs.js';
import { runRaw } from '../../src/lab/exec.js';
import { sanOf } from '../../src/lab/san.js';
import type { PrAnswer, PrRequest } from '../../src/steps/fence/scsi-pr-protocol.js';
import { initiatorOf, prKeyOf } from '../../src/steps/fence/scsi-pr.js';
import { keyHex } from '../../src/steps/fence/scsi-pr-protocol.js';

/** The built agent, as baton runs it on the nodes (the same path: the lab's nodes share this filesystem). */
/** The agent as the lab's inventory names it (a copy the nodes see: lab up --san). */
const agentCommand = (): string[] => {
  const inv = yaml.load(readFileSync(lab.inventoryPath, 'utf8')) as { all: { vars: { scsi_pr_agent_command: string[] } } };
  return inv.all.vars.scsi_pr_agent_command;
};
let lab: Lab;
let work: string;
const runs = labRuns(
  () => lab,
  () => work,
);

/** The same LUN the inventory names, as node `node` speaks to it. */
function lunAs(node: string) {
  const s = sanOf(lab.plan);
  return { portal: s.portal, iqn: s.iqn, lun: s.lun, initiator: initiatorOf(node) };
}

/** Ask baton's PR agent on a node (over SSH, so in the node's namespaces) and read its answer. */
type Op<T> = T extends unknown ? Omit<T, 'portal' | 'iqn' | 'lun' | 'initiator'> : never;
async function onNode(node: string, q: Op<PrRequest>): Promise<PrAnswer> {
  const argv = [...agentCommand(), JSON.stringify({ ...lunAs(node), ...q })];
  const r = await lab.sshExec(node, argv, { timeoutMs: 20_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (!line.startsWith('{')) throw new Error(`PR agent on ${node} exited ${r.code} without an answer: ${r.stderr}`);
  return JSON.parse(line) as PrAnswer;
}

const block = (byte: number) => Buffer.alloc(512, byte).toString('base64');
const writeFrom = (node: string, lba: number, byte: number) => onNode(node, { op: 'write', lba, data: block(byte) });

const registerAll = `- name: every node registers its key on the shared LUN
  hosts: n1,n2
  steps:
    - unfence: { target: "{{ inventory_hostname }}", provider: scsi-pr }
`;
const fenceN2 = `- name: n1 fences n2 off the shared LUN
  hosts: n1
  steps:
    - fence: { target: n2, provider: scsi-pr }
`;
const unfenceN2 = `- name: n2 gets its access back
  hosts: n1
  steps:
    - unfence: { target: n2, provider: scsi-pr }
`;

beforeAll(async () => {
  requireRoot();
  if (!existsSync(CLI)) throw new Error('dist/ is missing: build with `npm run build` before the lab tests');
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-scsipr-'));
  lab = await startLab({ name: 'scsipr', subnet: '198.18.201.0/24', nodes: 2, clients: 0, disks: 0, san: true });
}, 60_000);

afterAll(async () => {
  const report = await lab?.down();
  if (work) rmSync(work, { recursive: true, force: true });
  // The SAN's tgtd and its namespace went with the lab.
  expect(report?.problems ?? []).toEqual([]);
  expect((await runRaw(['ip', 'netns', 'list'])).stdout).not.toContain('baton-scsipr-');
});

describe('scsi-pr fencing on a SAN LUN (lab up --san)', () => {
  it('`baton lab status` shows the SAN: its address, tgtd running, the LUN and portal the inventory names', async () => {
    const s = sanOf(lab.plan);
    const text = execFileSync(process.execPath, [CLI, 'lab', 'status', '--name', 'scsipr'], { encoding: 'utf8' });
    expect(text).toContain(`  san: ${s.address}/24 (netns ${s.netns}), tgtd running: ${s.iqn} LUN 1 at ${s.portal}`);
    const doc = JSON.parse(execFileSync(process.execPath, [CLI, 'lab', 'status', '--name', 'scsipr', '--json'], { encoding: 'utf8' })) as { san?: { present: boolean; tgtd: boolean; portal: string } };
    expect(doc.san).toMatchObject({ present: true, tgtd: true, portal: s.portal });
  });

  it('the fenced node\'s write gets RESERVATION CONFLICT while the survivor\'s passes; unfence restores its access', async () => {
    const k1 = keyHex(prKeyOf('n1'));
    const k2 = keyHex(prKeyOf('n2'));

    // Before anyone registered, nobody holds the LUN.
    const before = await onNode('n1', { op: 'keys' });
    expect(before).toMatchObject({ ok: true, keys: [], reservation: null });

    const reg = await runs.runPb(registerAll);
    expect(reg.code, reg.out).toBe(0);
    const registered = await onNode('n1', { op: 'keys' });
    expect([...registered.keys!].sort()).toEqual([k1, k2].sort());
    // One registrants-only reservation (type 5) turns registration into write access.
    expect(registered.reservation?.type).toBe(5);
    expect(await writeFrom('n2', 8, 0x22)).toMatchObject({ ok: true });

    // A second run changes nothing.
    const again = await runs.runPb(registerAll);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/n1\s+ok=1\s+changed=0/);
    expect(again.out).toMatch(/n2\s+ok=1\s+changed=0/);

    const fenced = await runs.runPb(fenceN2);
    expect(fenced.code, fenced.out).toBe(0);
    expect(fenced.out).toMatch(/n1\s+ok=0\s+changed=1\s+failed=0/);
    const after = await onNode('n1', { op: 'keys' });
    expect(after.keys).toEqual([k1]);

    const refused = await writeFrom('n2', 9, 0x99);
    expect(refused).toMatchObject({ ok: false, status: 'RESERVATION CONFLICT', nexus: 'resident' });
    expect(refused.error).toBe('WRITE(16) on LUN 1: RESERVATION CONFLICT');
    expect(await writeFrom('n1', 9, 0x11)).toMatchObject({ ok: true });
    const read = await onNode('n1', { op: 'read', lba: 9, blocks: 1 });
    expect(Buffer.from(read.data!, 'base64').equals(Buffer.alloc(512, 0x11))).toBe(true);

    // Fencing again finds n2 fenced: nothing runs.
    const refence = await runs.runPb(fenceN2);
    expect(refence.code, refence.out).toBe(0);
    expect(refence.out).toMatch(/n1\s+ok=1\s+changed=0/);

    const unfenced = await runs.runPb(unfenceN2);
    expect(unfenced.code, unfenced.out).toBe(0);
    expect(unfenced.out).toMatch(/n1\s+ok=0\s+changed=1\s+failed=0/);
    expect([...(await onNode('n1', { op: 'keys' })).keys!].sort()).toEqual([k1, k2].sort());
    expect(await writeFrom('n2', 9, 0x23)).toMatchObject({ ok: true });
    const back = await onNode('n1', { op: 'read', lba: 9, blocks: 1 });
    expect(Buffer.from(back.data!, 'base64').equals(Buffer.alloc(512, 0x23))).toBe(true);
  }, 120_000);

  it('a node that is itself fenced cannot fence the other: the fence fails and says why', async () => {
    const fenceN1FromN2 = `- name: n2 tries to fence n1
  hosts: n2
  steps:
    - fence: { target: n1, provider: scsi-pr }
`;
    expect((await runs.runPb(registerAll)).code).toBe(0);
    expect((await runs.runPb(fenceN2)).code).toBe(0);
    const r = await runs.runPb(fenceN1FromN2);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain(`n2's own key ${keyHex(prKeyOf('n2'))} is not registered through its session`);
    // n1 kept its registration and its writes.
    expect((await onNode('n1', { op: 'keys' })).keys).toEqual([keyHex(prKeyOf('n1'))]);
    expect(await writeFrom('n1', 10, 0x12)).toMatchObject({ ok: true });
  }, 120_000);

  it('a node that was powered off is fenced while down, and after a reboot must register again', async () => {
    const k1 = keyHex(prKeyOf('n1'));
    const k2 = keyHex(prKeyOf('n2'));
    expect((await runs.runPb(registerAll)).code).toBe(0);

    // Power loss takes n2's session with it; its registration stays listed (tgtd keeps it).
    await lab.power('n2', 'off');
    expect([...(await onNode('n1', { op: 'keys' })).keys!].sort()).toEqual([k1, k2].sort());
    // n2 cannot be asked: its listed key counts as not fenced, and the fence preempts it.
    const fenced = await runs.runPb(fenceN2);
    expect(fenced.code, fenced.out).toBe(0);
    expect(fenced.out).toMatch(/n1\s+ok=0\s+changed=1\s+failed=0/);
    expect((await onNode('n1', { op: 'keys' })).keys).toEqual([k1]);

    await lab.power('n2', 'on');
    expect((await runs.runPb(unfenceN2)).code).toBe(0);
    expect(await writeFrom('n2', 12, 0x41)).toMatchObject({ ok: true });

    // A reboot without a fence: n2's key is still listed, but its new boot has no session that
    // holds it, so unfence is not satisfied by the listing: it registers n2 again.
    await lab.power('n2', 'off');
    await lab.power('n2', 'on');
    expect([...(await onNode('n1', { op: 'keys' })).keys!].sort()).toEqual([k1, k2].sort());
    const again = await runs.runPb(unfenceN2);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/n1\s+ok=0\s+changed=1\s+failed=0/);
    expect(await writeFrom('n2', 12, 0x42)).toMatchObject({ ok: true });
  }, 180_000);

  it('undo of a fence run gives the fenced node its access back', async () => {
    expect((await runs.runPb(registerAll)).code).toBe(0);
    const r = await runs.baton(['run', '--yes', '--json', '-i', lab.inventoryPath, runs.playbook(fenceN2)]);
    expect(r.code, r.out).toBe(0);
    const runId = /"runId":"([^"]+)"/.exec(r.out)?.[1];
    expect(runId).toBeDefined();
    expect((await writeFrom('n2', 11, 0x31)).status).toBe('RESERVATION CONFLICT');
    const u = await runs.baton(['undo', '--yes', '-i', lab.inventoryPath, runId!]);
    expect(u.code, u.out).toBe(0);
    expect(await writeFrom('n2', 11, 0x32)).toMatchObject({ ok: true });
  }, 120_000);
});
