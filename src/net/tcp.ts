import net from 'node:net';

export interface TcpConnectResult {
  open: boolean;
  /** Why not: ECONNREFUSED, a timeout… */
  error?: string;
  rttMs: number;
}

/** Open and close a TCP connection from baton's own process. Never throws. */
export function tcpConnect(host: string, port: number, timeoutMs: number): Promise<TcpConnectResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let done = false;
    const finish = (open: boolean, error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ open, ...(error ? { error } : {}), rttMs: Math.round((performance.now() - t0) * 10) / 10 });
    };
    const timer = setTimeout(() => finish(false, `no answer within ${timeoutMs} ms`), timeoutMs);
    sock.on('connect', () => finish(true));
    sock.on('error', (e: NodeJS.ErrnoException) => finish(false, e.code ?? e.message));
  });
}
