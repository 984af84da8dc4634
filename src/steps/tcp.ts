import { checkKind, type SeverityArg } from './check/common.js';
import { tcpConnect } from '../net/tcp.js';
import { tcpProbeArgv } from './wait-for.js';

/**
 * `tcp`: a TCP port accepts connections, seen from the controller (default: what a client on
 * the controller's network sees) or from the node the step runs on (`from: node`, wait_for's
 * probe over SSH).
 */
export interface TcpArgs extends SeverityArg {
  host: string;
  port: number;
  /** Seconds (default 2). */
  timeout?: number;
  from?: 'controller' | 'node';
}

export interface TcpObserved {
  open: boolean;
  error?: string;
}

const seenFrom = (a: TcpArgs, node: string) => ((a.from ?? 'controller') === 'node' ? `from ${node}` : 'from the controller');

export const tcp = checkKind<TcpArgs, TcpObserved & { from: string }>({
  kind: 'tcp',

  async probe(ctx, a) {
    const timeoutMs = (a.timeout ?? 2) * 1000;
    if ((a.from ?? 'controller') === 'node') {
      // wait_for's probe gives up after 2 s on its own (`timeout 2`); 124 = that timeout.
      const r = await ctx.run(tcpProbeArgv(a.host, a.port), { okCodes: [0, 1, 124], timeoutMs: timeoutMs + 1000 });
      return { open: r.code === 0, ...(r.code === 0 ? {} : { error: r.code === 124 ? 'timed out' : r.stderr.trim().split('\n').pop() }), from: seenFrom(a, ctx.transport.host) };
    }
    const r = await tcpConnect(a.host, a.port, timeoutMs);
    return { open: r.open, ...(r.error ? { error: r.error } : {}), from: seenFrom(a, ctx.transport.host) };
  },

  problem: (seen, a) => (seen.open ? undefined : `${a.host}:${a.port} does not accept connections ${seen.from}${seen.error ? `: ${seen.error}` : ''}`),

  healthy: (seen, a) => `${a.host}:${a.port} open ${seen.from}`,

  describe(a) {
    const node = (a.from ?? 'controller') === 'node';
    return { summary: `${a.host}:${a.port} accepts TCP connections (${node ? 'from the node' : 'from the controller'})`, commands: node ? [tcpProbeArgv(a.host, a.port)] : [] };
  },
});
