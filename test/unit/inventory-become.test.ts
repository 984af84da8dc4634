import { describe, expect, it } from 'vitest';
import { connectionFor } from '../../src/inventory/connection.js';
import { withBecome, withBecomeKeyword } from '../../src/transport/become.js';
import type { ExecOptions, Transport } from '../../src/transport/transport.js';
import { remoteCommand } from '../../src/transport/ssh.js';

const host = (vars: Record<string, unknown>) => ({ name: 'nas1', groups: ['all'], vars });

describe('become argv', () => {
  it('wraps the argv in sudo -n -u USER --, root by default, only when asked', () => {
    expect(withBecome(['umount', '/srv'], {}).argv).toEqual(['umount', '/srv']);
    expect(withBecome(['umount', '/srv'], { become: {} }).argv).toEqual(['sudo', '-n', '-u', 'root', '--', 'umount', '/srv']);
    expect(withBecome(['id'], { become: { user: 'nfs' } }).argv).toEqual(['sudo', '-n', '-u', 'nfs', '--', 'id']);
    expect(withBecome(['id'], { become: false }).argv).toEqual(['id']);
  });

  it("lets the inventory's ansible_become and ansible_become_user win over the play's", () => {
    expect(withBecome(['id'], {}, { become: { enabled: true } }).argv).toEqual(['sudo', '-n', '-u', 'root', '--', 'id']);
    expect(withBecome(['id'], { become: { user: 'x' } }, { become: { enabled: false } }).argv).toEqual(['id']);
    expect(withBecome(['id'], { become: { user: 'x' } }, { become: { user: 'y' } }).argv).toEqual(['sudo', '-n', '-u', 'y', '--', 'id']);
    expect(withBecome(['id'], {}, { become: { user: 'y' } }).argv).toEqual(['id']);
  });

  it('carries the environment inside sudo as data, and stays quoted over ssh', () => {
    const p = withBecome(['sh', '-c', 'echo "$A"'], { become: {}, env: { A: '$(reboot); `id`' } });
    expect(p.argv).toEqual(['sudo', '-n', '-u', 'root', '--', 'env', '--', 'A=$(reboot); `id`', 'sh', '-c', 'echo "$A"']);
    expect(p.env).toBeUndefined();
    expect(remoteCommand(p.argv)).toContain(`'A=$(reboot); \`id\`'`);
    expect(() => withBecome(['id'], { become: { user: '-s' } })).toThrow(/invalid user/);
    expect(() => withBecome(['x=y'], { become: {}, env: { A: '1' } })).toThrow(/cannot contain "="/);
  });
});

describe('connectionFor: Ansible aliases and become', () => {
  it('reads ansible_ssh_host/_port/_user, and they win over the newer names, as in Ansible', () => {
    expect(connectionFor(host({ ansible_ssh_host: '198.51.100.5', ansible_ssh_port: 2200, ansible_ssh_user: 'ops' }))).toMatchObject({
      address: '198.51.100.5',
      port: 2200,
      user: 'ops',
    });
    // Ansible 2.14 with both (ansible -vvv): "ESTABLISH SSH CONNECTION FOR USER: oldu" to the
    // ansible_ssh_host, on its ansible_ssh_port. Before, baton went to the other address as the other user.
    expect(connectionFor(host({ ansible_ssh_host: 'old', ansible_host: 'new', ansible_ssh_port: '1', ansible_port: 2, ansible_ssh_user: 'oldu', ansible_user: 'newu' }))).toMatchObject({
      address: 'old',
      port: 1,
      user: 'oldu',
    });
  });

  it('takes become from the inventory, typed as Ansible types booleans', () => {
    expect(connectionFor(host({ ansible_become: 'yes', ansible_become_user: 'nfs' })).become).toEqual({ enabled: true, user: 'nfs' });
    expect(connectionFor(host({ ansible_become: 'False' })).become).toEqual({ enabled: false });
    expect(connectionFor(host({})).become).toBeUndefined();
    expect(() => connectionFor(host({ ansible_become: 'maybe' }))).toThrow(/must be a boolean/);
    expect(() => connectionFor(host({ ansible_become_method: 'su' }))).toThrow(/sudo -n/);
  });

  it('does not render a value again: a rendered or plain value holding {{ stays data', () => {
    expect(connectionFor(host({ ansible_password: 'p{{ ansible_host }}q', ansible_host: 'h' })).password).toBe('p{{ ansible_host }}q');
  });
});

describe('withBecomeKeyword: what the engine hands a step', () => {
  it("adds the play's or step's become to every command, unless the command says otherwise", async () => {
    const seen: Array<ExecOptions['become']> = [];
    const base: Transport = {
      host: 'nas1',
      kind: 'local',
      connect: async () => {},
      close: async () => {
        throw new Error('the pool owns the connection');
      },
      exec: async (argv, opts = {}) => {
        seen.push(opts.become);
        return { argv, code: 0, signal: null, stdout: '', stderr: '', timedOut: false, durationMs: 0 };
      },
    };
    expect(withBecomeKeyword(base, undefined)).toBe(base);
    const t = withBecomeKeyword(base, { user: 'nfs' });
    await t.exec(['id']);
    await t.exec(['id'], { timeoutMs: 5 });
    await t.exec(['id'], { become: false });
    await t.close();
    expect(seen).toEqual([{ user: 'nfs' }, { user: 'nfs' }, false]);
  });
});
