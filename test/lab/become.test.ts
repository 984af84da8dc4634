/**
 * become in the lab: baton connects to the nodes as an unprivileged user that has passwordless
 * sudo, and runs the whole shipped NFS switchover through `sudo -n` — while the same run
 * without become is refused by the nodes. Root only.
 *
 * The user exists only inside each node's own mount namespace: passwd, group, shadow and
 * sudoers.d are copies bind-mounted over the node's /etc. The host's /etc is never touched,
 * and lab.down() (killing the nodes) drops the mounts with the namespaces.
 *
 * sshd reads authorized keys as the user logging in, and the lab's key sits in root-only
 * directories: the test lets others traverse (o+x, not list) the lab's directory and its
 * parent for the duration, and puts the parent's mode back afterwards.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { baton, changedCount, clientSha256, clientWrite, clusterState, diskHolders, vipHolders } from '../helpers/nfs-service.js';
import { loadInventory } from '../../src/inventory/load.js';
import { connectionFor } from '../../src/inventory/connection.js';
import { SshTransport } from '../../src/transport/ssh.js';

const USER = 'batonop';
const UID = '47110';
const PB = (name: string) => path.resolve('playbooks', name);
const FILE = '/disk1/payload.bin';

/** Adds USER to copies of the node's account files and binds them over /etc, in the node only. */
const ADD_USER = [
  'set -e',
  'd=$1; u=$2; id=$3',
  'mkdir -p "$d/sudoers.d"',
  'cp /etc/passwd "$d/passwd"; echo "$u:x:$id:$id:baton become test:/:/bin/sh" >> "$d/passwd"',
  'cp /etc/group "$d/group"; echo "$u:x:$id:" >> "$d/group"',
  // "*": no password, not locked (sshd refuses a locked account even for a key).
  'cp /etc/shadow "$d/shadow"; echo "$u:*:19000:0:99999:7:::" >> "$d/shadow"',
  'echo "$u ALL=(ALL:ALL) NOPASSWD: ALL" > "$d/sudoers.d/baton-become"; chmod 0440 "$d/sudoers.d/baton-become"',
  'for f in passwd group shadow sudoers.d; do mount --bind "$d/$f" "/etc/$f"; done',
].join('\n');

let lab: Lab;
let state: string;
let becomeInv: string;
let plainInv: string;
let unsetInv: string;
let payloadSha: string;
let parentMode: number | undefined;

/** The lab's inventory, connecting as USER, with ansible_become set to `become` (or not set). */
function inventoryAs(become: boolean | undefined, file: string): string {
  const doc = yaml.load(readFileSync(lab.inventoryPath, 'utf8')) as { all: { vars: Record<string, unknown>; children: { nodes: { hosts: Record<string, Record<string, unknown>> } } } };
  for (const h of Object.values(doc.all.children.nodes.hosts)) h.ansible_user = USER;
  if (become !== undefined) doc.all.children.nodes = { ...doc.all.children.nodes, vars: { ansible_become: become } } as typeof doc.all.children.nodes;
  writeFileSync(file, yaml.dump(doc), { mode: 0o600 });
  return file;
}

const run = (inv: string, playbook: string, ...args: string[]) => baton(['run', '--yes', '-i', inv, PB(playbook), ...args], state);

beforeAll(async () => {
  requireRoot();
  lab = await startLab({ name: 'become', subnet: '198.18.110.0/24', diskMiB: 64 });
  state = mkdtempSync(path.join(os.tmpdir(), 'baton-become-state-'));
  const parent = path.dirname(lab.dir);
  parentMode = statSync(parent).mode & 0o7777;
  chmodSync(parent, parentMode | 0o001);
  chmodSync(lab.dir, (statSync(lab.dir).mode & 0o7777) | 0o001);
  chmodSync(`${lab.keyFile}.pub`, 0o644);
  for (const n of lab.nodes) {
    await lab.sshOk(n, ['sh', '-c', ADD_USER, 'sh', path.join(lab.dir, `become-${n.name}`), USER, UID]);
  }
  becomeInv = inventoryAs(true, path.join(state, 'become.yml'));
  plainInv = inventoryAs(false, path.join(state, 'plain.yml'));
  unsetInv = inventoryAs(undefined, path.join(state, 'unset.yml'));
});

afterAll(async () => {
  await lab?.down();
  if (lab && parentMode !== undefined) chmodSync(path.dirname(lab.dir), parentMode);
  if (state) rmSync(state, { recursive: true, force: true });
});

describe('become through sudo -n in the lab', () => {
  it('the user exists on the nodes only, and baton reaches them as that user', async () => {
    expect(readFileSync('/etc/passwd', 'utf8')).not.toContain(`${USER}:`);
    const inv = loadInventory(unsetInv);
    const t = new SshTransport(connectionFor(inv.hosts.get('n1')!));
    try {
      expect((await t.exec(['id', '-un'])).stdout.trim()).toBe(USER);
      // A step's become (the engine passes it per command) runs the same argv as root.
      const r = await t.exec(['id', '-un'], { become: {} });
      expect(r.stdout.trim(), r.stderr).toBe('root');
      // Arguments stay arguments through sudo: nothing here is parsed by a shell.
      const odd = await t.exec(['printf', '%s|', 'a b', "'; id #", '$(id)'], { become: { user: 'nobody' } });
      expect(odd.stdout).toBe("a b|'; id #|$(id)|");
      expect((await t.exec(['id', '-un'], { become: { user: 'nobody' } })).stdout.trim()).toBe('nobody');
    } finally {
      await t.close();
    }
  });

  it('ansible_become in the inventory makes every command run as root, and wins over a step', async () => {
    const inv = loadInventory(becomeInv);
    const t = new SshTransport(connectionFor(inv.hosts.get('n2')!));
    const off = new SshTransport(connectionFor(loadInventory(plainInv).hosts.get('n2')!));
    try {
      expect((await t.exec(['id', '-un'])).stdout.trim()).toBe('root');
      expect((await t.exec(['sh', '-c', 'echo "$FOO"'], { env: { FOO: 'from env' } })).stdout.trim()).toBe('from env');
      // ansible_become: false in the inventory beats a step's become, as in Ansible.
      expect((await off.exec(['id', '-un'], { become: {} })).stdout.trim()).toBe(USER);
    } finally {
      await t.close();
      await off.close();
    }
  });

  it('the whole NFS switchover runs as the unprivileged user with become, and is refused without it', async () => {
    const start = await run(becomeInv, 'nfs-start.yml', '-e', 'on=n1');
    expect(start.code, start.stdout + start.stderr).toBe(0);
    payloadSha = await clientWrite(lab, FILE, 1024 * 1024);

    // Without become the nodes refuse the first change; the run rolls back and nothing moved.
    const before = await clusterState(lab);
    const refused = await run(plainInv, 'nfs-switchover.yml', '-e', 'from=n1', '-e', 'to=n2');
    expect(refused.code, refused.stdout + refused.stderr).not.toBe(0);
    // Refused for want of privilege, not for anything else.
    expect(refused.stdout + refused.stderr).toMatch(/denied|not permitted|must be root|permission|root privileges/i);
    expect(await clusterState(lab)).toEqual(before);

    const r = await run(becomeInv, 'nfs-switchover.yml', '-e', 'from=n1', '-e', 'to=n2');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const s = await clusterState(lab);
    expect(vipHolders(s, lab.vip)).toEqual(['n2']);
    expect(diskHolders(s, lab.disks[0]!)).toEqual(['n2']);
    expect(await clientSha256(lab, FILE)).toBe(payloadSha);

    const again = await run(becomeInv, 'nfs-switchover.yml', '-e', 'from=n1', '-e', 'to=n2');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(changedCount(again.stdout)).toBe(0);
  });
});
