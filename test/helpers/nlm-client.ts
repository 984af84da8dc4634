/**
 * Just enough of an NFSv3 client to take a real NLM lock, for tests: the lab's clients have no
 * kernel NFS client (libnfs cannot lock), and an NFSv3 lock holder is what puts a client in a
 * server's statd monitor list (NFS-Ganesha sends SM_MON while it handles the lock request).
 * ONC RPC over TCP (RFC 5531, record marking), XDR (RFC 4506): portmap GETPORT (RFC 1833),
 * MOUNT3 MNT and NFS3 LOOKUP (RFC 1813), NLM4 LOCK (Open Group XNFS, NLM version 4).
 * Run it in a client's network namespace (test/helpers/nlm-lock-main.ts under vite-node).
 */
import net from 'node:net';
import os from 'node:os';

class Xdr {
  private parts: Buffer[] = [];
  u32(n: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    this.parts.push(b);
    return this;
  }
  u64(n: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(n);
    this.parts.push(b);
    return this;
  }
  opaque(data: Buffer): this {
    this.u32(data.length);
    this.parts.push(data, Buffer.alloc((4 - (data.length % 4)) % 4));
    return this;
  }
  string(s: string): this {
    return this.opaque(Buffer.from(s));
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

class XdrReader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  u32(): number {
    const n = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return n;
  }
  opaque(): Buffer {
    const len = this.u32();
    const data = this.buf.subarray(this.at, this.at + len);
    this.at += len + ((4 - (len % 4)) % 4);
    return data;
  }
}

const PORTMAP = 100000;
const NFS = 100003;
const MOUNT = 100005;
const NLM = 100021;

let xid = (Date.now() & 0xffff) << 8;

function authUnix(): Buffer {
  return new Xdr().u32(0).string(os.hostname()).u32(0).u32(0).u32(0).bytes();
}

/** One RPC call on its own TCP connection; resolves with the reply's results. */
function call(host: string, port: number, prog: number, vers: number, proc: number, args: Buffer): Promise<XdrReader> {
  const id = ++xid;
  const msg = new Xdr().u32(id).u32(0).u32(2).u32(prog).u32(vers).u32(proc).u32(1).opaque(authUnix()).u32(0).u32(0).bytes();
  const body = Buffer.concat([msg, args]);
  const header = Buffer.alloc(4);
  header.writeUInt32BE((0x80000000 | body.length) >>> 0);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    sock.setTimeout(10_000, () => sock.destroy(new Error(`RPC ${prog}/${vers}/${proc} to ${host}:${port}: no reply in 10 s`)));
    let got = Buffer.alloc(0);
    sock.on('connect', () => sock.write(Buffer.concat([header, body])));
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length < 4) return;
      const len = got.readUInt32BE(0) & 0x7fffffff;
      if (got.length < 4 + len) return;
      sock.end();
      const r = new XdrReader(got.subarray(4, 4 + len));
      if (r.u32() !== id || r.u32() !== 1) return reject(new Error(`RPC ${prog}/${vers}/${proc}: not a reply to our call`));
      if (r.u32() !== 0) return reject(new Error(`RPC ${prog}/${vers}/${proc} to ${host}:${port}: call denied`));
      r.u32();
      r.opaque();
      const accept = r.u32();
      if (accept !== 0) return reject(new Error(`RPC ${prog}/${vers}/${proc} to ${host}:${port}: accept_stat ${accept}`));
      resolve(r);
    });
    sock.on('error', reject);
  });
}

async function getPort(host: string, prog: number, vers: number): Promise<number> {
  const r = await call(host, 111, PORTMAP, 2, 3, new Xdr().u32(prog).u32(vers).u32(6).u32(0).bytes());
  const port = r.u32();
  if (!port) throw new Error(`${host}: program ${prog} version ${vers} is not registered with rpcbind over TCP`);
  return port;
}

export interface LockResult {
  /** nlm4_stats: 0 granted, 1 denied, 2 denied_nolocks, 3 blocked, 4 denied_grace_period, … */
  stat: number;
  nlmPort: number;
}

/**
 * Take an exclusive NLM lock on EXPORT/FILE through SERVER (a VIP), as CALLER. The lock stays
 * with the server after this returns (NLM locks do not need the connection).
 */
export async function nlmLock(o: { server: string; exportPath: string; file: string; caller: string }): Promise<LockResult> {
  const mountPort = await getPort(o.server, MOUNT, 3);
  const mnt = await call(o.server, mountPort, MOUNT, 3, 1, new Xdr().string(o.exportPath).bytes());
  const mstat = mnt.u32();
  if (mstat !== 0) throw new Error(`MOUNT ${o.server}:${o.exportPath}: mountstat3 ${mstat}`);
  const root = Buffer.from(mnt.opaque());
  const look = await call(o.server, 2049, NFS, 3, 3, new Xdr().opaque(root).string(o.file).bytes());
  const nstat = look.u32();
  if (nstat !== 0) throw new Error(`LOOKUP ${o.file} in ${o.server}:${o.exportPath}: nfsstat3 ${nstat}`);
  const fh = Buffer.from(look.opaque());
  const nlmPort = await getPort(o.server, NLM, 4);
  const args = new Xdr()
    .opaque(Buffer.from('baton-test'))
    .u32(0) // block
    .u32(1) // exclusive
    .string(o.caller)
    .opaque(fh)
    .opaque(Buffer.from(`${o.caller}-owner`))
    .u32(process.pid)
    .u64(0n)
    .u64(0n)
    .u32(0) // reclaim
    .u32(0) // state
    .bytes();
  const res = await call(o.server, nlmPort, NLM, 4, 2, args);
  res.opaque();
  return { stat: res.u32(), nlmPort };
}
