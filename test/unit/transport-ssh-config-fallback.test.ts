import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ConnectionSpec } from '../../src/inventory/model.js';
import { resolveTarget, resolveTargetAsync } from '../../src/transport/ssh-config.js';

let dir: string;
let cfg: string;
const spec = (over: Partial<ConnectionSpec>): ConnectionSpec => ({ host: 'n', connection: 'ssh', address: 'n', ...over });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'baton-sshcfg-fb-'));
  cfg = join(dir, 'config');
  writeFileSync(cfg, ['Host nas3', '  HostName 10.0.0.13', '  User ops', '  ProxyCommand nc -q0 %h %p', ''].join('\n'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ssh config without OpenSSH', () => {
  test('the built-in parser is the fallback, ProxyCommand included', () => {
    const t = resolveTarget(spec({ address: 'nas3' }), { sshConfigFile: cfg, sshBinary: null });
    expect(t).toMatchObject({ resolvedBy: 'parser', hostName: '10.0.0.13', user: 'ops', port: 22, proxyCommand: 'nc -q0 10.0.0.13 22' });
  });
  test('a missing ssh binary falls back too, and both paths agree', async () => {
    const viaMissing = await resolveTargetAsync(spec({ address: 'nas3' }), { sshConfigFile: cfg, sshBinary: join(dir, 'no-such-ssh') });
    expect(viaMissing.resolvedBy).toBe('parser');
    const viaOpenSsh = await resolveTargetAsync(spec({ address: 'nas3' }), { sshConfigFile: cfg });
    expect(viaOpenSsh.resolvedBy).toBe('ssh -G');
    for (const k of ['hostName', 'user', 'port', 'proxyCommand'] as const) expect(viaOpenSsh[k], k).toEqual(viaMissing[k]);
  });
  test("the inventory's -o options (and -J, -i) win over the config, as on ssh's command line, without OpenSSH too", async () => {
    // Before: the parser never read them: without an ssh binary the jump host was dropped and
    // the node's private address dialled directly.
    const withOpts = spec({ address: 'nas3', sshOptions: ['proxyjump=admin@bastion', 'identityfile=/keys/k', 'proxycommand=none'] });
    const parsed = resolveTarget(withOpts, { sshConfigFile: cfg, sshBinary: null });
    expect(parsed.jumps.map((j) => [j.user, j.hostName])).toEqual([['admin', 'bastion']]);
    expect(parsed.identityFiles).toEqual(['/keys/k']);
    const viaOpenSsh = await resolveTargetAsync(withOpts, { sshConfigFile: cfg });
    expect(viaOpenSsh.jumps.map((j) => [j.user, j.hostName])).toEqual([['admin', 'bastion']]);
  });
});
