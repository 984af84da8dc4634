import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ConnectionSpec } from '../../src/inventory/model.js';
import { parseJump, resolveTarget } from '../../src/transport/ssh-config.js';

let dir: string;
let cfg: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'baton-sshcfg-'));
  cfg = join(dir, 'config');
  writeFileSync(
    cfg,
    [
      'Host nas1',
      '  HostName 10.0.0.11',
      '  Port 2222',
      '  User admin',
      '  IdentityFile ~/.ssh/nas_key',
      '  UserKnownHostsFile /etc/baton/kh1 /etc/baton/kh2',
      '  StrictHostKeyChecking accept-new',
      'Host nas2',
      '  HostName 10.0.0.12',
      '  ProxyJump ops@bastion:2200',
      'Host chain',
      '  ProxyJump hop1,hop2',
      'Host hop1',
      '  HostName 192.0.2.1',
      '  ProxyJump ignored-in-a-chain-after-first',
      'Host *',
      '  User fallback',
      '  Port 22',
      '',
    ].join('\n'),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const spec = (over: Partial<ConnectionSpec>): ConnectionSpec => ({ host: 'n', connection: 'ssh', address: 'n', ...over });

describe('resolveTarget', () => {
  test('fills in from ssh config, matched on the address', () => {
    const t = resolveTarget(spec({ host: 'storage-a', address: 'nas1' }), { sshConfigFile: cfg });
    expect(t).toMatchObject({
      host: 'storage-a',
      hostName: '10.0.0.11',
      port: 2222,
      user: 'admin',
      identityFiles: [join(homedir(), '.ssh/nas_key')],
      explicitIdentity: true,
      hostKeyChecking: 'accept-new',
      jumps: [],
    });
    expect(t.knownHostsFiles.slice(0, 2)).toEqual(['/etc/baton/kh1', '/etc/baton/kh2']);
  });

  test('explicit inventory values win over the config', () => {
    const t = resolveTarget(
      spec({ address: 'nas1', port: 22, user: 'root', privateKeyFile: '/keys/k', knownHostsFile: '/inv/kh', hostKeyChecking: 'strict' }),
      { sshConfigFile: cfg },
    );
    expect(t).toMatchObject({ port: 22, user: 'root', identityFiles: ['/keys/k'], hostKeyChecking: 'strict' });
    // the inventory's file comes first: it is where accept-new would write
    expect(t.knownHostsFiles[0]).toBe('/inv/kh');
  });

  test('--accept-new overrides a strict inventory', () => {
    expect(resolveTarget(spec({ hostKeyChecking: 'strict' }), { sshConfigFile: cfg, acceptNewHostKeys: true }).hostKeyChecking).toBe('accept-new');
  });

  test('defaults: Host * values, ~/.ssh/known_hosts, strict', () => {
    const t = resolveTarget(spec({ address: 'elsewhere' }), { sshConfigFile: cfg });
    expect(t).toMatchObject({ hostName: 'elsewhere', port: 22, user: 'fallback', explicitIdentity: false, hostKeyChecking: 'strict' });
    expect(t.knownHostsFiles[0]).toBe(join(homedir(), '.ssh/known_hosts'));
  });

  test('no config file at all', () => {
    const t = resolveTarget(spec({ address: 'nas1', user: 'u' }), { sshConfigFile: null });
    expect(t).toMatchObject({ hostName: 'nas1', port: 22, user: 'u' });
  });

  test('a named config file that is missing is an error, not silently ignored', () => {
    expect(() => resolveTarget(spec({}), { sshConfigFile: join(dir, 'nope') })).toThrow(/cannot read ssh config/);
  });

  test('ProxyJump: one hop with user and port; chains in order', () => {
    const t = resolveTarget(spec({ address: 'nas2' }), { sshConfigFile: cfg });
    expect(t.jumps).toHaveLength(1);
    expect(t.jumps[0]).toMatchObject({ hostName: 'bastion', port: 2200, user: 'ops' });
    const c = resolveTarget(spec({ address: 'chain' }), { sshConfigFile: cfg });
    expect(c.jumps.map((j) => j.hostName)).toEqual(['192.0.2.1', 'hop2']);
    expect(c.jumps[1]!.jumps).toEqual([]);
  });

  test('parseJump', () => {
    expect(parseJump('bastion')).toEqual({ host: 'bastion', user: undefined, port: undefined });
    expect(parseJump('ssh://me@[::1]:2222')).toEqual({ host: '::1', user: 'me', port: 2222 });
  });
});
