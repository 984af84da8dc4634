/**
 * The duplicate-address check is bounded (200 ms) and may start early, in parallel with the
 * storage steps; it must still refuse a VIP that someone outside the inventory answers for.
 * Here that someone is the lab's client namespace holding the VIP on its own interface: no
 * inventory peer has it, so only the probe of the wire can see it. Not timed: speed is bench/'s.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { runRaw } from '../../src/lab/exec.js';
import { CLI, labRuns } from '../helpers/lab-runs.js';

const NAME = 'speed2';
const SUBNET = '198.18.181.0/24';

let lab: Lab | undefined;
let work = '';

function L(): Lab {
  if (!lab) throw new Error('the lab did not come up (see beforeAll)');
  return lab;
}

const { runPb, holders } = labRuns(L, () => work);

async function clientMac(): Promise<string> {
  const r = await runRaw(['ip', '-n', L().clients[0]!.netns, '-o', 'link', 'show', 'dev', 'eth0']);
  const mac = /link\/ether ([0-9a-f:]{17})/.exec(r.stdout)?.[1];
  if (!mac) throw new Error(`no MAC for the client's eth0: ${r.stdout}${r.stderr}`);
  return mac;
}

async function clientHolds(address: string, hold: boolean): Promise<void> {
  const r = await runRaw(['ip', '-n', L().clients[0]!.netns, 'addr', hold ? 'add' : 'del', `${address}/24`, 'dev', 'eth0']);
  if (r.code !== 0) throw new Error(`client: ip addr ${hold ? 'add' : 'del'} ${address}: ${r.stderr}`);
}

const vipStep = (kind: string, address: string) => `    - ${kind}: ${JSON.stringify({ address, prefix: 24, interface: 'eth0' })}\n`;

beforeAll(async () => {
  requireRoot();
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` first');
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-vip-outsider-'));
  lab = await startLab({ name: NAME, subnet: SUBNET, nodes: 2, clients: 1, disks: 1 });
});

afterAll(async () => {
  if (lab) await lab.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('a VIP answered for by a host outside the inventory', () => {
  it('raise_vip is refused, naming the client\'s MAC; no node holds the VIP', async () => {
    const vip = L().vip;
    await clientHolds(vip, true);
    try {
      const r = await runPb(`- hosts: n1\n  steps:\n${vipStep('raise_vip', vip)}`);
      expect(r.code, r.out).toBe(1);
      expect(r.out).toContain(await clientMac());
      expect(r.out).toMatch(/split brain/);
      expect(await holders(vip)).toEqual([]);
    } finally {
      await clientHolds(vip, false);
    }
  });

  it('the probe started early (after the release, beside other steps) refuses too, and so does the rollback that would raise it on n2', async () => {
    const vip = L().vip;
    const up = await runPb(`- hosts: n2\n  steps:\n${vipStep('raise_vip', vip)}`);
    expect(up.code, up.out).toBe(0);
    expect(await holders(vip)).toEqual(['n2']);
    await clientHolds(vip, true);
    try {
      // A step between the release and the raise, as the storage steps are in a switchover.
      const move =
        `- hosts: n2\n  steps:\n${vipStep('lower_vip', vip)}` +
        `- hosts: n1\n  steps:\n    - command: { argv: [sleep, "0.3"] }\n${vipStep('raise_vip', vip)}`;
      const r = await runPb(move);
      // The rollback would raise the VIP on n2 again: refused for the same reason, so the run
      // ends with its change in place (exit 3) and the VIP on no node, never on two.
      expect(r.code, r.out).toBe(3);
      expect(r.out).toMatch(new RegExp(`raise_vip: ${vip.replace(/\./g, '\\.')} is already answered .* by ${await clientMac()}.*raising it on n1 would be split brain`));
      expect(r.out).toMatch(/raising it on n2 would be split brain/);
      expect(await holders(vip)).toEqual([]);
    } finally {
      await clientHolds(vip, false);
    }
  });

  it('once the outsider lets go, the same move goes through (the refusals above were about it)', async () => {
    const vip = L().vip;
    const up = await runPb(`- hosts: n2\n  steps:\n${vipStep('raise_vip', vip)}`);
    expect(up.code, up.out).toBe(0);
    const move = `- hosts: n2\n  steps:\n${vipStep('lower_vip', vip)}- hosts: n1\n  steps:\n    - command: { argv: [sleep, "0.3"] }\n${vipStep('raise_vip', vip)}`;
    const r = await runPb(move);
    expect(r.code, r.out).toBe(0);
    expect(await holders(vip)).toEqual(['n1']);
  });
});
