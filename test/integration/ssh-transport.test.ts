import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { ConnectionSpec } from '../../src/inventory/model.js';
import { LocalTransport } from '../../src/transport/local.js';
import { hashHostName } from '../../src/transport/known-hosts.js';
import { SshTransport, type SshTransportOptions } from '../../src/transport/ssh.js';
import { TransportPool } from '../../src/transport/index.js';
import { UnreachableError, type Transport } from '../../src/transport/transport.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

let sshd: Sshd;
let scratch: string;
/** A python3 without os.posix_spawnp, as before 3.8 (written in beforeAll). */
let OLD_PYTHON = '';
const open: Transport[] = [];

beforeAll(async () => {
  sshd = await startSshd();
  scratch = mkdtempSync(join(tmpdir(), 'baton-ssh-test-'));
  OLD_PYTHON = join(scratch, 'python3-old');
  writeFileSync(OLD_PYTHON, '#!/bin/sh\n# -I -S -c CODE ARGS...\ncode=$4; shift 4\nexec /usr/bin/python3 -I -S -c "import os; del os.posix_spawnp\n$code" "$@"\n', { mode: 0o755 });
});
afterEach(async () => {
  await Promise.allSettled(open.splice(0).map((t) => t.close()));
});
afterAll(async () => {
  await sshd?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function spec(over: Partial<ConnectionSpec> = {}): ConnectionSpec {
  return {
    host: 'node1',
    connection: 'ssh',
    address: sshd.host,
    port: sshd.port,
    user: sshd.user,
    privateKeyFile: sshd.clientKey,
    knownHostsFile: sshd.knownHosts,
    ...over,
  };
}

function ssh(over: Partial<ConnectionSpec> = {}, opts: SshTransportOptions = {}): SshTransport {
  // sshConfigFile: null keeps the tester's own ~/.ssh/config out of the picture.
  const t = new SshTransport(spec(over), { sshConfigFile: null, ...opts });
  open.push(t);
  return t;
}

/** What `ssh-keygen -lf` prints, computed independently of known-hosts.ts. */
function sha256(pub: string): string {
  const f = join(scratch, `fp-${Math.random().toString(36).slice(2)}.pub`);
  writeFileSync(f, `${pub}\n`);
  return execFileSync('ssh-keygen', ['-lf', f], { encoding: 'utf8' }).split(' ')[1]!;
}

describe('SshTransport against a real sshd', () => {
  test('a command sent after close() is refused and opens no new connection (a read started early must not outlive the run)', async () => {
    const t = ssh();
    expect((await t.exec(['true'])).code).toBe(0);
    await t.close();
    const before = sshd.connectionCount();
    await expect(t.exec(['true'])).rejects.toThrow(/was closed \(the run is over\)/);
    expect(sshd.connectionCount()).toBe(before);
  });

  test('runs a command and reports stdout, stderr, exit code and stdin', async () => {
    const t = ssh();
    const r = await t.exec(['sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(r).toMatchObject({ code: 7, signal: null, stdout: 'out\n', stderr: 'err\n', timedOut: false });
    const cat = await t.exec(['cat'], { stdin: 'fed through stdin\n' });
    expect(cat.stdout).toBe('fed through stdin\n');
    const env = await t.exec(['sh', '-c', 'printf %s "$BATON_X"'], { env: { BATON_X: '$(id) `id` ;x' } });
    expect(env.stdout).toBe('$(id) `id` ;x');
  });

  test('30 concurrent execs share one TCP connection and never exceed 10 channels (one channel per command)', async () => {
    const before = sshd.connectionCount();
    const t = ssh({}, { agent: false });
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => t.exec(['sh', '-c', 'sleep 0.2; echo "$1"', 'sh', `job-${i}`])),
    );
    expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 30 }, (_, i) => `job-${i}`));
    expect(results.every((r) => r.code === 0)).toBe(true);
    expect(t.peakChannels).toBeGreaterThan(1);
    expect(t.peakChannels).toBeLessThanOrEqual(10);
    expect(await sshd.waitForConnections(before + 1)).toBe(before + 1);
    // Give a second connection the chance to show up in the log if there were one.
    await new Promise((r) => setTimeout(r, 200));
    expect(sshd.connectionCount()).toBe(before + 1);
  });

  // Both agents speak one protocol; each is held to all of it. `perl`: a node whose python3 is
  // missing; `old python`: one whose python3 has no posix_spawnp (before 3.8) and hands over to Perl.
  describe.each([
    ['python', () => ({}), 'python3'],
    ['perl', () => ({ agentInterpreters: { python: 'baton-no-such-python' } }), 'perl'],
    ['old python', () => ({ agentInterpreters: { python: OLD_PYTHON } }), 'perl'],
  ] as const)('the %s agent', (_name, options: () => SshTransportOptions, comm) => {
    test(`commands run as children of ${comm}, with the login environment as it is (no LC_CTYPE added)`, async () => {
      const t = ssh({}, options());
      expect((await t.exec(['sh', '-c', 'ps -o comm= -p "$PPID"'])).stdout.trim()).toBe(comm);
      const env = async (stdin?: string) => (await t.exec(['sh', '-c', 'env | grep -v -e "^PWD=" -e "^SHLVL=" -e "^_=" | sort'], stdin === undefined ? {} : { stdin })).stdout;
      // stdin given: a channel of its own, started by sshd's login shell as the agent was.
      expect(await env()).toBe(await env(''));
    });

      test('30 concurrent execs through the agent: one channel, each result back to its own caller as soon as it ends', async () => {
      const t = ssh({}, options());
      const order: number[] = [];
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          t.exec(['sh', '-c', 'sleep "$2"; printf "%s\\n" "$1"; printf "e%s" "$1" >&2; exit "$3"', 'sh', `job-${i}`, i % 3 === 0 ? '0.8' : '0.05', String(i % 5)]).then((r) => {
            order.push(i);
            return r;
          }),
        ),
      );
      expect(results.map((r) => [r.stdout, r.stderr, r.code, r.signal])).toEqual(Array.from({ length: 30 }, (_, i) => [`job-${i}\n`, `ejob-${i}`, i % 5, null]));
      expect(t.peakChannels).toBe(1);
      // The slow ones did not hold the fast ones back: every fast job came back before any slow one.
      const firstSlow = order.findIndex((i) => i % 3 === 0);
      expect(order.slice(firstSlow).every((i) => i % 3 === 0)).toBe(true);
    });

    test('the agent carries newlines, quotes, a frame-like line, empty arguments, 2 MB of output and the environment intact; a signal is a signal; a missing program is 127', async () => {
      const t = ssh({}, options());
      const odd = "a\nb'c\"$(id)`x`\n\n--baton-agent-0-- e\n";
      expect((await t.exec(['printf', '%s', odd])).stdout).toBe(odd);
      const big = await t.exec(['sh', '-c', 'head -c 2000000 /dev/zero | tr "\\0" x']);
      expect(big.stdout.length).toBe(2_000_000);
      expect((await t.exec(['sh', '-c', 'printf %s "$BATON_X"'], { env: { BATON_X: 'a b\n$(id)' } })).stdout).toBe('a b\n$(id)');
      expect(await t.exec(['sh', '-c', 'kill -TERM $$'])).toMatchObject({ code: null, signal: 'SIGTERM', timedOut: false });
      expect((await t.exec(['printf', '[%s]', '', 'x', '', ''])).stdout).toBe('[][x][][]');
      const missing = await t.exec(['baton-no-such-program']);
      expect(missing.code).toBe(127);
      expect(missing.stderr).toMatch(/baton-no-such-program: No such file or directory/);
      expect(t.peakChannels).toBe(1);
    });

    test('the agent and what it runs killed on the node: the command in flight fails as a lost connection, saying its outcome is unknown; the next command works', async () => {
      const t = ssh({}, options());
      expect((await t.exec(['true'])).code).toBe(0);
      const marker = `0.${Date.now()}${process.pid}3`;
      const inFlight = t.exec(['sleep', '30', marker]);
      inFlight.catch(() => {}); // asserted below; it fails before the assertion is reached
      await new Promise((r) => setTimeout(r, 200));
      // The agent is the process whose command line ends in our boundary; the class keeps the
      // pattern from matching this sh.
      const kill = await t.exec(['sh', '-c', 'pkill -KILL -f -- "--baton-agen[t]-[0-9a-f]*--$"; pkill -KILL -f "^sleep 30 $1"', 'sh', marker], { stdin: '' });
      expect(kill.code).toBe(0);
      await expect(inFlight).rejects.toThrow(/lost the connection to node1 .*while running `sleep 30 .*outcome on the node is unknown/s);
      expect((await t.exec(['echo', 'again'])).stdout).toBe('again\n');
    });
  });

  test('a node without python3 or perl: the agent does not start, said once in the log, and every command goes over its own channel', async () => {
    const logs: string[] = [];
    const t = ssh({}, { agentInterpreters: { python: 'baton-no-such-python', perl: 'baton-no-such-perl' }, log: (m) => logs.push(m) });
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => t.exec(['sh', '-c', 'sleep 0.2; echo "$1"', 'sh', `job-${i}`])));
    expect(results.map((r) => r.stdout)).toEqual(['job-0\n', 'job-1\n', 'job-2\n', 'job-3\n']);
    expect(t.peakChannels).toBeGreaterThan(1);
    expect((await t.exec(['sh', '-c', 'exit 3'])).code).toBe(3);
    expect(logs.filter((l) => /one SSH channel per command from now on: .*command agent/.test(l))).toHaveLength(1);
  });

  test('a changed host key is refused, naming both fingerprints and the known_hosts line', async () => {
    const kh = join(scratch, 'kh-mismatch');
    const other = join(scratch, 'other_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const otherPub = readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    writeFileSync(kh, `# comment\n[127.0.0.1]:${sshd.port} ${otherPub}\n`);
    const t = ssh({ knownHostsFile: kh }, { acceptNewHostKeys: true });
    const err = await t.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UnreachableError);
    // The host answered: it is up (a watcher must not take it for dead).
    expect((err as UnreachableError).answered).toBe(true);
    const msg = (err as Error).message;
    expect(msg).toMatch(/HOST KEY CHANGED for node1/);
    expect(msg).toContain(sha256(otherPub));
    expect(msg).toContain(sha256(sshd.hostPublicKey));
    expect(msg).toContain(`${kh}:2`);
    // accept-new must not have "fixed" the file.
    expect(readFileSync(kh, 'utf8')).not.toContain(sshd.hostPublicKey.split(' ')[1]);
  });

  test('an unknown host key is refused by default and recorded with accept-new', async () => {
    const kh = join(scratch, 'kh-empty');
    writeFileSync(kh, '');
    await expect(ssh({ knownHostsFile: kh }).connect()).rejects.toThrow(/no known host key for node1.*ssh-keyscan.*--accept-new/s);
    expect(readFileSync(kh, 'utf8')).toBe('');

    await ssh({ knownHostsFile: kh }, { acceptNewHostKeys: true }).connect();
    expect(readFileSync(kh, 'utf8')).toBe(`[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n`);
    // Now strict mode accepts it.
    const r = await ssh({ knownHostsFile: kh }).exec(['true']);
    expect(r.code).toBe(0);
  });

  test('a hashed known_hosts entry is honoured', async () => {
    const kh = join(scratch, 'kh-hashed');
    writeFileSync(kh, `${hashHostName(`[127.0.0.1]:${sshd.port}`, Buffer.from('0123456789abcdef0123'))} ${sshd.hostPublicKey}\n`);
    expect(readFileSync(kh, 'utf8')).not.toContain('127.0.0.1');
    expect((await ssh({ knownHostsFile: kh }).exec(['echo', 'ok'])).stdout).toBe('ok\n');
  });

  test('a @revoked host key is refused', async () => {
    const kh = join(scratch, 'kh-revoked');
    writeFileSync(kh, `[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n@revoked * ${sshd.hostPublicKey}\n`);
    await expect(ssh({ knownHostsFile: kh }).connect()).rejects.toThrow(/REVOKED/);
  });

  test('a timeout kills the remote process group, children included', async () => {
    const marker = `0.${Date.now()}${process.pid}`;
    const t = ssh({}, { killGraceMs: 500 });
    const started = Date.now();
    // sh waits for its child `sleep`, so only killing the group gets rid of both.
    const r = await t.exec(['sh', '-c', 'sleep 300 "$1"; echo survived', 'sh', marker], { timeoutMs: 1000 });
    expect(r.timedOut).toBe(true);
    expect(r.code).toBeNull();
    expect(r.stdout).not.toContain('survived');
    expect(Date.now() - started).toBeLessThan(10_000);
    const left = await t.exec(['pgrep', '-f', marker]);
    expect(left.stdout).toBe('');
    expect(left.code).toBe(1);
  });

  test('an AbortSignal kills the remote command like a timeout', async () => {
    const marker = `0.${Date.now()}${process.pid}7`;
    const t = ssh();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 500);
    const r = await t.exec(['sleep', '300', marker], { signal: ac.signal });
    expect(r.timedOut).toBe(true);
    expect((await t.exec(['pgrep', '-f', marker])).code).toBe(1);
  });

  test('connection refused is an UnreachableError saying where and what', async () => {
    const closedPort = sshd.port === 1 ? 2 : 1;
    const err = await ssh({ port: closedPort }).connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnreachableError);
    expect((err as Error).message).toContain(`127.0.0.1:${closedPort}`);
    expect((err as Error).message).toMatch(/connection refused/);
    expect((err as UnreachableError).answered).toBe(true);
  });

  test('a host that accepts the TCP connection and closes it at once (sshd over MaxStartups): it answered', async () => {
    const { createServer } = await import('node:net');
    const closer = createServer((c) => c.destroy());
    await new Promise<void>((r) => closer.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (closer.address() as { port: number }).port;
      const err = await ssh({ port, connectTimeoutMs: 2000 }).connect().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnreachableError);
      expect((err as UnreachableError).answered).toBe(true);
    } finally {
      closer.close();
    }
  });

  test('a host that accepts the TCP connection and never speaks SSH (hung): an UnreachableError that did not answer', async () => {
    const { createServer } = await import('node:net');
    const mute = createServer(() => {});
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (mute.address() as { port: number }).port;
      const err = await ssh({ port, connectTimeoutMs: 500 }).connect().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnreachableError);
      expect((err as UnreachableError).answered).toBe(false);
    } finally {
      mute.close();
    }
  });

  test('a key the server does not accept is an UnreachableError naming the user', async () => {
    const stranger = join(scratch, 'stranger');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
    const saved = process.env.SSH_AUTH_SOCK;
    delete process.env.SSH_AUTH_SOCK;
    try {
      const err = await ssh({ privateKeyFile: stranger }).connect().catch((e: unknown) => e);
      expect((err as Error).message).toMatch(new RegExp(`authentication as ${sshd.user} failed.*${stranger}`));
      expect((err as UnreachableError).answered).toBe(true);
    } finally {
      if (saved !== undefined) process.env.SSH_AUTH_SOCK = saved;
    }
  });

  test('ProxyJump from an ssh config file goes through the jump host', async () => {
    const cfg = join(scratch, 'ssh_config');
    writeFileSync(
      cfg,
      [
        'Host target-alias',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        `  User ${sshd.user}`,
        `  IdentityFile ${sshd.clientKey}`,
        `  UserKnownHostsFile ${sshd.knownHosts}`,
        '  ProxyJump jump-alias',
        'Host jump-alias',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        `  User ${sshd.user}`,
        `  IdentityFile ${sshd.clientKey}`,
        `  UserKnownHostsFile ${sshd.knownHosts}`,
        '',
      ].join('\n'),
    );
    const before = sshd.connectionCount();
    const t = new SshTransport({ host: 'behind', connection: 'ssh', address: 'target-alias' }, { sshConfigFile: cfg });
    open.push(t);
    expect(t.resolved().jumps.map((j) => j.hostName)).toEqual(['127.0.0.1']);
    const r = await t.exec(['sh', '-c', 'echo "$SSH_CLIENT"']);
    expect(r.code).toBe(0);
    // Two connections: one to the jump host from us, one to the target forwarded by the jump host.
    expect(await sshd.waitForConnections(before + 2)).toBe(before + 2);
    expect(sshd.log()).toMatch(/Connection from 127\.0\.0\.1 port \d+ on 127\.0\.0\.1/);
  });

  test('TransportPool connects all hosts in parallel and reports every failure', async () => {
    const specs: Record<string, ConnectionSpec> = {
      good: spec({ host: 'good' }),
      refused: spec({ host: 'refused', port: 1 }),
      unknownkey: spec({ host: 'unknownkey', knownHostsFile: join(scratch, 'kh-none') }),
      here: { host: 'here', connection: 'local', address: 'localhost' },
    };
    const pool = new TransportPool((h) => specs[h]!, { sshConfigFile: null });
    try {
      const { ok, failed } = await pool.connectAll(Object.keys(specs));
      expect(ok.sort()).toEqual(['good', 'here']);
      expect(failed.map((f) => f.host).sort()).toEqual(['refused', 'unknownkey']);
      expect(failed.every((f) => f.error instanceof UnreachableError)).toBe(true);
      const g = await pool.get('good');
      expect(g).toBe(await pool.get('good'));
      expect((await g.exec(['echo', 'pooled'])).stdout).toBe('pooled\n');
      expect((await pool.get('here')).kind).toBe('local');
    } finally {
      await pool.closeAll();
    }
  });
});

const INJECTIONS = [
  '; touch INJ',
  '$(touch INJ)',
  '`touch INJ`',
  `'"`,
  "it's",
  '*',
  '~',
  'a\nb; touch INJ',
  '-n',
  '',
  ' spaced  out ',
  'ünïcødé ☃',
  '\\',
  '$HOME',
  '&& touch INJ ||',
  '| touch INJ',
  '> INJ',
  '#comment',
];

async function expectLiteral(t: Transport, dir: string): Promise<void> {
  const victim = join(dir, 'INJ');
  const args = INJECTIONS.map((s) => s.replace('INJ', victim));
  const r = await t.exec(['printf', '%s\\0', ...args]);
  expect(r.code).toBe(0);
  expect(r.stdout.split('\0').slice(0, -1)).toEqual(args);
  expect(Buffer.from(r.stdout, 'utf8').equals(Buffer.from(args.map((a) => `${a}\0`).join(''), 'utf8'))).toBe(true);
  expect(existsSync(victim)).toBe(false);
}

describe('arguments arrive as single literal arguments', () => {
  test('over SSH', async () => {
    const dir = mkdtempSync(join(scratch, 'inj-'));
    await expectLiteral(ssh(), dir);
  });
  test('locally', async () => {
    const dir = mkdtempSync(join(scratch, 'inj-'));
    await expectLiteral(new LocalTransport('localhost'), dir);
  });
});
