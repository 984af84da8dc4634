/**
 * A real tgtd (the Linux SCSI target framework daemon, userspace) on 127.0.0.1 for integration
 * tests: `tgtd -f` in the foreground with its own management port (`-C N`, its control socket is
 * /var/run/tgtd/socket.N), so it never meets the lab's tgtds or another test's. Targets and LUNs
 * are made with `tgtadm -C N`, backing files live in a temp dir. `stop()` kills it and removes
 * the dir; call it in afterAll, it is safe to call twice.
 *
 * tgtd needs root (its control socket lives in /var/run/tgtd); when not root, startTgtd throws so
 * the suite fails loudly instead of skipping.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRaw, showArgv } from '../../src/lab/exec.js';

export interface Tgtd {
  host: '127.0.0.1';
  port: number;
  controlPort: number;
  dir: string;
  /** Run tgtadm against this tgtd (`-C PORT` added); throws with its stderr unless it exits 0. */
  tgtadm(args: string[]): Promise<string>;
  /** A sparse backing file of `mib` MiB in the temp dir. */
  backingFile(name: string, mib: number): string;
  log(): string;
  stop(): Promise<void>;
}

export interface TgtdOptions {
  /** iSCSI portal port on 127.0.0.1, and the management port (`-C`); pick both per test file. */
  port: number;
  controlPort: number;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startTgtd(o: TgtdOptions): Promise<Tgtd> {
  if (process.getuid?.() !== 0) throw new Error('tgtd tests need root (tgtd keeps its control socket in /var/run/tgtd): run as root (CI does)');
  if (await portOpen(o.port)) throw new Error(`127.0.0.1:${o.port} is already taken: another tgtd from an earlier run? (pgrep -a tgtd)`);
  const dir = mkdtempSync(join(tmpdir(), 'baton-tgtd-'));
  let out = '';
  const child: ChildProcess = spawn('tgtd', ['-f', '-C', String(o.controlPort), '--iscsi', `portal=127.0.0.1:${o.port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  let exited: string | undefined;
  child.on('exit', (code, sig) => (exited = `tgtd exited (${code ?? sig})`));
  const stop = async () => {
    if (!exited && child.pid) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGKILL');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
    }
    rmSync(dir, { recursive: true, force: true });
    // Killed with SIGKILL, tgtd leaves its control socket and lock file behind.
    for (const f of [`socket.${o.controlPort}`, `socket.${o.controlPort}.lock`]) rmSync(join('/var/run/tgtd', f), { force: true });
  };
  const tgtadm = async (args: string[]) => {
    const argv = ['tgtadm', '-C', String(o.controlPort), ...args];
    const r = await runRaw(argv, { timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`\`${showArgv(argv)}\` exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
  };
  // Ready when the portal accepts connections and tgtadm answers on the control socket.
  const t0 = Date.now();
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`${exited} before it was ready: ${out.trim()}`);
    }
    if ((await portOpen(o.port)) && (await runRaw(['tgtadm', '-C', String(o.controlPort), '--lld', 'iscsi', '--mode', 'sys', '--op', 'show'], { timeoutMs: 5000 })).code === 0) break;
    if (Date.now() - t0 > 10_000) {
      await stop();
      throw new Error(`tgtd on 127.0.0.1:${o.port} (control port ${o.controlPort}) not ready within 10 s: ${out.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host: '127.0.0.1',
    port: o.port,
    controlPort: o.controlPort,
    dir,
    tgtadm,
    backingFile(name, mib) {
      const f = join(dir, name);
      writeFileSync(f, '');
      truncateSync(f, mib * 1024 * 1024);
      return f;
    },
    log: () => out,
    stop,
  };
}

/** A target with one disk LUN and the identity given, open to every initiator (or only `acl`). */
export async function addTarget(t: Tgtd, o: { tid: number; iqn: string; lun: number; backing: string; scsiId: string; scsiSn: string; acl?: string }): Promise<void> {
  const tid = String(o.tid);
  await t.tgtadm(['--lld', 'iscsi', '--mode', 'target', '--op', 'new', '--tid', tid, '--targetname', o.iqn]);
  await t.tgtadm(['--lld', 'iscsi', '--mode', 'logicalunit', '--op', 'new', '--tid', tid, '--lun', String(o.lun), '--backing-store', o.backing]);
  await t.tgtadm(['--lld', 'iscsi', '--mode', 'logicalunit', '--op', 'update', '--tid', tid, '--lun', String(o.lun), '--params', `scsi_id=${o.scsiId},scsi_sn=${o.scsiSn}`]);
  await t.tgtadm(['--lld', 'iscsi', '--mode', 'target', '--op', 'bind', '--tid', tid, '--initiator-address', o.acl ?? 'ALL']);
}

/** A CHAP account bound to a target: initiators must log in with it. */
export async function addChap(t: Tgtd, tid: number, user: string, secret: string): Promise<void> {
  await t.tgtadm(['--lld', 'iscsi', '--mode', 'account', '--op', 'new', '--user', user, '--password', secret]);
  await t.tgtadm(['--lld', 'iscsi', '--mode', 'account', '--op', 'bind', '--tid', String(tid), '--user', user]);
}
