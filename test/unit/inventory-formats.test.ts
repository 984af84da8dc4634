/**
 * The inventory readers' own rules and their error messages: where a problem is (file:line:col
 * in every format), what it is, and what to do about it. Vault files are made live with
 * ansible-vault when it is installed, as well as read from a committed fixture.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandHostRange, parseHostPattern } from '../../src/inventory/host-pattern.js';
import { loadInventory } from '../../src/inventory/load.js';
import { iniValue } from '../../src/inventory/py-literal.js';
import { shlexSplit } from '../../src/inventory/shlex.js';
import { decryptVault, readVaultSecret } from '../../src/inventory/vault.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = (...p: string[]) => path.join(here, 'fixtures/inventories', ...p);
let dir: string;
const write = (name: string, text: string, mode?: number): string => {
  const f = path.join(dir, name);
  mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(f, text);
  if (mode !== undefined) chmodSync(f, mode);
  return f;
};
const problemsOf = (sources: string | string[], opts?: Parameters<typeof loadInventory>[1]): string => {
  try {
    loadInventory(sources, opts);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected the inventory to be refused');
};

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'baton-inv-formats-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('host patterns', () => {
  it('expands numeric, padded, stepped, alphabetic and repeated ranges', () => {
    expect(expandHostRange('www[01:05:2].example.com')).toEqual(['www01.example.com', 'www03.example.com', 'www05.example.com']);
    expect(expandHostRange('db-[a:c]')).toEqual(['db-a', 'db-b', 'db-c']);
    expect(expandHostRange('r[1:2]n[0:1]')).toEqual(['r1n0', 'r1n1', 'r2n0', 'r2n1']);
    expect(() => expandHostRange('x[01:100]')).toThrow(/same width/);
  });
  it('a letter range counts as its letters: five [a:Z] in one name are refused at once, not expanded until memory runs out', () => {
    expect(expandHostRange('n[a:Z]')).toHaveLength(52);
    expect(() => parseHostPattern('h[a:Z][a:Z][a:Z][a:Z]')).toThrow(/stands for 7311616 hosts; at most 100000/);
  });
  it('hosts add up across patterns: an inventory of many large ranges is refused at the host that is one too many', () => {
    // Before: 61 lines of hN-[1:100000] took 39 s and ran out of memory.
    const f = write('many.ini', Array.from({ length: 3 }, (_, i) => `h${i}-[1:100000]`).join('\n') + '\n');
    expect(problemsOf(f)).toMatch(new RegExp(`${f}:3:1: more than 200000 hosts in the inventory \\(h2-1 would be one more\\)`));
  });
  it('splits host:port only where Ansible does', () => {
    expect(parseHostPattern('badwolf.example.com:5309')).toEqual({ names: ['badwolf.example.com'], port: 5309 });
    expect(parseHostPattern('[2001:db8::1]:2200')).toEqual({ names: ['2001:db8::1'], port: 2200 });
    expect(parseHostPattern('2001:db8::1')).toEqual({ names: ['2001:db8::1'], port: undefined });
    expect(parseHostPattern('node[1:2]:2222')).toEqual({ names: ['node1', 'node2'], port: 2222 });
  });
});

describe('INI values and words', () => {
  it('types values as Python literals, else keeps the text', () => {
    expect(iniValue('5')).toBe(5);
    expect(iniValue('True')).toBe(true);
    expect(iniValue('true')).toBe('true');
    expect(iniValue('0755')).toBe('0755');
    expect(iniValue("{'a': [1, (2, 3)], 1: None}")).toEqual({ a: [1, [2, 3]], '1': null });
    expect(iniValue('1, 2')).toEqual([1, 2]);
    expect(iniValue("'a' \"b\"")).toBe('ab');
    expect(iniValue('5 # note')).toBe(5);
    expect(iniValue('__import__("os")')).toBe('__import__("os")');
  });
  it('splits host lines as a POSIX shell would, # ending the line', () => {
    expect(shlexSplit(`h a="x y" b='q"r' c=d\\ e f=g#h i=j`)).toEqual(['h', 'a=x y', `b=q"r`, 'c=d e', 'f=g']);
  });
});

describe('INI errors say file:line:col', () => {
  it('reports an undeclared child group, a :vars of no group, a bad section and a bad host word', () => {
    const f = write('bad.ini', ['[web]', 'w1', '', '[all:children]', 'web', 'dbs', '', '[ghost:vars]', 'x=1', '[web:weird]', '[web]', 'w2 novalue', '  w3 port=x[1'].join('\n'));
    const msg = problemsOf(f);
    expect(msg).toContain(`${f}:6:1: [all:children] names group "dbs", which this file never declares`);
    expect(msg).toContain(`${f}:8:1: section [ghost:vars] sets vars of group "ghost"`);
    expect(msg).toContain(`${f}:10:1: section [web:weird] has an unknown type "weird"`);
    expect(msg).toContain(`${f}:12:4: expected key=value after host w2, got "novalue"`);
  });
  it('refuses a group that would contain itself', () => {
    const f = write('loop.ini', ['[a:children]', 'b', '[b:children]', 'a'].join('\n'));
    expect(problemsOf(f)).toMatch(/loop\.ini:\d+:\d+: group "a" cannot be a child of "b"/);
  });
});

describe('YAML, scripts, directories', () => {
  it('reports a bad range in a YAML host key at the key', () => {
    const f = write('r.yml', 'all:\n  hosts:\n    "x[1:]":\n');
    expect(problemsOf(f)).toContain(`${f}:3:5: bad host "x[1:]": "x[1:]": the host range has no end value`);
  });
  it('names an inventory plugin config instead of misreading it', () => {
    const f = write('aws_ec2.yml', 'plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n');
    expect(problemsOf(f)).toContain('ansible-inventory -i');
  });
  it('an executable YAML inventory (a share or checkout that sets the execute bit) is data, never run as shell code', () => {
    const marker = path.join(dir, 'PWNED');
    // Before: run as a script, and with no #! line by /bin/sh, which ran the touch in the note.
    const f = write('exec/inv.yml', `all:\n  hosts:\n    nas1:\n      note: "see ticket; touch ${marker}"\n`, 0o755);
    const inv = loadInventory(f);
    expect(inv.hosts.get('nas1')?.vars.note).toBe(`see ticket; touch ${marker}`);
    expect(existsSync(marker), 'nothing ran').toBe(false);
  });
  it('an executable vault password file that is no script is refused without running it or showing the password', () => {
    const f = write('exec/vpass', 'Sup3rSecretVaultPw\n', 0o755);
    let message = '';
    try {
      readVaultSecret(f, 'password-file');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/has its execute bit but is not a script.*chmod -x/);
    expect(message).not.toContain('Sup3rSecretVaultPw');
  });
  it("group_vars/all wins over a group's vars written in the inventory, as in Ansible", () => {
    // Before: [nas:vars] won, and the VIP went up on bond0 where Ansible (and the site) says eth0.
    const f = write('prec/hosts.ini', '[nas]\nnas1\n\n[nas:vars]\nvip_interface=bond0\nonly_inline=yes\n');
    write('prec/group_vars/all.yml', 'vip_interface: eth0\n');
    write('prec/group_vars/nas.yml', 'only_inline: no-from-file\n');
    const vars = loadInventory(f).hosts.get('nas1')!.vars;
    expect(vars.vip_interface).toBe('eth0');
    expect(vars.only_inline, 'group_vars/GROUP still wins over both').toBe('no-from-file');
  });
  it('a dangling symlink in group_vars or host_vars is passed over, as Ansible does', () => {
    // Before: a raw ENOENT from stat, no file:line:col, and validate exited 3.
    const f = write('dangling/hosts.ini', '[nas]\nnas1\n');
    write('dangling/group_vars/all/aa.yml', 'kept: true\n');
    symlinkSync(path.join(dir, 'no-such-file.yml'), path.join(dir, 'dangling/group_vars/all/zz.yml'));
    mkdirSync(path.join(dir, 'dangling/host_vars'), { recursive: true });
    symlinkSync(path.join(dir, 'no-such-file.yml'), path.join(dir, 'dangling/host_vars/nas1.yml'));
    expect(loadInventory(f).hosts.get('nas1')?.vars.kept).toBe(true);
  });
  it('templates that double at each level are stopped at a size, at the var, not run until memory runs out', () => {
    // Before: this 806-byte inventory (23 levels, 12 hosts) took 3.2 GB and 15 s; 27 levels ended in
    // a bare RangeError with no place.
    const levels = Array.from({ length: 23 }, (_, i) => `    a${i + 1}: "{{ a${i} }}{{ a${i} }}"`).join('\n');
    const hosts = Array.from({ length: 12 }, (_, i) => `    h${i}:`).join('\n');
    const f = write('bomb.yml', `all:\n  vars:\n    a0: xxxxxxxxxxxxxxxx\n${levels}\n  hosts:\n${hosts}\n`);
    expect(problemsOf(f)).toMatch(new RegExp(`${f}:\\d+:\\d+: .*over 1048576 characters after templating`));
    // One expression that doubles is stopped too.
    const joins = Array.from({ length: 23 }, (_, i) => `    a${i + 1}: "{{ [a${i}, a${i}] | join('') }}"`).join('\n');
    const g = write('bomb2.yml', `all:\n  vars:\n    a0: xxxxxxxxxxxxxxxx\n${joins}\n  hosts:\n${hosts}\n`);
    expect(problemsOf(g)).toMatch(new RegExp(`${g}:\\d+:\\d+: .*over 1048576 characters after templating`));
  });
  it("says what a failing inventory script said", () => {
    const f = write('broken.sh', '#!/bin/sh\necho "cannot reach the CMDB" >&2\nexit 3\n', 0o755);
    expect(problemsOf(f)).toContain(`${f}:1:1: inventory script \`${f} --list\` exited 3: cannot reach the CMDB`);
  });
  it('reports a missing source, and reads -i DIR', () => {
    expect(problemsOf(path.join(dir, 'nope.yml'))).toMatch(/nope\.yml:1:1: cannot read inventory/);
    const inv = loadInventory(fixture('05-directory'));
    expect(inv.sources).toEqual([fixture('05-directory')]);
    expect([...inv.hosts.keys()].sort()).toEqual(['db1', 'mon1', 'web1', 'web2', 'web3']);
  });
});

describe('inventory templates', () => {
  it('renders inventory-only templates once; a rendered value is data; play-dependent ones wait', () => {
    const f = write('t.yml', [
      'all:',
      '  vars:',
      '    domain: example.com',
      '    ansible_host: "{{ inventory_hostname }}.{{ domain }}"',
      '    trap: "{{ \'{{\' }} danger }}"',
      '    needs_play: "{{ vip }}"',
      '    greeting: "{{ trap }}"',
      '  hosts:',
      '    nas1:',
      '      peer: "{{ hostvars[\'nas2\'].ansible_host }}"',
      '    nas2:',
    ].join('\n'));
    const inv = loadInventory(f);
    const h = inv.hosts.get('nas1')!;
    expect(h.vars.ansible_host).toBe('nas1.example.com');
    expect(h.vars.peer).toBe('nas2.example.com');
    expect(h.vars.needs_play).toBe('{{ vip }}');
    expect(h.deferred).toEqual({ needs_play: '{{ vip }}' });
    expect(h.varOrigins!.ansible_host).toEqual({ file: f, line: 4, col: 19 });
  });
  it('refuses a var defined in terms of itself, where it is written', () => {
    const f = write('cycle.yml', 'all:\n  vars:\n    a: "{{ b }}"\n    b: "{{ a }}"\n  hosts:\n    h1:\n');
    expect(problemsOf(f)).toMatch(new RegExp(`${f.replace(/[.]/g, '\\.')}:3:8: inventory var "a" of host h1: .*itself`));
  });
});

describe('Ansible Vault', () => {
  const password = fixture('06-vault/vault-password');
  it('says a vaulted file is vaulted, and how to open it', () => {
    const msg = problemsOf(fixture('06-vault/inventory.yml'));
    expect(msg).toContain(`${fixture('06-vault/host_vars/nas1.yml')}:1:1: ${fixture('06-vault/host_vars/nas1.yml')} is encrypted with Ansible Vault; pass --vault-password-file`);
    expect(msg).toContain(`${fixture('06-vault/group_vars/all.yml')}:2:13: the value of "shared_key" is encrypted with Ansible Vault; pass --vault-password-file`);
  });
  it('says a wrong password is wrong, naming where it came from', () => {
    const wrong = write('wrong-pass', 'not-it\n');
    expect(problemsOf(fixture('06-vault/inventory.yml'), { vault: [readVaultSecret(wrong, 'password-file')] })).toContain(`none of the vault passwords given opens it (tried ${wrong})`);
  });
  it('opens a file ansible-vault encrypts now, and a vault id label', () => {
    const have = spawnSync('ansible-vault', ['--version']).status === 0;
    expect(have, 'ansible-vault is missing: install ansible-core (scripts/install-test-deps.sh)').toBe(true);
    const plain = write('live/secret.yml', 'ipmi_password: "p@ss: w0rd {{ not a template }}"\n');
    const pass = write('live/pass', 'live-vault-password\n');
    execFileSync('ansible-vault', ['encrypt', '--vault-id', `bmc@${pass}`, plain], { cwd: os.tmpdir(), stdio: 'ignore' });
    const text = execFileSync('cat', [plain], { encoding: 'utf8' });
    expect(text.startsWith('$ANSIBLE_VAULT;1.2;AES256;bmc')).toBe(true);
    const secrets = [readVaultSecret(password, 'password-file'), readVaultSecret(`bmc@${pass}`, 'vault-id')];
    expect(decryptVault(text, secrets, 'secret.yml')).toBe('ipmi_password: "p@ss: w0rd {{ not a template }}"\n');
  }, 60_000);
});

describe('become in the inventory', () => {
  it('refuses a method other than sudo, and an ansible_become that is no boolean, where they are written', () => {
    const f = write('become.ini', ['[nas]', 'nas1 ansible_become_method=su', 'nas2 ansible_become=maybe'].join('\n'));
    const msg = problemsOf(f);
    expect(msg).toContain(`${f}:2:6: ansible_become_method "su" (host nas1): baton becomes another user with "sudo -n" only`);
    expect(msg).toContain(`${f}:3:6: ansible_become must be a boolean (true/false, yes/no), got "maybe" (host nas2)`);
  });
});

describe('vault: whole inventories and nested values', () => {
  it('opens a vault-encrypted INI inventory and a !vault value inside a mapping; both are secrets', () => {
    const have = spawnSync('ansible-vault', ['--version']).status === 0;
    expect(have, 'ansible-vault is missing: install ansible-core (scripts/install-test-deps.sh)').toBe(true);
    const pass = write('v2/pass', 'second-password\n');
    const ini = write('v2/hosts', '[bmc]\nnas9 ipmi_password=hunter2-nas9\n');
    execFileSync('ansible-vault', ['encrypt', '--vault-password-file', pass, ini], { cwd: os.tmpdir(), stdio: 'ignore' });
    const sealed = execFileSync('ansible-vault', ['encrypt_string', '--vault-password-file', pass, 'nested-token-value', '--name', 'token'], { cwd: os.tmpdir(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    write('v2/group_vars/bmc.yml', `bmc:\n  user: admin\n  ${sealed.trim().split('\n').join('\n  ')}\n`);
    const inv = loadInventory(ini, { vault: [readVaultSecret(pass, 'password-file')] });
    expect(inv.hosts.get('nas9')!.vars.ipmi_password).toBe('hunter2-nas9');
    expect(inv.hosts.get('nas9')!.vars.bmc).toEqual({ user: 'admin', token: 'nested-token-value' });
    expect([...inv.secretVars!].sort()).toEqual(['bmc', 'ipmi_password']);
    expect(inv.secretValues!.has('hunter2-nas9') && inv.secretValues!.has('nested-token-value')).toBe(true);
    expect(problemsOf(ini)).toContain(`${ini}:1:1: inventory ${ini} is encrypted with Ansible Vault; pass --vault-password-file`);
  }, 60_000);
});
