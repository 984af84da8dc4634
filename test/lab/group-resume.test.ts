/**
 * A group playbook killed between raising the group's VIP on its new node and announcing it
 * (GARP, the NFSv3 lock holders' notification), then run again, as on-call re-runs a command and
 * as the watcher re-runs an orphaned failover. The group then runs whole on its new node, so a
 * re-run used to find nothing to move and exit 0 with the announcements never sent: clients kept
 * the old node's MAC for the VIP. What is checked is what a user would look at: the client's
 * neighbour entry for the VIP (read in its namespace), what the client reads through the VIP,
 * `baton status`, and the re-run's own report. 2 nodes, 1 client, 1 group. Root only.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBaton, type StepTarget } from '../helpers/fault-run.js';
import { clientReadFrom, clientWriteTo, groupRuns, ok } from '../helpers/group-runs.js';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { loadInventory } from '../../src/inventory/load.js';
import { loadServiceGroups, type ServiceGroup } from '../../src/inventory/services.js';

let lab: Lab | undefined;
let tmp: string;
let group: ServiceGroup;
let written: string;

function L(): Lab {
  if (!lab) throw new Error('the lab did not come up (see beforeAll)');
  return lab;
}
const state = () => path.join(tmp, 'state');
const runs = groupRuns(L, state);

/** The client's neighbour entry for the VIP: the MAC it sends to ('' when it has none). */
async function clientNeighbour(): Promise<string> {
  const r = await L().clientExec(L().clients[0]!, ['ip', '-j', 'neigh', 'show', group.vip.address]);
  const rows = JSON.parse(r.stdout.trim() || '[]') as Array<{ lladdr?: string }>;
  return (rows[0]?.lladdr ?? '').toLowerCase();
}

/** The raise_vip instance of the group's item on `host`, as `plan --json` numbers it. */
async function raiseVipOf(playbook: string, vars: Record<string, unknown>, host: string): Promise<StepTarget> {
  const r = await runs.baton(['plan', '--json', '-i', L().inventoryPath, path.resolve(playbook), '-e', JSON.stringify(vars)]);
  expect(r.code, r.stderr).toBe(0);
  const doc = JSON.parse(r.stdout) as { plays: Array<{ steps: Array<{ step: string; kind: string; host: string; name: string; item?: string }> }> };
  const s = doc.plays.flatMap((p) => p.steps).find((x) => x.kind === 'raise_vip' && x.host === host && x.item === group.name);
  if (!s) throw new Error(`no raise_vip on ${host} in the plan of ${playbook}:\n${r.stdout}`);
  return { instance: s.step, host, on: host, kind: 'raise_vip', name: s.name };
}

/** Run the playbook and SIGKILL baton as soon as raise_vip on `host` has ended. */
async function killedAfterRaise(playbook: string, vars: Record<string, unknown>, host: string): Promise<string> {
  const target = await raiseVipOf(playbook, vars, host);
  const r = await runBaton({ lab: L(), stateDir: state(), args: ['run', '--yes', '-i', L().inventoryPath, path.resolve(playbook), '-e', JSON.stringify(vars)], target, fault: { type: 'kill', at: 'end' } });
  expect(r.injected, r.note).toBe(true);
  expect(r.signal).toBe('SIGKILL');
  return r.runId!;
}

const headOf = (runId: string) => JSON.parse(readFileSync(path.join(state(), 'runs', `${runId}.jsonl`), 'utf8').split('\n')[0]!) as { resumes?: string };
const newestRun = (out: string) => /^run (\d{8}T\d{6}Z-[0-9a-f]{6}) /m.exec(out)?.[1] ?? '';

describe('a group playbook cut short after raising the VIP, run again', () => {
  beforeAll(async () => {
    requireRoot();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-grres-'));
    lab = await startLab({ name: 'grres', subnet: '198.18.214.0/24', nodes: 2, clients: 1, groups: 1 });
    group = loadServiceGroups(loadInventory(lab.inventoryPath))[0]!;
    ok(await runs.run('playbooks/service-start.yml', { service: group.name }), `service-start ${group.name}`);
    written = await clientWriteTo(L().clients[0]!, group, 'resume.bin', 64 * 1024);
  });

  afterAll(async () => {
    await lab?.down();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('service-move killed after the VIP went up on n2: the same command again sends what was owed, and the client follows the VIP to n2', async () => {
    expect(await clientNeighbour()).toBe(L().node('n1').mac);
    const vars = { service: group.name, to: 'n2' };
    const killed = await killedAfterRaise('playbooks/service-move.yml', vars, 'n2');
    expect((await runs.status()).where[group.name]).toBe('running on n2 (home n1)');
    // Nobody announced the VIP's new holder: the client still sends to n1.
    expect(await clientNeighbour()).toBe(L().node('n1').mac);

    const again = ok(await runs.run('playbooks/service-move.yml', vars), 'service-move again');
    const out = again.stdout + again.stderr;
    expect(out).toContain(`group ${group.name} runs on n2, but run ${killed}, which put it there, was cut short: finishing it there`);
    expect(out, out).toMatch(/changed +\[nfs-a\] announce 198\.18\.214\.\d+ from its new holder/);
    expect(out).toMatch(/changed +\[nfs-a\] notify nfs-a's NFSv3 lock holders from/);
    expect(headOf(newestRun(out)).resumes).toBe(killed);
    expect(await clientNeighbour()).toBe(L().node('n2').mac);
    expect(await clientReadFrom(L().clients[0]!, group, 'resume.bin')).toBe(written);
    // Finished: a third run has nothing left to do.
    const third = ok(await runs.run('playbooks/service-move.yml', vars), 'service-move a third time');
    expect(third.stdout + third.stderr).toContain(`group ${group.name} already runs on n2: nothing to move`);
  });

  it('node-failover killed after the VIP went up on the survivor (the watcher\'s orphan): run again, it finishes there, and the client follows', async () => {
    const vars = { failed: 'n2' };
    const killed = await killedAfterRaise('playbooks/node-failover.yml', vars, 'n1');
    expect(await L().power('n2', 'status')).toMatch(/off/i);
    expect((await runs.status()).where[group.name]).toBe('running on n1');
    expect(await clientNeighbour()).toBe(L().node('n2').mac);

    const again = ok(await runs.run('playbooks/node-failover.yml', vars), 'node-failover again');
    const out = again.stdout + again.stderr;
    expect(out).toContain(`but run ${killed}, which put it there, was cut short: finishing it there`);
    expect(headOf(newestRun(out)).resumes).toBe(killed);
    expect(await clientNeighbour()).toBe(L().node('n1').mac);
    expect(await clientReadFrom(L().clients[0]!, group, 'resume.bin')).toBe(written);
  });
});
