/**
 * The etcd coordinator over TLS (`etcds://`): a real one-member etcd on 127.0.0.1:23810–23811
 * serving clients over TLS and requiring client certificates, with a CA, server and client
 * certificates made here with openssl in a temp dir (removed after). A controller given the right
 * CA and client certificate (inventory vars, or the environment) runs; a wrong CA, or no client
 * certificate, is refused with an error naming etcd and the TLS problem, before the run changes
 * anything. No root: the node is this machine (ansible_connection: local).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';

const execFileP = promisify(execFile);
const CLI = path.resolve('dist/cli/main.js');

let etcd: EtcdCluster;
let pki: string;
let work: string;
let target: string;
const pem = (name: string) => path.join(pki, name);

async function openssl(args: string[]): Promise<void> {
  await execFileP('openssl', args, { cwd: pki });
}

/** A CA (`name`.pem/.key), and certificates it signs (`leaf`.pem/.key) with the given extensions. */
async function ca(name: string): Promise<void> {
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`]);
}

async function leaf(name: string, signer: string, ext: string): Promise<void> {
  writeFileSync(pem(`${name}.ext`), `${ext}\n`);
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${signer}.pem`, '-CAkey', `${signer}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]);
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function baton(args: string[], env: Record<string, string> = {}): Promise<Result> {
  try {
    const r = await execFileP('node', [CLI, ...args], {
      env: { ...process.env, BATON_STATE_DIR: path.join(work, 'state'), BATON_CONTROLLER: 'ctl', BATON_ETCD_TIMEOUT_MS: '1000', CI: 'true', ...env },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** Two reversible local changes under the lock "shared". */
function playbook(): string {
  const file = path.join(work, 'pb.yml');
  writeFileSync(
    file,
    `- name: local moves
  hosts: localhost
  lock: shared
  steps:
    - name: make a
      command: { argv: [touch, "${target}/a"], creates: "${target}/a", revert: [rm, -f, "${target}/a"] }
    - name: make b
      command: { argv: [touch, "${target}/b"], creates: "${target}/b", revert: [rm, -f, "${target}/b"] }
`,
  );
  return file;
}

/** The inventory: etcds:// coordinator, and TLS files as inventory vars when given. */
function inventory(vars: Record<string, string> = {}): string {
  const file = path.join(work, 'inv.yml');
  const extra = Object.entries(vars)
    .map(([k, v]) => `    ${k}: "${v}"\n`)
    .join('');
  writeFileSync(file, `all:\n  vars:\n    baton_coordinator: "${etcd.coordinator}"\n${extra}  hosts:\n    localhost:\n      ansible_connection: local\n`);
  return file;
}

const files = () => readdirSync(target).sort();

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
  pki = mkdtempSync(path.join(os.tmpdir(), 'baton-etcdt-pki-'));
  await ca('etcd-ca');
  await ca('other-ca');
  // clientAuth too: etcd's own JSON gateway dials its gRPC server with this certificate.
  await leaf('server', 'etcd-ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth');
  await leaf('client', 'etcd-ca', 'extendedKeyUsage=clientAuth');
  etcd = await startEtcd({
    name: 'etcdt',
    portBase: 23810,
    members: 1,
    tls: { cert: pem('server.pem'), key: pem('server.key'), clientCa: pem('etcd-ca.pem'), probe: { ca: pem('etcd-ca.pem'), cert: pem('client.pem'), key: pem('client.key') } },
  });
}, 60_000);

afterAll(async () => {
  await etcd?.stop();
  if (pki) rmSync(pki, { recursive: true, force: true });
});

beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-etcdt-'));
  target = path.join(work, 'target');
  mkdirSync(target);
  return () => rmSync(work, { recursive: true, force: true });
});

describe('the etcd coordinator over TLS', () => {
  it('with the CA and a client certificate as inventory vars, a run takes its lock in etcd and completes', async () => {
    const inv = inventory({ baton_etcd_cacert: pem('etcd-ca.pem'), baton_etcd_cert: pem('client.pem'), baton_etcd_key: pem('client.key') });
    const r = await baton(['run', '--yes', '-i', inv, playbook()]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(files()).toEqual(['a', 'b']);
    // Its journal is in etcd: `baton runs` on another state dir, with the files in the environment, lists it.
    const runs = await baton(['runs', '--coordinator', etcd.coordinator], { BATON_STATE_DIR: path.join(work, 'other'), BATON_ETCD_CACERT: pem('etcd-ca.pem'), BATON_ETCD_CERT: pem('client.pem'), BATON_ETCD_KEY: pem('client.key') });
    expect(runs.code, runs.stderr).toBe(0);
    expect(runs.stdout).toMatch(/succeeded.*pb\.yml/);
  });

  it('a CA that did not sign etcd’s certificate is refused before any change, naming etcd, TLS and the CA file', async () => {
    const r = await baton(['run', '--yes', '-i', inventory(), playbook()], { BATON_ETCD_CACERT: pem('other-ca.pem'), BATON_ETCD_CERT: pem('client.pem'), BATON_ETCD_KEY: pem('client.key') });
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect(r.stderr).toMatch(/cannot use the coordinator etcd \(https:\/\/127\.0\.0\.1:23810\): etcd https:\/\/127\.0\.0\.1:23810: TLS handshake failed: etcd's server certificate is not signed by the CA baton was given/);
    expect(r.stderr).toContain(`BATON_ETCD_CACERT=${pem('other-ca.pem')}`);
    expect(r.stderr).toMatch(/no node was contacted/);
    expect(files()).toEqual([]);
  });

  it('without a client certificate, etcd (which requires one) refuses the handshake: said as TLS, nothing changed', async () => {
    const r = await baton(['run', '--yes', '-i', inventory(), playbook()], { BATON_ETCD_CACERT: pem('etcd-ca.pem') });
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect(r.stderr).toMatch(/etcd https:\/\/127\.0\.0\.1:23810: TLS handshake failed: etcd (refused the client certificate|requires a client certificate)/);
    expect(files()).toEqual([]);
  });

  it('TLS files with a plain etcd:// coordinator, or a missing file, are invalid input, said before anything starts', async () => {
    const plain = await baton(['run', '--yes', '-i', inventory(), playbook(), '--coordinator', etcd.coordinator.replace('etcds://', 'etcd://')], { BATON_ETCD_CACERT: pem('etcd-ca.pem') });
    expect(plain.code, plain.stderr).toBe(2);
    expect(plain.stderr).toMatch(/plain HTTP: write etcds:\/\/host:port/);
    const missing = await baton(['run', '--yes', '-i', inventory({ baton_etcd_cacert: pem('nope.pem') }), playbook()]);
    expect(missing.code, missing.stderr).toBe(2);
    expect(missing.stderr).toMatch(/cannot read the CA that signed etcd's server certificates for etcd \(baton_etcd_cacert: .*nope\.pem\)/);
    expect(files()).toEqual([]);
  });
});
