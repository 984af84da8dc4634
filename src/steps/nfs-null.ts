import { checkKind, type SeverityArg } from './check/common.js';
import { NFS_PROGRAM, nullCall } from '../net/oncrpc.js';

/**
 * `nfs_null`: the NFS server answers an RPC NULL call (program 100003, procedure 0) over TCP at
 * `address` — normally the VIP. The call is made from baton's own process on the controller,
 * not from a node over SSH: a node asking its own VIP would reach itself through loopback
 * routing, while the controller crosses the network to whichever node answers for the VIP,
 * as a client does. It needs no rpcinfo on either side.
 */
export interface NfsNullArgs extends SeverityArg {
  address: string;
  port?: number;
  version?: 3 | 4;
  /** Seconds to wait for the reply (default 2). */
  timeout?: number;
}

export interface NfsNullObserved {
  answered: boolean;
  message: string;
  rttMs: number;
}

const target = (a: NfsNullArgs) => `${a.address}:${a.port ?? 2049}`;

export const nfsNull = checkKind<NfsNullArgs, NfsNullObserved>({
  kind: 'nfs_null',
  fromController: true,

  async probe(_ctx, a) {
    const r = await nullCall({ host: a.address, port: a.port ?? 2049, prog: NFS_PROGRAM, vers: a.version ?? 4, timeoutMs: (a.timeout ?? 2) * 1000 });
    return { answered: r.ok, message: r.message, rttMs: r.rttMs };
  },

  problem: (seen, a) => (seen.answered ? undefined : `NFSv${a.version ?? 4} NULL call to ${target(a)} failed: ${seen.message}`),

  healthy: (seen, a) => `NFSv${a.version ?? 4} at ${target(a)} answered in ${seen.rttMs} ms`,

  describe(a) {
    return { summary: `NFSv${a.version ?? 4} server at ${target(a)} answers a NULL call (from the controller)`, commands: [] };
  },
});
