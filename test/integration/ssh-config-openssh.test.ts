/**
 * ssh config resolved as OpenSSH resolves it (`ssh -G`): an Include'd file, a Match block and a
 * ProxyCommand that really carries the connection to a real sshd on loopback.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ConnectionSpec } from '../../src/inventory/model.js';
import { proxyCommandOf, resolveTarget } from '../../src/transport/ssh-config.js';
import { SshTransport } from '../../src/transport/ssh.js';
import { UnreachableError } from '../../src/transport/transport.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

let sshd: Sshd;
let dir: string;
let cfg: string;
let marker: string;

const spec = (over: Partial<ConnectionSpec> = {}): ConnectionSpec => ({ host: 'nas', connection: 'ssh', address: 'nas-behind-proxy', ...over });

beforeAll(async () => {
  sshd = await startSshd();
  dir = mkdtempSync(join(tmpdir(), 'baton-sshcfg-'));
  cfg = join(dir, 'config');
  marker = join(dir, 'proxy-was-used');
  mkdirSync(join(dir, 'conf.d'));
  // The proxy is the classic bastion hop: another ssh to the same sshd, `-W host:port`.
  const hop = [
    'ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null',
    `-o UserKnownHostsFile=${sshd.knownHosts} -i ${sshd.clientKey} -p ${sshd.port} -l ${sshd.user} -W "$0:$1" 127.0.0.1`,
  ].join(' ');
  writeFileSync(cfg, [`Include ${join(dir, 'conf.d')}/*.conf`, 'Host *', '  User nobody-from-host-star', ''].join('\n'));
  writeFileSync(
    join(dir, 'conf.d', '10-storage.conf'),
    [
      'Host nas-behind-proxy broken-proxy',
      '  HostName 127.0.0.1',
      `  Port ${sshd.port}`,
      `  IdentityFile ${sshd.clientKey}`,
      `  UserKnownHostsFile ${sshd.knownHosts}`,
      'Host nas-behind-proxy',
      `  ProxyCommand sh -c 'echo "$0 $1" > ${marker}; exec ${hop}' %h %p`,
      'Host broken-proxy',
      "  ProxyCommand sh -c 'echo no route to the bastion >&2; exit 1'",
      'Match originalhost nas-behind-proxy,broken-proxy',
      `  User ${sshd.user}`,
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await sshd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('OpenSSH config through ssh -G', () => {
  test('follows Include and Match, and expands the ProxyCommand tokens', () => {
    const t = resolveTarget(spec(), { sshConfigFile: cfg });
    expect(t).toMatchObject({ resolvedBy: 'ssh -G', hostName: '127.0.0.1', port: sshd.port, user: sshd.user, identityFiles: [sshd.clientKey] });
    expect(t.proxyCommand).toContain(`' 127.0.0.1 ${sshd.port}`);
    expect(t.knownHostsFiles[0]).toBe(sshd.knownHosts);
  });

  test('inventory values still win over the config', () => {
    const t = resolveTarget(spec({ user: 'from-inventory', port: 2222 }), { sshConfigFile: cfg });
    expect(t).toMatchObject({ user: 'from-inventory', port: 2222, hostName: '127.0.0.1' });
    expect(t.proxyCommand).toContain(' 127.0.0.1 2222');
  });

  test('the ProxyCommand carries the connection: commands run through it', async () => {
    const before = sshd.connectionCount();
    const t = new SshTransport(spec(), { sshConfigFile: cfg });
    try {
      const r = await t.exec(['echo', 'through the proxy']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('through the proxy\n');
    } finally {
      await t.close();
    }
    expect(readFileSync(marker, 'utf8').trim()).toBe(`127.0.0.1 ${sshd.port}`);
    // The hop's own login, and the connection tunnelled through it.
    expect(await sshd.waitForConnections(before + 2)).toBeGreaterThanOrEqual(before + 2);
  });

  test('a failing ProxyCommand makes the host unreachable, with what the command said', async () => {
    const t = new SshTransport(spec({ address: 'broken-proxy' }), { sshConfigFile: cfg });
    try {
      const err = await t.connect().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UnreachableError);
      expect((err as Error).message).toMatch(/ProxyCommand/);
      expect((err as Error).message).toContain('no route to the bastion');
    } finally {
      await t.close();
    }
  });

  test('a name that is not a name is never put into a ProxyCommand', () => {
    expect(existsSync(cfg)).toBe(true);
    // OpenSSH refuses it itself; baton's own expansion refuses it too (the parser fallback).
    expect(() => resolveTarget(spec({ user: 'x;reboot' }), { sshConfigFile: cfg })).toThrow(/invalid characters/);
    expect(() => proxyCommandOf('nc %h %p', { host: 'a', hostName: 'a$(reboot)', port: 22, user: 'u' })).toThrow(/refusing to put host name/);
    expect(proxyCommandOf('nc %h %p %%', { host: 'a', hostName: '198.18.110.9', port: 22, user: 'u' })).toBe('nc 198.18.110.9 22 %');
  });
});
