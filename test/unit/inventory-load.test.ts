import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { connectionFor, sshOptions } from '../../src/inventory/connection.js';
import { loadInventory } from '../../src/inventory/load.js';
import { loadServiceGroups } from '../../src/inventory/services.js';
import { loadInputs } from '../../src/cli/inputs.js';
import { selectHosts } from '../../src/inventory/pattern.js';
import { tempDirEach } from '../helpers/state-dir.js';
import { loadProblems } from '../helpers/model.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const invFile = path.join(here, 'fixtures/inv/prod.yml');
const inv = loadInventory(invFile);
const host = (n: string) => inv.hosts.get(n)!;

describe('loadInventory', () => {
  it('lists hosts in inventory order with all their groups', () => {
    expect([...inv.hosts.keys()]).toEqual(['ctl', 'nas1', 'nas2', 'client1']);
    expect(host('nas1').groups).toEqual(['all', 'clients', 'storage', 'nas']);
    expect(host('ctl').groups).toEqual(['all', 'ungrouped']);
    expect(inv.groups.get('storage')!.children).toEqual(['nas']);
  });

  it('merges vars: all < parent group < child group < group_vars files < host entry < host_vars file', () => {
    expect(host('client1').vars.site).toBe('lab'); // all
    expect(host('nas1').vars.site).toBe('dc1-nas'); // child group beats parent
    expect(host('nas2').vars.site).toBe('nas2-own'); // host_vars file beats everything
    expect(host('nas1').vars.ntp).toBe('ntp.from-group-vars-all'); // group_vars/all beats inline all vars
    expect(host('nas1').vars.export_root).toBe('/exports'); // group_vars/storage/ dir beats inline storage vars
    expect(host('nas1').vars.fs_type).toBe('ext4');
    expect(host('nas1').vars.role_hint).toBe('also-a-client'); // a host listed twice gets both listings' vars
    expect(host('nas1').vars.vip).toBe('198.18.0.100');
    expect(host('client1').vars.export_root).toBeUndefined();
  });

  it('remembers where each host was first listed', () => {
    expect(host('nas2').loc).toEqual({ file: invFile, line: 21, col: 13 });
  });

  it('without a file, is an implicit local localhost', () => {
    const implicit = loadInventory();
    expect([...implicit.hosts.keys()]).toEqual(['localhost']);
    expect(connectionFor(implicit.hosts.get('localhost')!).connection).toBe('local');
  });

  it('reports an unreadable file as a validation problem', () => {
    expect(() => loadInventory(path.join(here, 'fixtures/inv/nope.yml'))).toThrow(/nope\.yml:1:1: cannot read inventory/);
  });
});

describe('connectionFor', () => {
  it("uses Ansible's connection variables", () => {
    expect(connectionFor(host('nas1'))).toEqual({ host: 'nas1', connection: 'ssh', address: '198.18.0.11' });
    expect(connectionFor(host('ctl')).connection).toBe('local');
    expect(connectionFor(host('client1')).user).toBe('tester');
  });

  it('reads ssh options and resolves baton_known_hosts next to the inventory', () => {
    const c = connectionFor(host('nas2'));
    expect(c).toMatchObject({ address: '198.18.0.12', port: 2222, user: 'admin', hostKeyChecking: 'accept-new' });
    expect(c.knownHostsFile).toBe(path.join(here, 'fixtures/inv/keys/known_hosts'));
  });

  it('never turns host key checking off', () => {
    const h = { name: 'x', groups: ['all'], vars: { ansible_ssh_common_args: '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/tmp/kh' } };
    expect(connectionFor(h)).toMatchObject({ hostKeyChecking: 'accept-new', knownHostsFile: '/tmp/kh' });
    const strict = { name: 'y', groups: ['all'], vars: { ansible_ssh_common_args: "-o 'StrictHostKeyChecking yes' -oConnectTimeout=7" } };
    expect(connectionFor(strict)).toMatchObject({ hostKeyChecking: 'strict', connectTimeoutMs: 7000 });
  });

  it('parses -o forms', () => {
    expect([...sshOptions('-o A=1 -oB=2 -o C 3 -v')]).toEqual([['a', '1'], ['b', '2'], ['c', '3']]);
  });

  it('a jump host and a key given as ssh flags (-J, -i) are used, not dropped; -F is refused, not ignored', () => {
    // Before: every word that was not -o was skipped: no jump host, and the node's private address
    // dialled directly read as "unreachable" to status and the watcher.
    const host = { name: 'nas1', groups: ['all'], vars: { ansible_host: '10.0.0.5', ansible_ssh_common_args: '-C -J admin@bastion -i ~/.ssh/k -E /tmp/log -o ConnectTimeout=4' } };
    expect(connectionFor(host).sshOptions).toEqual(['proxyjump=admin@bastion', `identityfile=~/.ssh/k`, 'connecttimeout=4']);
    expect([...sshOptions('-Jadmin@b1 -ifile')]).toEqual([['proxyjump', 'admin@b1'], ['identityfile', 'file']]);
    expect(() => connectionFor({ ...host, vars: { ansible_ssh_common_args: '-F ./ssh.cfg' } })).toThrow(/-F \(another config file\).*not supported/);
  });
});

describe('selectHosts', () => {
  const names = (p: string, limit?: string) => selectHosts(inv, p, limit).hosts.map((h) => h.name);
  it('selects hosts, groups and everything', () => {
    expect(names('all')).toEqual(['ctl', 'nas1', 'nas2', 'client1']);
    expect(names('*')).toEqual(['ctl', 'nas1', 'nas2', 'client1']);
    expect(names('nas2')).toEqual(['nas2']);
    expect(names('storage')).toEqual(['nas1', 'nas2']);
  });

  it('combines with union, minus and intersection, in inventory order', () => {
    expect(names('clients:nas2')).toEqual(['nas1', 'nas2', 'client1']);
    expect(names('nas2,ctl')).toEqual(['ctl', 'nas2']);
    expect(names('storage:!nas1')).toEqual(['nas2']);
    expect(names('storage:&clients')).toEqual(['nas1']);
    expect(names('!storage:all')).toEqual(['ctl', 'client1']);
    expect(names('nas*')).toEqual(['nas1', 'nas2']);
    // The regex matches group "clients" too, which holds nas1.
    expect(names('~^c')).toEqual(['ctl', 'nas1', 'client1']);
    // From the start of the name, as Ansible's re.match: not "client1" for ~lient.
    expect(names('~lient')).toEqual([]);
    expect(names('~nas')).toEqual(['nas1', 'nas2']);
  });

  it('applies --limit as an intersection', () => {
    expect(names('all', 'nas*')).toEqual(['nas1', 'nas2']);
    expect(names('storage', 'client1')).toEqual([]);
  });

  it('reports names that match nothing', () => {
    expect(selectHosts(inv, 'storage:nas3:!web', 'nope*').unknown).toEqual(['nas3', 'web', 'nope*']);
  });
});

describe('an inventory directory with symlinks back up the tree', () => {
  const dir = tempDirEach('baton-inv-loop-');
  it('reads each directory once: two links to "." neither loop for ever nor fail with ELOOP', () => {
    writeFileSync(path.join(dir(), 'hosts.yml'), 'all:\n  hosts:\n    nas1:\n    nas2:\n');
    symlinkSync('.', path.join(dir(), 'a'));
    symlinkSync('.', path.join(dir(), 'b'));
    const inv = loadInventory([dir()]);
    expect([...inv.hosts.keys()].sort()).toEqual(['nas1', 'nas2']);
  });
});

describe('connection variables from INI inventories and scripts are checked as in YAML', () => {
  const dir = tempDirEach('baton-inv-conn-');
  it('a port that is no port, or a connection baton cannot make, is refused at its line; a good one loads', () => {
    const ini = path.join(dir(), 'hosts.ini');
    writeFileSync(ini, '[nodes]\nn1 ansible_port=abc\nn2 ansible_port=22x\nn3 ansible_connection=docker\nn4:99999\nn5 ansible_port=2222\n');
    expect(loadProblems(() => loadInventory([ini]))).toEqual([
      '2:4 "ansible_port" must be a port number (1-65535), got the string "abc"',
      '3:4 "ansible_port" must be a port number (1-65535), got the string "22x"',
      '4:4 "ansible_connection" must be one of "ssh", "local", "smart", got the string "docker"',
      '5:1 "ansible_port" must be a port number (1-65535), got a number (99999)',
    ]);
    // INI types values as Python literals: a numeric user or password is still one (as Ansible).
    writeFileSync(ini, '[nodes]\nn5 ansible_port=2222 ansible_user=1000 ansible_password=123456\n');
    expect(connectionFor(loadInventory([ini]).hosts.get('n5')!)).toMatchObject({ port: 2222, user: '1000', password: '123456' });
  });

  it('a script inventory too; and a port written as a string in YAML is held to 1-65535', () => {
    const script = path.join(dir(), 'inv.sh');
    writeFileSync(script, '#!/bin/sh\necho \'{"nodes": {"hosts": ["n1"]}, "_meta": {"hostvars": {"n1": {"ansible_port": "abc"}}}}\'\n', { mode: 0o755 });
    expect(loadProblems(() => loadInventory([script]))).toEqual([expect.stringMatching(/"ansible_port" must be a port number \(1-65535\), got the string "abc"/)]);
    const yml = path.join(dir(), 'hosts.yml');
    writeFileSync(yml, 'all:\n  hosts:\n    n1: { ansible_port: "99999" }\n');
    expect(loadProblems(() => loadInventory([yml]))).toEqual(['3:25 "ansible_port" must be a port number (1-65535), got the string "99999"']);
  });
});

describe("group_vars/ and host_vars/ beside the playbook, as ansible-playbook reads them", () => {
  const dir = tempDirEach('baton-inv-playdir-');
  it('each above the inventory directory\'s of the same kind (checked against ansible-playbook 2.14)', () => {
    const w = (rel: string, text: string) => {
      mkdirSync(path.dirname(path.join(dir(), rel)), { recursive: true });
      writeFileSync(path.join(dir(), rel), text);
    };
    w('inv/hosts.ini', '[nas]\nn1 ansible_connection=local\n');
    w('inv/group_vars/all.yml', 'a: inv_all\nb: inv_all\nc: inv_all\nd: inv_all\ne: inv_all\nf: inv_all\n');
    w('play/group_vars/all.yml', 'a: play_all\nb: play_all\nc: play_all\nd: play_all\n');
    w('inv/group_vars/nas.yml', 'b: inv_nas\nc: inv_nas\nd: inv_nas\n');
    w('play/group_vars/nas.yml', 'c: play_nas\nd: play_nas\n');
    w('inv/host_vars/n1.yml', 'd: inv_host\ne: inv_host\n');
    w('play/host_vars/n1.yml', 'e: play_host\n');
    const inv = loadInventory([path.join(dir(), 'inv/hosts.ini')], { playbookDir: path.join(dir(), 'play') });
    const v = inv.hosts.get('n1')!.vars;
    expect([v.a, v.b, v.c, v.d, v.e, v.f]).toEqual(['play_all', 'inv_nas', 'play_nas', 'inv_host', 'play_host', 'inv_all']);
    // A run of a playbook there reads them (cli/inputs.ts).
    w('play/site.yml', '- hosts: nas\n  steps:\n    - command: { argv: [echo, "{{ a }}"] }\n');
    expect(loadInputs(path.join(dir(), 'play/site.yml'), { inventory: [path.join(dir(), 'inv/hosts.ini')], extraVars: [] }).inventory.hosts.get('n1')!.vars.a).toBe('play_all');
    // The playbook's directory is the inventory's: read once, as the inventory's.
    const same = loadInventory([path.join(dir(), 'inv/hosts.ini')], { playbookDir: path.join(dir(), 'inv') });
    expect(same.hosts.get('n1')!.vars.e).toBe('inv_host');
  });
});

describe('connection vars that need -e or inventory_dir', () => {
  const dir = tempDirEach('baton-inv-connvars-');
  it('are worked out before any host is contacted: with -e, and inventory_dir as Ansible sets it', () => {
    const inv = path.join(dir(), 'hosts.yml');
    writeFileSync(inv, 'all:\n  hosts:\n    n1:\n      ansible_user: "{{ deploy_user }}"\n      ansible_ssh_private_key_file: "{{ inventory_dir }}/keys/id_ed25519"\n');
    const pb = path.join(dir(), 'site.yml');
    writeFileSync(pb, '- hosts: all\n  steps:\n    - command: { argv: [echo, hi] }\n');
    const inputs = loadInputs(pb, { inventory: [inv], extraVars: ['deploy_user=ops'] });
    const spec = connectionFor(inputs.inventory.hosts.get('n1')!);
    expect(spec.user).toBe('ops');
    expect(spec.privateKeyFile).toBe(path.join(dir(), 'keys/id_ed25519'));
    // Without -e: left as written, an error only where the run reaches the host (a host no play
    // selects must not stop the run), as before.
    const without = loadInputs(pb, { inventory: [inv], extraVars: [] });
    expect(() => connectionFor(without.inventory.hosts.get('n1')!)).toThrow(/deploy_user/);
  });

  it('-e wins, as in Ansible: over a connection var, and in an inventory template that reads it', () => {
    // Before: the connection came from the inventory alone (-e ansible_user=breakglass was
    // ignored), and templates were rendered once at load: -e iface=bond0 left vip_interface eth0.
    const inv = path.join(dir(), 'hosts2.yml');
    writeFileSync(inv, 'all:\n  vars:\n    iface: eth0\n    vip_interface: "{{ iface }}"\n    label: "{{ vip_interface }}-vip"\n    deploy_user: deploy\n  hosts:\n    n1:\n      ansible_user: "{{ deploy_user }}"\n      ansible_host: 10.0.0.1\n');
    const pb = path.join(dir(), 'site2.yml');
    writeFileSync(pb, '- hosts: all\n  steps:\n    - command: { argv: [echo, hi] }\n');
    const plain = loadInputs(pb, { inventory: [inv], extraVars: [] }).inventory.hosts.get('n1')!;
    expect([plain.vars.vip_interface, plain.vars.label, connectionFor(plain).user]).toEqual(['eth0', 'eth0-vip', 'deploy']);
    const n1 = loadInputs(pb, { inventory: [inv], extraVars: ['iface=bond0', 'ansible_host=10.0.0.9', 'deploy_user=ops'] }).inventory.hosts.get('n1')!;
    expect([n1.vars.vip_interface, n1.vars.label]).toEqual(['bond0', 'bond0-vip']);
    expect(connectionFor(n1)).toMatchObject({ address: '10.0.0.9', user: 'ops' });
    const breakglass = loadInputs(pb, { inventory: [inv], extraVars: ['ansible_user=breakglass'] }).inventory.hosts.get('n1')!;
    expect(connectionFor(breakglass).user).toBe('breakglass');
  });

  it('-e over a plain inventory var reaches what reads the host\'s vars (placement), and templates keep their magic vars', () => {
    const inv = path.join(dir(), 'hosts3.yml');
    writeFileSync(inv, 'all:\n  vars:\n    vip: 198.18.0.200/24\n    vip_interface: eth0\n    iface: eth0\n    label: "{{ inventory_hostname_short }}-{{ iface }}-{{ group_names | join(\',\') }}"\n  children:\n    nodes:\n      hosts:\n        nas1.example: { ansible_host: 10.0.0.1 }\n        nas2.example: { ansible_host: 10.0.0.2 }\n');
    const pb = path.join(dir(), 'site3.yml');
    writeFileSync(pb, '- hosts: all\n  steps:\n    - command: { argv: [echo, hi] }\n');
    const inputs = loadInputs(pb, { inventory: [inv], extraVars: ['vip_interface=bond0', 'iface=bond1'] });
    const [g] = loadServiceGroups(inputs.inventory);
    // Before: the group (and so service-move) kept eth0 while the nfs-* playbooks used bond0.
    expect(g!.interface).toBe('bond0');
    expect(inputs.inventory.hosts.get('nas1.example')!.vars.label).toBe('nas1-bond1-nodes');
  });
});
