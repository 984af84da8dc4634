/**
 * The node side of the scsi-pr fence provider, for nodes without a kernel initiator:
 *   node scsi-pr-agent.js 'REQUEST_JSON'        one request (scsi-pr-protocol.ts), one JSON line out
 *   node scsi-pr-agent.js serve 'LUN_JSON'      the node's resident session (started by `register`)
 *
 * Why a resident session: SCSI registrations belong to an I_T nexus, and tgtd ties a
 * registration to the session that made it (tgt usr/spc.c matches a registration by the
 * session's TSIH and the nexus' creation time), not to the initiator name. A session opened,
 * registered and closed leaves a key nobody can use. So a node registers through one long-lived
 * session in its own network namespace, as a kernel initiator would keep one, and every write
 * of the node to the LUN goes through it: that is what a fence cuts off.
 *
 * Exit codes: 0 done, 1 the target or the session refused or failed (the JSON says why), 2 usage.
 */
import net from 'node:net';
import { spawn } from 'node:child_process';
import { iscsiLogin, type IscsiSession } from '../../net/iscsi/session.js';
import { ScsiError, statusName } from '../../net/iscsi/scsi.js';
import { SCSI_PR_AGENT, keyHex, residentSocket, type PrAnswer, type PrLun, type PrRequest } from './scsi-pr-protocol.js';

const KEEPALIVE_MS = 5000;

function portalOf(l: PrLun): { host: string; port: number } {
  const m = /^(.+?)(?::(\d+))?$/.exec(l.portal);
  return { host: m![1]!, port: m![2] ? Number(m![2]) : 3260 };
}

async function login(l: PrLun, timeoutMs: number): Promise<IscsiSession> {
  return iscsiLogin({ ...portalOf(l), targetName: l.iqn, initiatorName: l.initiator, timeoutMs });
}

function failure(e: unknown): PrAnswer {
  if (e instanceof ScsiError) return { ok: false, error: e.message, status: statusName(e.status) };
  return { ok: false, error: e instanceof Error ? e.message : String(e) };
}

async function state(s: IscsiSession, lun: number): Promise<Pick<PrAnswer, 'keys' | 'reservation'>> {
  const keys = (await s.prKeys(lun)).map(keyHex);
  const r = await s.prReservation(lun);
  return { keys, reservation: r.holder ? { key: keyHex(r.holder.key), type: r.holder.type } : null };
}

// ---------------------------------------------------------------- the resident session

/**
 * The first node up makes the reservation that turns registration into access. Two nodes
 * coming up together both see none and both RESERVE: the second gets RESERVATION CONFLICT
 * (another holder), which is fine as long as a reservation of the asked type is now held.
 */
async function reserveUnlessHeld(s: IscsiSession, lun: number, key: bigint, type: number): Promise<void> {
  if ((await s.prReservation(lun)).holder) return;
  try {
    await s.prReserve(lun, key, type);
  } catch (e) {
    const now = (await s.prReservation(lun)).holder;
    if (!(e instanceof ScsiError && e.reservationConflict && now?.type === type)) throw e;
  }
}

async function serve(l: PrLun): Promise<void> {
  let session: IscsiSession;
  let blockSize = 512;
  try {
    session = await login(l, 5000);
    blockSize = (await session.readCapacity(l.lun)).blockSize;
  } catch (e) {
    process.stdout.write(`${JSON.stringify({ ready: false, error: (e as Error).message })}\n`);
    process.exit(1);
  }
  let registered: string | null = null;
  let keepalive: NodeJS.Timeout | undefined;
  const handle = async (q: PrRequest): Promise<PrAnswer> => {
    try {
      switch (q.op) {
        case 'keys':
          return { ok: true, nexus: 'resident', registered, ...(await state(session, l.lun)) };
        case 'register': {
          await session.prRegister(l.lun, BigInt(q.key));
          registered = keyHex(BigInt(q.key));
          await reserveUnlessHeld(session, l.lun, BigInt(q.key), q.type);
          return { ok: true, nexus: 'resident', registered, ...(await state(session, l.lun)) };
        }
        case 'preempt': {
          // Without a reservation a removed key takes no access away: hold one first (this
          // nexus must be registered, or the target answers RESERVATION CONFLICT).
          await reserveUnlessHeld(session, l.lun, BigInt(q.key), q.type);
          // tgtd answers a PREEMPT of a key nobody holds with RESERVATION CONFLICT; with the
          // reservation held, an unregistered key is already fenced.
          if ((await session.prKeys(l.lun)).includes(BigInt(q.victim)))
            await session.prPreempt(l.lun, BigInt(q.key), BigInt(q.victim), q.type);
          return { ok: true, nexus: 'resident', registered, ...(await state(session, l.lun)) };
        }
        case 'unregister':
          // REGISTER AND IGNORE EXISTING KEY with a zero service action key removes this
          // nexus' registration (and releases the reservation if this nexus held it).
          await session.prRegister(l.lun, 0n);
          registered = null;
          return { ok: true, nexus: 'resident', registered, ...(await state(session, l.lun)) };
        case 'logout':
          // The node leaves the LUN: its registration stays behind, usable by no session.
          setImmediate(() => {
            clearInterval(keepalive);
            server.close();
            void session.logout().catch(() => session.close()).finally(() => process.exit(0));
          });
          return { ok: true, nexus: 'resident', registered };
        case 'write':
          await session.write(l.lun, q.lba, Buffer.from(q.data, 'base64'), blockSize);
          return { ok: true, nexus: 'resident', registered };
        case 'read':
          return { ok: true, nexus: 'resident', registered, data: (await session.read(l.lun, q.lba, q.blocks, blockSize)).toString('base64') };
      }
    } catch (e) {
      return { ...failure(e), nexus: 'resident', registered };
    }
  };
  const server = net.createServer((c) => {
    let buf = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let q: PrRequest;
      try {
        q = JSON.parse(buf.slice(0, nl)) as PrRequest;
      } catch (e) {
        c.end(`${JSON.stringify({ ok: false, error: `bad request: ${(e as Error).message}` })}\n`);
        return;
      }
      void handle(q).then((a) => c.end(`${JSON.stringify(a)}\n`));
    });
    c.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(residentSocket(l), () => resolve());
  });
  // A session the target dropped holds no registration any more: end, so the next
  // `register` logs in again instead of talking through a dead session.
  keepalive = setInterval(() => {
    session.testUnitReady(l.lun).catch((e: unknown) => {
      if (e instanceof ScsiError) return;
      clearInterval(keepalive);
      server.close();
      process.exit(1);
    });
  }, KEEPALIVE_MS);
  process.stdout.on('error', () => undefined);
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
}

// ---------------------------------------------------------------- one request

/** Ask the resident session; undefined when the node has none. */
function askResident(q: PrRequest, timeoutMs: number): Promise<PrAnswer | undefined> {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(residentSocket(q));
    let out = '';
    const t = setTimeout(() => {
      c.destroy();
      reject(new Error(`the node's resident iSCSI session did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    c.setEncoding('utf8');
    c.on('connect', () => c.write(`${JSON.stringify(q)}\n`));
    c.on('data', (d: string) => (out += d));
    c.on('end', () => {
      clearTimeout(t);
      try {
        resolve(JSON.parse(out) as PrAnswer);
      } catch {
        reject(new Error(`the node's resident iSCSI session answered ${JSON.stringify(out)}`));
      }
    });
    c.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') resolve(undefined);
      else reject(e);
    });
  });
}

/** Start the resident session detached (its own session id: it outlives the SSH command). */
function startResident(l: PrLun, timeoutMs: number): Promise<void> {
  const lun: PrLun = { portal: l.portal, iqn: l.iqn, lun: l.lun, initiator: l.initiator };
  const child = spawn(process.execPath, [SCSI_PR_AGENT, 'serve', JSON.stringify(lun)], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the resident iSCSI session to ${l.portal} (${l.iqn}) was not up within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(t);
      const r = JSON.parse(out.slice(0, nl)) as { ready: boolean; error?: string };
      child.stdout!.destroy();
      child.unref();
      if (r.ready) resolve();
      else reject(new Error(`login to ${l.portal} (${l.iqn}) as ${l.initiator} failed: ${r.error}`));
    });
    child.on('exit', (code) => {
      clearTimeout(t);
      if (!out.includes('\n')) reject(new Error(`the resident iSCSI session exited (${code}) before it was up`));
    });
  });
}

async function oneShotKeys(q: PrRequest, timeoutMs: number): Promise<PrAnswer> {
  const s = await login(q, timeoutMs);
  try {
    return { ok: true, nexus: 'one-shot', ...(await state(s, q.lun)) };
  } finally {
    await s.logout().catch(() => s.close());
  }
}

async function request(q: PrRequest): Promise<PrAnswer> {
  const timeoutMs = q.timeoutMs ?? 10_000;
  const resident = await askResident(q, timeoutMs);
  if (resident) return resident;
  switch (q.op) {
    case 'keys':
      // PERSISTENT RESERVE IN is allowed to any nexus under any reservation (SPC-4 table of
      // commands allowed in the presence of reservations): a session made for the read will do.
      return oneShotKeys(q, timeoutMs);
    case 'register':
      await startResident(q, timeoutMs);
      return (await askResident(q, timeoutMs)) ?? { ok: false, error: 'the resident iSCSI session went away right after it started' };
    case 'logout':
      return { ok: true };
    default:
      return {
        ok: false,
        error: `this node (${q.initiator}) has no resident iSCSI session to ${q.portal} (${q.iqn} LUN ${q.lun}): it has not registered since it booted (unfence it)`,
      };
  }
}

async function main(): Promise<void> {
  const [mode, arg] = [process.argv[2], process.argv[3]];
  if (mode === 'serve' && arg) return serve(JSON.parse(arg) as PrLun);
  if (!mode || mode === 'serve') {
    process.stderr.write('usage: scsi-pr-agent.js REQUEST_JSON | serve LUN_JSON\n');
    process.exit(2);
  }
  let answer: PrAnswer;
  try {
    answer = await request(JSON.parse(mode) as PrRequest);
  } catch (e) {
    answer = failure(e);
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
  process.exitCode = answer.ok ? 0 : 1;
}

void main();
