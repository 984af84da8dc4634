/**
 * demote / promote with the command provider, on real lab nodes over SSH. The role lives in a
 * file of each node's private /run, standing in for a replication tool's role (DRBD cannot run
 * here: no kernel module). Root only.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { baton, changedCount } from '../helpers/nfs-service.js';

let lab: Lab;
let work: string;
const ROLE = '/run/replication-role';

const roleArgs = `provider: command, probe: [cat, ${ROLE}], expect: "^primary", promote: [sh, -c, "echo primary > ${ROLE}"], demote: [sh, -c, "echo secondary > ${ROLE}"]`;

function playbook(name: string, steps: string[]): string {
  const file = path.join(work, `${name}.yml`);
  writeFileSync(file, `- name: ${name}\n  hosts: "{{ on }}"\n  steps:\n${steps.map((s) => `    - ${s}`).join('\n')}\n`);
  return file;
}
const role = async (node: string) => (await lab.sshOk(node, ['cat', ROLE])).trim();
const run = (pb: string, on: string) => baton(['run', '--yes', '-i', lab.inventoryPath, '-e', `on=${on}`, pb], path.join(work, 'state'));

beforeAll(async () => {
  requireRoot();
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-replication-'));
  lab = await startLab({ name: 'repl', subnet: '198.18.41.0/24', clients: 0, disks: 0 });
  for (const n of ['n1', 'n2']) await lab.sshOk(n, ['sh', '-c', `echo secondary > ${ROLE}`]);
});
afterAll(async () => {
  await lab?.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('demote / promote (command provider) in the lab', () => {
  it('promotes n1; a second run changes nothing', async () => {
    const pb = playbook('promote', [`promote: { ${roleArgs} }`]);
    const r = await run(pb, 'n1');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await role('n1')).toBe('primary');
    expect(await role('n2')).toBe('secondary');
    const again = await run(pb, 'n1');
    expect(changedCount(again.stdout)).toBe(0);
  });

  it('a promote rolled back after a later failure leaves the node secondary', async () => {
    const pb = playbook('promote-then-fail', [`promote: { ${roleArgs} }`, 'command: [/bin/false]']);
    const r = await run(pb, 'n2');
    expect(r.code).toBe(1);
    expect(await role('n2')).toBe('secondary');
  });

  it('demotes n1; undo makes it primary again', async () => {
    const pb = playbook('demote', [`demote: { ${roleArgs} }`]);
    const r = await run(pb, 'n1');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await role('n1')).toBe('secondary');
    const id = /undo:\s+baton undo (\S+)/.exec(r.stdout)![1]!;
    const undo = await baton(['undo', '--yes', id], path.join(work, 'state'));
    expect(undo.code, undo.stdout + undo.stderr).toBe(0);
    expect(await role('n1')).toBe('primary');
  });
});
