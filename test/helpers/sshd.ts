/**
 * A real OpenSSH sshd on 127.0.0.1 for integration tests, in its own temp dir: its own host
 * key, one generated client key in authorized_keys, a known_hosts holding its key. It runs in
 * the foreground with -e so its log comes to us, which is how tests count TCP connections.
 *
 * sshd must run as root here (privilege separation needs /run/sshd and the sshd user);
 * when not root, startSshd throws so the suite fails loudly instead of skipping.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export interface Sshd {
  host: '127.0.0.1';
  port: number;
  /** The user tests log in as (whoever runs the tests). */
  user: string;
  dir: string;
  /** Private key authorized to log in. */
  clientKey: string;
  /** A known_hosts file holding this sshd's host key, as `[127.0.0.1]:PORT`. */
  knownHosts: string;
  /** `ssh-ed25519 AAAA…` of the host key. */
  hostPublicKey: string;
  /** Everything sshd logged so far. */
  log(): string;
  /** TCP connections sshd accepted so far ("Connection from" lines). */
  connectionCount(): number;
  /** Wait until sshd has logged at least `n` connections (its log lags the client a little). */
  waitForConnections(n: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

export interface SshdOptions {
  maxSessions?: number;
  /** Extra sshd_config lines. */
  extraConfig?: string[];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function keygen(file: string, comment: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { stdio: 'ignore' });
}

const SSHD = '/usr/sbin/sshd';

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      `integration tests need root to run a real sshd (${SSHD} with privilege separation); ` +
        `you are uid ${process.getuid?.()}. Run them as root (CI does) — they are not skipped silently.`,
    );
  }
  try {
    statSync(SSHD);
  } catch {
    throw new Error(`${SSHD} not found: install openssh-server to run the integration tests`);
  }
  // sshd refuses to start without its privilege-separation directory.
  try {
    statSync('/run/sshd');
  } catch {
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  }

  const dir = mkdtempSync(join(tmpdir(), 'baton-sshd-'));
  let child: ChildProcess | undefined;
  try {
    const hostKey = join(dir, 'host_ed25519');
    const clientKey = join(dir, 'client_ed25519');
    keygen(hostKey, 'baton-test-host');
    keygen(clientKey, 'baton-test-client');
    const authorized = join(dir, 'authorized_keys');
    writeFileSync(authorized, readFileSync(`${clientKey}.pub`));
    chmodSync(authorized, 0o600);
    const port = await freePort();
    const hostPublicKey = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    const knownHosts = join(dir, 'known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostPublicKey}\n`);

    const config = join(dir, 'sshd_config');
    writeFileSync(
      config,
      [
        `ListenAddress 127.0.0.1:${port}`,
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${authorized}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        'UsePAM no',
        'StrictModes no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        'PermitRootLogin prohibit-password',
        `MaxSessions ${opts.maxSessions ?? 10}`,
        'MaxStartups 100',
        'AllowTcpForwarding yes',
        'LogLevel VERBOSE',
        ...(opts.extraConfig ?? []),
        '',
      ].join('\n'),
    );

    let logText = '';
    child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (b: Buffer) => (logText += b.toString('utf8')));
    const proc = child;

    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`sshd did not start within 10 s; its log:\n${logText}`)), 10_000);
      const done = (e?: Error) => {
        clearTimeout(deadline);
        clearInterval(poll);
        proc.off('exit', onExit);
        if (e) reject(e);
        else resolve();
      };
      const onExit = (code: number | null) => done(new Error(`sshd exited (${code}) before listening; its log:\n${logText}`));
      proc.on('exit', onExit);
      const poll = setInterval(() => {
        if (/Server listening on/.test(logText)) done();
      }, 20);
    });

    const connectionCount = () => (logText.match(/Connection from /g) ?? []).length;
    const sshd: Sshd = {
      host: '127.0.0.1',
      port,
      user: userInfo().username,
      dir,
      clientKey,
      knownHosts,
      hostPublicKey,
      log: () => logText,
      connectionCount,
      async waitForConnections(n, timeoutMs = 2000) {
        const end = Date.now() + timeoutMs;
        while (connectionCount() < n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        return connectionCount();
      },
      async stop() {
        if (proc.exitCode === null && proc.signalCode === null) {
          // Per-connection sshd children outlive the listener; a test that failed midway may
          // have left a client connected, so take them down too.
          let kids: number[] = [];
          try {
            kids = execFileSync('pgrep', ['-P', String(proc.pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
          } catch {
            // pgrep exits 1 when there are none
          }
          for (const k of kids) {
            try {
              process.kill(k, 'SIGTERM');
            } catch {
              // already gone
            }
          }
          const gone = new Promise<void>((r) => proc.once('exit', () => r()));
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
          await gone;
          clearTimeout(t);
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return sshd;
  } catch (e) {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** An inventory with one host, `node1`, reached through this sshd with the given known_hosts. */
export function sshdInventory(sshd: Sshd, knownHosts: string = sshd.knownHosts): string {
  return [
    'all:',
    '  hosts:',
    '    node1:',
    `      ansible_host: ${sshd.host}`,
    `      ansible_port: ${sshd.port}`,
    `      ansible_user: ${sshd.user}`,
    `      ansible_ssh_private_key_file: ${sshd.clientKey}`,
    `      baton_known_hosts: ${knownHosts}`,
  ].join('\n') + '\n';
}
