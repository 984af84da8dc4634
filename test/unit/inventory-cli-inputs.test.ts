/** The CLI's inputs: `-i` repeated (merged in order), host lists, vault passwords, all before any node is touched. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inventorySources, loadInputs } from '../../src/cli/inputs.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = (...p: string[]) => path.join(here, 'fixtures/inventories', ...p);
let dir: string;
let playbook: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'baton-inputs-'));
  playbook = path.join(dir, 'check.yml');
  writeFileSync(playbook, ['- name: every host', '  hosts: all', '  steps:', '    - name: pgrep', '      command: [pgrep, -x, ganesha.nfsd]', ''].join('\n'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadInputs and -i', () => {
  it('merges every -i in order and keeps them all', () => {
    const a = fixture('09-multi-source/a/hosts.ini');
    const b = fixture('09-multi-source/b/hosts.yml');
    const inputs = loadInputs(playbook, { inventory: [a, b], extraVars: [] });
    expect(inputs.inventorySources).toEqual([a, b]);
    expect(inputs.inventoryFile).toBe(a);
    expect([...inputs.inventory.hosts.keys()].sort()).toEqual(['nas1', 'nas2', 'nas3']);
    expect(inputs.inventory.hosts.get('nas2')!.vars.ansible_host).toBe('198.51.100.82');
  });

  it('keeps a host list as written and resolves paths', () => {
    expect(inventorySources(['n1,n2:2222,', 'rel/inv.yml'])).toEqual(['n1,n2:2222,', path.resolve('rel/inv.yml')]);
  });

  it('opens vaulted inventories with --vault-password-file, and says how when it is missing', () => {
    const inv = fixture('06-vault/inventory.yml');
    expect(() => loadInputs(playbook, { inventory: [inv], extraVars: [] })).toThrow(/is encrypted with Ansible Vault; pass --vault-password-file/);
    const inputs = loadInputs(playbook, { inventory: [inv], extraVars: [], vaultPasswordFile: [fixture('06-vault/vault-password')] });
    expect(inputs.inventory.hosts.get('nas1')!.vars.bmc_password).toBe('s3cret-nas1-bmc');
    expect(() => loadInputs(playbook, { inventory: [inv], extraVars: [], vaultId: [`dev@${path.join(dir, 'missing')}`] })).toThrow(/cannot read vault password file/);
  });
});
