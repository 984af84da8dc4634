/**
 * A minimal ONC RPC v2 client (RFC 5531) for one thing: the NULL procedure of a program over
 * TCP, as `rpcinfo -t HOST nfs 3` does. It is what a client sees of an NFS server through the
 * VIP, asked from baton's own process, with no rpcinfo/rpcbind on the controller.
 *
 * Wire format (XDR, big-endian 32-bit words), call:
 *   xid, msg_type=0 (CALL), rpcvers=2, prog, vers, proc=0,
 *   cred {flavor=0 AUTH_NONE, length 0}, verf {flavor=0, length 0}
 * reply:
 *   xid, msg_type=1 (REPLY), reply_stat (0 MSG_ACCEPTED | 1 MSG_DENIED), then
 *   accepted: verf {flavor, opaque<400>}, accept_stat (0 SUCCESS, 1 PROG_UNAVAIL,
 *             2 PROG_MISMATCH + low/high, 3 PROC_UNAVAIL, 4 GARBAGE_ARGS, 5 SYSTEM_ERR)
 *   denied:   reject_stat (0 RPC_MISMATCH + low/high, 1 AUTH_ERROR + auth_stat)
 * Over TCP each message is framed by record marking (RFC 5531 §11): 4-byte fragment headers,
 * the top bit marks the last fragment, the low 31 bits give the fragment's length.
 */
import net from 'node:net';

export const NFS_PROGRAM = 100003;
export const RPC_VERSION = 2;
const CALL = 0;
const REPLY = 1;
const LAST_FRAGMENT = 0x80000000;
/** A NULL reply is ~24 bytes; anything this large is not an RPC server answering us. */
const MAX_REPLY_BYTES = 64 * 1024;

export type AcceptStat = 'SUCCESS' | 'PROG_UNAVAIL' | 'PROG_MISMATCH' | 'PROC_UNAVAIL' | 'GARBAGE_ARGS' | 'SYSTEM_ERR';
const ACCEPT_STATS: AcceptStat[] = ['SUCCESS', 'PROG_UNAVAIL', 'PROG_MISMATCH', 'PROC_UNAVAIL', 'GARBAGE_ARGS', 'SYSTEM_ERR'];
const AUTH_STATS = ['AUTH_OK', 'AUTH_BADCRED', 'AUTH_REJECTEDCRED', 'AUTH_BADVERF', 'AUTH_REJECTEDVERF', 'AUTH_TOOWEAK', 'AUTH_INVALIDRESP', 'AUTH_FAILED'];

export type RpcReply =
  | { xid: number; accepted: true; stat: AcceptStat; mismatch?: { low: number; high: number } }
  | { xid: number; accepted: false; reject: 'RPC_MISMATCH'; mismatch: { low: number; high: number } }
  | { xid: number; accepted: false; reject: 'AUTH_ERROR'; auth: string };

/** The CALL message of procedure 0 with AUTH_NONE, without framing (40 bytes). */
export function encodeNullCall(xid: number, prog: number, vers: number): Buffer {
  const b = Buffer.alloc(40);
  const words = [xid >>> 0, CALL, RPC_VERSION, prog, vers, 0, 0, 0, 0, 0];
  words.forEach((w, i) => b.writeUInt32BE(w, i * 4));
  return b;
}

/** One message as a single last fragment (record marking). */
export function frameRecord(message: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE((LAST_FRAGMENT | message.length) >>> 0, 0);
  return Buffer.concat([h, message]);
}

/**
 * Reassembles record-marked fragments from a TCP byte stream. `push` returns the whole message
 * once its last fragment arrived, else undefined.
 */
export class RecordReader {
  private buf = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private total = 0;

  push(chunk: Buffer): Buffer | undefined {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.buf.length < 4) return undefined;
      const header = this.buf.readUInt32BE(0);
      const len = header & 0x7fffffff;
      if (this.total + len > MAX_REPLY_BYTES) throw new Error(`RPC record larger than ${MAX_REPLY_BYTES} bytes: not an RPC reply`);
      if (this.buf.length < 4 + len) return undefined;
      this.parts.push(this.buf.subarray(4, 4 + len));
      this.total += len;
      this.buf = this.buf.subarray(4 + len);
      if (header & LAST_FRAGMENT) {
        const msg = Buffer.concat(this.parts);
        this.parts = [];
        this.total = 0;
        return msg;
      }
    }
  }
}

/** Decode a REPLY message (unframed). Throws on anything that is not a well-formed reply. */
export function decodeReply(msg: Buffer): RpcReply {
  let off = 0;
  const u32 = (): number => {
    if (off + 4 > msg.length) throw new Error(`RPC reply truncated at byte ${off} of ${msg.length}`);
    const v = msg.readUInt32BE(off);
    off += 4;
    return v;
  };
  const xid = u32();
  const type = u32();
  if (type !== REPLY) throw new Error(`not an RPC reply (msg_type ${type})`);
  const replyStat = u32();
  if (replyStat === 0) {
    u32(); // verifier flavor
    const vlen = u32();
    if (vlen > 400) throw new Error(`RPC reply verifier of ${vlen} bytes (at most 400 allowed)`);
    off += (vlen + 3) & ~3;
    const code = u32();
    const stat = ACCEPT_STATS[code];
    if (!stat) throw new Error(`RPC reply with unknown accept_stat ${code}`);
    if (stat === 'PROG_MISMATCH') return { xid, accepted: true, stat, mismatch: { low: u32(), high: u32() } };
    return { xid, accepted: true, stat };
  }
  if (replyStat === 1) {
    const reject = u32();
    if (reject === 0) return { xid, accepted: false, reject: 'RPC_MISMATCH', mismatch: { low: u32(), high: u32() } };
    if (reject === 1) {
      const a = u32();
      return { xid, accepted: false, reject: 'AUTH_ERROR', auth: AUTH_STATS[a] ?? `auth_stat ${a}` };
    }
    throw new Error(`RPC reply with unknown reject_stat ${reject}`);
  }
  throw new Error(`RPC reply with unknown reply_stat ${replyStat}`);
}

/** One line for a human: what the server said. */
export function describeReply(r: RpcReply): string {
  if (r.accepted) {
    if (r.stat === 'PROG_MISMATCH') return `program version not served (server offers ${r.mismatch!.low}..${r.mismatch!.high})`;
    return r.stat === 'SUCCESS' ? 'NULL call answered' : `call not accepted: ${r.stat}`;
  }
  if (r.reject === 'RPC_MISMATCH') return `RPC version mismatch (server speaks ${r.mismatch.low}..${r.mismatch.high})`;
  return `authentication refused: ${r.auth}`;
}

export interface NullCallOptions {
  host: string;
  port: number;
  prog: number;
  vers: number;
  timeoutMs: number;
  /** Source address to bind (the controller's address in the right network). */
  localAddress?: string;
}

export interface NullCallResult {
  ok: boolean;
  /** What happened: the reply in words, or the connection error. */
  message: string;
  reply?: RpcReply;
  /** Connect to reply, in milliseconds. */
  rttMs: number;
}

let nextXid = (Date.now() ^ (process.pid << 16)) >>> 0;

/**
 * NULL call over TCP. Never throws: a refused connection, a timeout or a garbled reply come back
 * as `ok: false` with the reason, since for a health check they are answers, not bugs.
 */
export function nullCall(o: NullCallOptions): Promise<NullCallResult> {
  const t0 = performance.now();
  const xid = (nextXid = (nextXid + 1) >>> 0);
  return new Promise((resolve) => {
    const sock = net.connect({ host: o.host, port: o.port, localAddress: o.localAddress });
    const reader = new RecordReader();
    let done = false;
    const finish = (r: Omit<NullCallResult, 'rttMs'>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ ...r, rttMs: Math.round((performance.now() - t0) * 10) / 10 });
    };
    const timer = setTimeout(() => finish({ ok: false, message: `no answer from ${o.host}:${o.port} within ${o.timeoutMs} ms` }), o.timeoutMs);
    sock.on('connect', () => sock.write(frameRecord(encodeNullCall(xid, o.prog, o.vers))));
    sock.on('data', (chunk: Buffer) => {
      try {
        const msg = reader.push(chunk);
        if (!msg) return;
        const reply = decodeReply(msg);
        if (reply.xid !== xid) return finish({ ok: false, message: `reply for another call (xid ${reply.xid}, sent ${xid})` });
        finish({ ok: reply.accepted && reply.stat === 'SUCCESS', message: describeReply(reply), reply });
      } catch (e) {
        finish({ ok: false, message: (e as Error).message });
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, message: `${o.host}:${o.port}: ${e.code ?? e.message}` }));
    sock.on('close', () => finish({ ok: false, message: `${o.host}:${o.port} closed the connection without a reply` }));
  });
}
