/**
 * An NFS client's own rpcbind + rpc.statd, in a lab client's network namespace with a private
 * /run and /var/lib/nfs (a client namespace shares the host's files otherwise), logging in
 * debug so a test can see the SM_NOTIFY it receives.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { statdMonitorRecord } from '../../src/facts/nfs.js';
import type { Lab } from './lab.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ClientStatd {
  log(): string;
  /** Wait until the log holds `text`; false after `timeoutMs`. */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<boolean>;
  stop(): void;
}

/** The client's statd (the lab's first client unless `client` names another). */
export async function startClientStatd(lab: Lab, client?: string): Promise<ClientStatd> {
  const c1 = client ? lab.clients.find((c) => c.name === client)! : lab.clients[0]!;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-client-statd-'));
  const rpcbindPidFile = path.join(dir, 'rpcbind.pid');
  const script = [
    'mount -t tmpfs tmpfs /run',
    'mount -t tmpfs tmpfs /var/lib/nfs',
    'mkdir -p /var/lib/nfs/sm /var/lib/nfs/sm.bak',
    'rpcbind -f & echo $! > "$1"',
    // statd registers with rpcbind at once: wait for rpcbind's socket (bounded) or it gives up.
    'i=0; while [ ! -S /run/rpcbind.sock ] && [ $i -lt 100 ]; do sleep 0.02; i=$((i+1)); done',
    'exec rpc.statd -F -d --no-notify',
  ].join('\n');
  let log = '';
  const child: ChildProcess = spawn('ip', ['netns', 'exec', c1.netns, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, `${c1.name}-statd`, rpcbindPidFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const stop = () => {
    for (const pid of [child.pid, existsSync(rpcbindPidFile) ? Number(readFileSync(rpcbindPidFile, 'utf8')) : 0]) {
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const handle: ClientStatd = {
    log: () => log,
    async waitFor(text, timeoutMs = 5000) {
      const hit = () => (typeof text === 'string' ? log.includes(text) : text.test(log));
      for (let waited = 0; !hit() && waited < timeoutMs; waited += 50) await sleep(50);
      return hit();
    },
    stop,
  };
  if (!(await handle.waitFor('Waiting for client connections'))) {
    stop();
    throw new Error(`the client's rpc.statd did not start:\n${log}`);
  }
  return handle;
}

/**
 * Put the client in a server's statd monitor list (`STATE_DIR/sm/CLIENT`). It stands in for the
 * record statd writes when a client takes an NLM lock (SM_MON), which libnfs cannot make here.
 */
export async function monitorClient(lab: Lab, node: string, stateDir: string): Promise<void> {
  const c1 = lab.clients[0]!;
  const record = statdMonitorRecord({ callbackIPv4: '127.0.0.1', monName: c1.address, myName: node });
  await lab.sshOk(node, ['mkdir', '-p', `${stateDir}/sm`, `${stateDir}/sm.bak`]);
  await lab.sshOk(node, ['sh', '-c', 'cat > "$1"', 'baton-test', `${stateDir}/sm/${c1.address}`], { input: record });
}
