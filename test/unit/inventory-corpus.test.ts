/**
 * Real-world-shaped inventories (test/unit/fixtures/inventories), each loaded by baton and by
 * ansible-core's own `ansible-inventory --list`, live: the host list, every group's members and
 * the merged vars of two hosts must be the same. Nothing here is copied from a previous run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadInventory } from '../../src/inventory/load.js';
import type { Inventory } from '../../src/inventory/model.js';
import { hostsOfGroup } from '../../src/inventory/pattern.js';
import { readVaultSecret } from '../../src/inventory/vault.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = (...p: string[]) => path.join(here, 'fixtures/inventories', ...p);

const ansibleInventory = spawnSync('ansible-inventory', ['--version'], { encoding: 'utf8' });
const haveAnsible = ansibleInventory.status === 0;
if (!haveAnsible) {
  // Loud on purpose: these tests compare with Ansible itself and mean nothing without it.
  console.error('\n!! ansible-inventory is not installed: the inventory corpus cannot be compared with Ansible.\n!! Install it with: sudo scripts/install-test-deps.sh (Debian package ansible-core)\n');
}

interface Listing {
  _meta: { hostvars: Record<string, Record<string, unknown>> };
  [group: string]: { hosts?: string[]; children?: string[] } | Listing['_meta'];
}

function ansibleList(sources: string[], vaultFile?: string): Listing {
  const args = [...sources.flatMap((s) => ['-i', s]), '--list', ...(vaultFile ? ['--vault-password-file', vaultFile] : [])];
  const out = execFileSync('ansible-inventory', args, {
    encoding: 'utf8',
    // Away from any ansible.cfg a developer may have in the checkout.
    cwd: os.tmpdir(),
    env: { ...process.env, ANSIBLE_INVENTORY_UNPARSED_FAILED: 'true', ANSIBLE_NOCOLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out) as Listing;
}

/** Group → every host in it (children included), from ansible-inventory's tree. */
function ansibleMembers(list: Listing): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const collect = (g: string, seen = new Set<string>()): Set<string> => {
    const node = list[g] as { hosts?: string[]; children?: string[] } | undefined;
    for (const h of node?.hosts ?? []) seen.add(h);
    for (const c of node?.children ?? []) collect(c, seen);
    return seen;
  };
  for (const g of Object.keys(list)) if (g !== '_meta') out[g] = [...collect(g)].sort();
  return out;
}

function batonMembers(inv: Inventory): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const g of inv.groups.keys()) {
    const members = [...hostsOfGroup(inv, g)].sort();
    // ansible-inventory leaves out groups with no host and no child group.
    if (members.length || inv.groups.get(g)!.children.length) out[g] = members;
  }
  return out;
}

/** A host's vars as ansible-inventory shows them: templates as written, vault values opened. */
function batonRawVars(inv: Inventory, host: string): Record<string, unknown> {
  const h = inv.hosts.get(host)!;
  return JSON.parse(JSON.stringify({ ...h.vars, ...(h.templates ?? {}) })) as Record<string, unknown>;
}

/** ansible-inventory prints `!vault` values still encrypted: open them with ansible-vault itself. */
function openedByAnsible(vars: Record<string, unknown>, vaultFile?: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(vars)) {
    const sealed = v && typeof v === 'object' ? (v as Record<string, unknown>).__ansible_vault : undefined;
    out[k] =
      typeof sealed === 'string' && vaultFile
        ? execFileSync('ansible-vault', ['decrypt', '--vault-password-file', vaultFile, '--output', '-'], { input: sealed, encoding: 'utf8', cwd: os.tmpdir(), stdio: ['pipe', 'pipe', 'pipe'] })
        : v;
  }
  return out;
}

interface Case {
  name: string;
  sources: string[];
  compare: [string, string];
  vault?: string;
  /** Extra checks on what baton loaded, beyond agreeing with Ansible. */
  also?: (inv: Inventory) => void;
}

const cases: Case[] = [
  {
    name: "01 INI from Ansible's guide: ranges, host:port, ssh aliases, children declared later",
    sources: [dir('01-ini-docs/hosts')],
    compare: ['jumper', 'host2'],
    also: (inv) => {
      expect([...inv.hosts.keys()]).toContain('www49.example.com');
      expect(inv.hosts.has('www02.example.com')).toBe(false);
      expect(inv.hosts.get('badwolf.example.com')!.vars.ansible_port).toBe(5309);
      expect(inv.hosts.get('db-f.example.com')!.groups).toContain('dbservers');
    },
  },
  { name: '02 YAML twin: ranges and a port in host keys, nested children with vars', sources: [dir('02-yaml-docs/inventory.yml')], compare: ['www05.example.com', 'db-c.example.com'] },
  {
    name: '03 kubespray-shaped INI: [all] with vars, children groups, typed :vars',
    sources: [dir('03-kubespray-ini/inventory.ini')],
    compare: ['node5', 'node1'],
    also: (inv) => expect(inv.hosts.get('node5')!.vars.node_labels).toEqual({ disk: 'ssd', zone: 1 }),
  },
  {
    name: '04 k3s-shaped YAML: IP host names, templated group vars',
    sources: [dir('04-k3s-yaml/inventory.yml')],
    compare: ['192.0.2.12', '192.0.2.21'],
  },
  {
    name: '05 a directory: INI and YAML files, ignored extensions, group_vars/ dirs and host_vars/',
    sources: [dir('05-directory')],
    compare: ['web1', 'db1'],
    also: (inv) => {
      expect(inv.hosts.has('never-loaded')).toBe(false);
      expect(inv.hosts.get('web2')!.vars.doc_root).toBe('/srv/www');
    },
  },
  {
    name: '06 a vaulted host_vars file and an inline !vault value',
    sources: [dir('06-vault/inventory.yml')],
    vault: dir('06-vault/vault-password'),
    compare: ['nas1', 'nas2'],
    also: (inv) => {
      expect(inv.hosts.get('nas1')!.vars.bmc_password).toBe('s3cret-nas1-bmc');
      expect(inv.secretVars).toEqual(new Set(['bmc_address', 'bmc_password', 'shared_key']));
      expect(inv.secretValues!.has('s3cret-nas1-bmc')).toBe(true);
      expect(inv.secretValues!.has('storage-shared-key')).toBe(true);
    },
  },
  { name: '07 an executable inventory script with _meta.hostvars', sources: [dir('07-script/inventory.sh')], compare: ['nas2.dc1', 'client1.dc1'] },
  { name: '08 an inventory script without _meta (asked --host per host)', sources: [dir('08-script-host/inventory')], compare: ['db1', 'db2'] },
  {
    name: '09 -i twice: later source adds hosts and wins, group_vars next to each source',
    sources: [dir('09-multi-source/a/hosts.ini'), dir('09-multi-source/b/hosts.yml')],
    compare: ['nas1', 'nas2'],
    also: (inv) => {
      expect(inv.hosts.get('nas2')!.vars.ansible_host).toBe('198.51.100.82');
      expect(inv.hosts.get('nas1')!.vars.layer).toBe('b');
    },
  },
  { name: '10 kolla-shaped multinode: :children before groups, local host, ranges', sources: [dir('10-kolla-multinode/multinode')], compare: ['compute02', 'control01.example.org'] },
  {
    name: '11 INI values typed as Python literals, quotes, comments',
    sources: [dir('11-ini-values/hosts.cfg')],
    compare: ['nas1', 'nas3'],
    also: (inv) => {
      expect(inv.hosts.get('nas2')!.vars).toMatchObject({ mode: '0755', octal: 493, big: 1000, hex: 31, neg: -3 });
    },
  },
  { name: '12 a host list: -i "a,b:2222,"', sources: ['nas1.example.com,nas2.example.com:2222,198.51.100.9,'], compare: ['nas2.example.com', '198.51.100.9'] },
  { name: '14 templated vars (as written, like ansible-inventory shows them)', sources: [dir('14-templates/inventory.yml')], compare: ['nas1', 'nas2'] },
  { name: '15 stale vars files beside newer ones: only the first of NAME, NAME/, NAME.yml, NAME.yaml, NAME.json is read', sources: [dir('15-stale-vars-files/inventory.yml')], compare: ['nas1', 'nas2'] },
  { name: '13 two hosts from four sources of four kinds', sources: [dir('01-ini-docs/hosts'), dir('05-directory'), dir('07-script/inventory.sh'), dir('04-k3s-yaml/inventory.yml')], compare: ['web1', 'nas1.dc1'] },
];

/** What Ansible itself renders for `expr` on `host` (the debug action runs on the controller, no connection). */
function ansibleRenders(source: string, host: string, names: string[]): unknown {
  const out = execFileSync('ansible', [host, '-i', source, '-o', '-m', 'debug', '-a', `var=[${names.join(',')}]`], {
    encoding: 'utf8',
    cwd: os.tmpdir(),
    env: { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_LOAD_CALLBACK_PLUGINS: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const json = JSON.parse(out.slice(out.indexOf('=>') + 2)) as Record<string, unknown>;
  return json[`[${names.join(',')}]`];
}

describe('inventory templates, rendered as Ansible renders them', () => {
  it('gives the same values as ansible -m debug, and keeps play-dependent ones for later', () => {
    expect(haveAnsible, 'ansible-core is missing: install it (scripts/install-test-deps.sh)').toBe(true);
    const source = dir('14-templates/inventory.yml');
    const inv = loadInventory(source);
    const names = ['ansible_host', 'export_dir', 'first_nas', 'iface', 'literal'];
    for (const h of ['nas1', 'nas2']) {
      const mine = names.map((n) => inv.hosts.get(h)!.vars[n]);
      expect(mine, `rendered vars of ${h}`).toEqual(ansibleRenders(source, h, names));
    }
    // A subscript that is itself a variable (hostvars[peer]) is Jinja baton's template engine
    // does not speak: the var is kept as written and marked deferred, never sent half-rendered.
    expect(inv.hosts.get('nas1')!.deferred).toEqual({ peer_address: "{{ hostvars[peer]['ansible_host'] }}" });
  }, 60_000);
});

describe.each(cases)('inventory corpus: $name', (c) => {
  it('loads the same hosts, groups and vars as ansible-inventory --list', () => {
    expect(haveAnsible, 'ansible-inventory is missing: install ansible-core (scripts/install-test-deps.sh)').toBe(true);
    const vault = c.vault ? [readVaultSecret(c.vault, 'password-file')] : undefined;
    const inv = loadInventory(c.sources, { vault });
    const list = ansibleList(c.sources, c.vault);
    const ansibleHosts = ansibleMembers(list).all!;
    expect([...inv.hosts.keys()].sort()).toEqual(ansibleHosts);
    expect(batonMembers(inv)).toEqual(ansibleMembers(list));
    for (const h of c.compare) {
      expect(inv.hosts.has(h), `host ${h}`).toBe(true);
      expect(batonRawVars(inv, h), `vars of ${h}`).toEqual(openedByAnsible(list._meta.hostvars[h] ?? {}, c.vault));
    }
    c.also?.(inv);
  }, 60_000);
});
