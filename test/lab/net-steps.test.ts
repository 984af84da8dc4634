/**
 * raise_vip / lower_vip / garp on the namespace lab, driven the way users drive them: a small
 * playbook, the lab's inventory, the real CLI over real SSH. Tests run in order on one lab; each
 * says what state it leaves.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { runRaw, sleep } from '../../src/lab/exec.js';
import { CLI, labRuns } from '../helpers/lab-runs.js';
import { stopGarpArgv } from '../../src/steps/garp.js';

const NAME = 'netsteps';
const SUBNET = '198.18.30.0/24';

let lab: Lab | undefined;
let work = '';

function L(): Lab {
  if (!lab) throw new Error('the lab did not come up (see beforeAll)');
  return lab;
}

const { runPb, holders } = labRuns(L, () => work);

async function addrs(node: string): Promise<string> {
  return (await runRaw(['ip', '-n', L().node(node).netns, '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
}

/**
 * The addresses on a node's eth0, without their flags: a lab just brought up still has its IPv6
 * link-local address `tentative` for a second, which is the kernel's doing, not a change of baton's.
 */
async function addressSet(node: string): Promise<string[]> {
  return [...(await addrs(node)).matchAll(/\binet6? (\S+)/g)].map((m) => m[1]!).sort();
}

async function neigh(address: string): Promise<string> {
  return (await runRaw(['ip', '-n', L().clients[0]!.netns, 'neigh', 'show', address])).stdout.toLowerCase();
}

/** Poll the client's neighbour entry until it shows `mac`; returns the ms it took, or -1. */
async function neighShows(address: string, mac: string, withinMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < withinMs) {
    if ((await neigh(address)).includes(mac.toLowerCase())) return Date.now() - t0;
    await sleep(50);
  }
  return -1;
}

/** Make the client believe `address` is at `mac` (what a stale cache after a failover looks like). */
async function poisonNeigh(address: string, mac: string): Promise<void> {
  const c = L().clients[0]!;
  const r = await runRaw(['ip', '-n', c.netns, 'neigh', 'replace', address, 'lladdr', mac, 'dev', 'eth0', 'nud', 'stale']);
  if (r.code !== 0) throw new Error(r.stderr);
}

const stepLine = (kind: string, host: string, a: Record<string, unknown>) =>
  `    - ${kind}: ${JSON.stringify(a)}\n`;

beforeAll(async () => {
  requireRoot();
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npx tsc -p .` first');
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-net-steps-'));
  lab = await startLab({ name: NAME, subnet: SUBNET, nodes: 2, clients: 1, disks: 1 });
});

afterAll(async () => {
  if (lab) await lab.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('network steps on the lab', () => {
  const vip = () => L().vip;
  const raise = (host: string, address = vip()) =>
    `- hosts: ${host}\n  steps:\n${stepLine('raise_vip', host, { address, prefix: 24, interface: 'eth0' })}`;

  it('raise_vip on n1: the VIP is on exactly one node, the client reaches it, a re-run changes nothing', async () => {
    expect(await holders(vip())).toEqual([]);
    const first = await runPb(raise('n1'));
    expect(first.code, first.out).toBe(0);
    expect(first.out).toMatch(/n1\s+ok=0\s+changed=1\s+failed=0/);
    expect(await holders(vip())).toEqual(['n1']);
    expect((await L().clientExec('c1', ['ping', '-c', '1', '-W', '2', vip()])).code).toBe(0);
    expect(await neigh(vip())).toContain(L().node('n1').mac);

    const second = await runPb(raise('n1'));
    expect(second.code, second.out).toBe(0);
    expect(second.out).toMatch(/n1\s+ok=1\s+changed=0\s+failed=0/);
    expect(await holders(vip())).toEqual(['n1']);
  });

  it('raise_vip on n2 while n1 holds it is refused, naming n1 and its MAC; nothing changes on n2', async () => {
    const before = await addressSet('n2');
    expect(before).toContain(`${L().node('n2').address}/24`);
    const r = await runPb(raise('n2'));
    expect(r.code, r.out).toBe(1);
    // Refused by the ARP probe (naming n1's MAC) or, when the bounded probe ran out first on a
    // loaded machine, by the engine's question to n1 itself: either way naming n1.
    if (/split brain/.test(r.out)) {
      expect(r.out).toContain(L().node('n1').mac);
      expect(r.out).toMatch(/\(n1\)/);
    } else {
      expect(r.out).toMatch(/will not raise_vip .* n1 has 198\.18\.30\.\d+ on eth0/);
    }
    expect(await addressSet('n2')).toEqual(before);
    expect(await holders(vip())).toEqual(['n1']);
  });

  it('with --force the same raise goes through (then it is cleaned up)', async () => {
    const r = await runPb(raise('n2'), '--force');
    expect(r.code, r.out).toBe(0);
    expect(await holders(vip())).toEqual(['n1', 'n2']);
    await L().sshOk('n2', ['ip', 'addr', 'del', `${vip()}/24`, 'dev', 'eth0']);
    expect(await holders(vip())).toEqual(['n1']);
  });

  it('moves the VIP n1 → n2 (lower, raise, garp): the client sees n2\'s MAC within 2 s, garp returns at once', async () => {
    const [n1, n2] = [L().node('n1'), L().node('n2')];
    expect((await L().clientExec('c1', ['ping', '-c', '1', '-W', '2', vip()])).code).toBe(0);
    expect(await neigh(vip())).toContain(n1.mac);
    const pb = [
      `- hosts: n1\n  steps:\n${stepLine('lower_vip', 'n1', { address: vip(), prefix: 24, interface: 'eth0' })}`,
      `- hosts: n2\n  steps:\n${stepLine('raise_vip', 'n2', { address: vip(), prefix: 24, interface: 'eth0' })}      register: vip_raised\n` +
        `${stepLine('garp', 'n2', { address: vip(), interface: 'eth0' })}      when: vip_raised is changed\n`,
    ].join('');
    const t0 = Date.now();
    const r = await runPb(pb, '--json');
    expect(r.code, r.out).toBe(0);
    const seen = await neighShows(vip(), n2.mac, 2500);
    const sinceRunStart = Date.now() - t0;
    expect(seen, `client still at ${await neigh(vip())}`).toBeGreaterThanOrEqual(0);
    expect(await holders(vip())).toEqual(['n2']);
    const events = r.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    const garpEnd = events.find((e) => e.type === 'step-end' && e.step?.kind === 'garp');
    expect(garpEnd?.status).toBe('changed');
    // Background: the step returns without waiting for its 5 packets over 4 s.
    expect(garpEnd.durationMs).toBeLessThan(500);
    console.log(`move n1→n2: run ${sinceRunStart - seen} ms, client at n2's MAC ${seen} ms after the run ended; garp step ${garpEnd.durationMs} ms`);
    expect((await L().clientExec('c1', ['ping', '-c', '1', '-W', '2', vip()])).code).toBe(0);

    // Re-run: lower on n1 and raise on n2 are satisfied, garp is skipped by its `when`.
    const again = await runPb(pb);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/n1\s+ok=1\s+changed=0/);
    expect(again.out).toMatch(/n2\s+ok=1\s+changed=0\s+failed=0\s+skipped=1/);
  });

  it('a failure after raise_vip rolls it back: the second VIP is on neither node', async () => {
    const vip2 = vip().replace(/\.\d+$/, '.201');
    const r = await runPb(`${raise('n1', vip2)}    - command: ["false"]\n`);
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(/reverted=1/);
    expect(await holders(vip2)).toEqual([]);
  });

  it('a rolled-back release puts the VIP back on n1 and re-announces it: the client is back at n1\'s MAC', async () => {
    const [n1, n2] = [L().node('n1'), L().node('n2')];
    // Start from the VIP on n1 (the move left it on n2). Moved by hand, so n2's announcer from the
    // move (5 packets over 4 s) is stopped by hand too, as lower_vip would: a node still announcing
    // the VIP is one the raise back on n1 must refuse.
    await L().sshOk('n2', stopGarpArgv(vip(), 'eth0'));
    await L().sshOk('n2', ['ip', 'addr', 'del', `${vip()}/24`, 'dev', 'eth0']);
    await L().sshOk('n1', ['ip', 'addr', 'add', `${vip()}/24`, 'dev', 'eth0']);
    const before = await addressSet('n1');
    // The client still believes the VIP is at n2, as after a takeover that announced itself.
    await poisonNeigh(vip(), n2.mac);
    const pb =
      `- hosts: n1\n  steps:\n${stepLine('lower_vip', 'n1', { address: vip(), prefix: 24, interface: 'eth0' })}` +
      `- hosts: n2\n  steps:\n    - command: ["false"]\n`;
    const r = await runPb(pb);
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(/reverted=1/);
    expect(await holders(vip())).toEqual(['n1']);
    expect(await addressSet('n1')).toEqual(before);
    const seen = await neighShows(vip(), n1.mac, 2500);
    expect(seen, `client still at ${await neigh(vip())}`).toBeGreaterThanOrEqual(0);
    console.log(`rollback of lower_vip: client back at n1's MAC ${seen} ms after the run ended`);
  });

  it('a takeover that fails after its garp is rolled back: n2 stops announcing, n1 re-announces, the client ends at n1', async () => {
    const [n1, n2] = [L().node('n1'), L().node('n2')];
    expect(await holders(vip())).toEqual(['n1']);
    const pb = [
      `- hosts: n1\n  steps:\n${stepLine('lower_vip', 'n1', { address: vip(), prefix: 24, interface: 'eth0' })}`,
      `- hosts: n2\n  steps:\n${stepLine('raise_vip', 'n2', { address: vip(), prefix: 24, interface: 'eth0' })}      register: vip_raised\n` +
        `${stepLine('garp', 'n2', { address: vip(), interface: 'eth0' })}      when: vip_raised is changed\n` +
        `    - command: ["false"]\n`,
    ].join('');
    const r = await runPb(pb);
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(/reverted=1/);
    expect(await holders(vip())).toEqual(['n1']);
    // n2's background arping (5 packets over 4 s) was stopped when its raise was reverted.
    const n2Procs = (await runRaw(['ip', 'netns', 'pids', n2.netns])).stdout.split(/\s+/).filter(Boolean);
    const comms = await Promise.all(n2Procs.map(async (p) => (await runRaw(['cat', `/proc/${p}/comm`])).stdout.trim()));
    expect(comms).not.toContain('arping');
    const seen = await neighShows(vip(), n1.mac, 3000);
    expect(seen, `client still at ${await neigh(vip())}`).toBeGreaterThanOrEqual(0);
    await sleep(2500);
    expect(await neigh(vip())).toContain(n1.mac);
  });

  it('lower_vip resets the TCP connections to the VIP: the client sees a reset at once', async () => {
    // Ganesha listens on 2049 on every address of n1, the VIP included.
    const c = L().clients[0]!;
    const client = runRaw(
      ['ip', 'netns', 'exec', c.netns, 'python3', '-c',
        'import socket,sys,time\ns=socket.create_connection((sys.argv[1],2049),3)\nprint("connected",flush=True)\nt=time.time()\ntry:\n  s.settimeout(10); d=s.recv(1); print("eof" if not d else "data", round(time.time()-t,2))\nexcept Exception as e: print(type(e).__name__, round(time.time()-t,2))',
        vip()],
      { timeoutMs: 20_000 },
    );
    // Wait for the connection (python's start in the namespace is slow on a loaded machine).
    let conns = '';
    for (const until = Date.now() + 8000; !conns.trim() && Date.now() < until; await sleep(100)) {
      conns = (await runRaw(['ip', 'netns', 'exec', L().node('n1').netns, 'ss', '-H', '-n', '-t', 'state', 'established', 'src', vip()])).stdout;
    }
    expect(conns.trim(), `the client connection is not established on n1 (client: ${JSON.stringify(await Promise.race([client, sleep(1).then(() => 'still running')]))})`).not.toBe('');
    const r = await runPb(`- hosts: n1\n  steps:\n${stepLine('lower_vip', 'n1', { address: vip(), prefix: 24, interface: 'eth0' })}`);
    expect(r.code, r.out).toBe(0);
    const out = (await client).stdout;
    expect(out).toMatch(/ConnectionResetError/);
    expect(Number(out.trim().split(/\s+/).pop())).toBeLessThan(5);
    expect(await holders(vip())).toEqual([]);
  });

  it('raises an IPv6 VIP (2001:2::/48, RFC 5180) on n2 with DAD waited out; a duplicate on n1 is refused and removed', async () => {
    const v6 = '2001:2::10';
    const c = L().clients[0]!;
    // The client gets an address on the same /64 so it can reach the VIP (lab only).
    await runRaw(['ip', '-n', c.netns, '-6', 'addr', 'add', '2001:2::100/64', 'dev', 'eth0', 'nodad']);
    const pb = `- hosts: n2\n  steps:\n${stepLine('raise_vip', 'n2', { address: v6, prefix: 64, interface: 'eth0' })}`;
    const t0 = Date.now();
    const r = await runPb(pb);
    const ms = Date.now() - t0;
    expect(r.code, r.out).toBe(0);
    const line = (await addrs('n2')).split('\n').find((l) => l.includes(v6))!;
    expect(line).toBeDefined();
    expect(line).not.toMatch(/tentative|dadfailed/);
    console.log(`IPv6 raise with DAD: ${ms} ms (whole CLI run)`);
    expect((await L().clientExec('c1', ['ping', '-6', '-c', '1', '-W', '2', v6])).code).toBe(0);
    expect(await neigh(v6)).toContain(L().node('n2').mac);
    // ndisc_notify was put back as it was.
    expect((await L().sshOk('n2', ['cat', '/proc/sys/net/ipv6/conf/eth0/ndisc_notify'])).trim()).toBe('0');

    const again = await runPb(pb);
    expect(again.out).toMatch(/n2\s+ok=1\s+changed=0/);

    // The engine asks the inventory's peers first: n2 holds it.
    const dupYaml = `- hosts: n1\n  steps:\n${stepLine('raise_vip', 'n1', { address: v6, prefix: 64, interface: 'eth0' })}`;
    const refused = await runPb(dupYaml);
    expect(refused.code, refused.out).toBe(1);
    expect(refused.out).toMatch(/n2 has 2001:2::[0-9a-f:]* on eth0/);
    expect(await addrs('n1')).not.toContain(v6);
    // With the peer check forced past, the kernel's DAD on the wire still refuses it.
    const dup = await runPb(dupYaml, '--force');
    expect(dup.code, dup.out).toBe(1);
    expect(dup.out).toMatch(/duplicate address detection failed/);
    expect(await addrs('n1')).not.toContain(v6);

    const low = await runPb(`- hosts: n2\n  steps:\n${stepLine('lower_vip', 'n2', { address: v6, prefix: 64, interface: 'eth0' })}`);
    expect(low.code, low.out).toBe(0);
    expect(await addrs('n2')).not.toContain(v6);
  });
});
