import type { Transport } from '../../transport/transport.js';
import type { TransportSource } from '../context.js';

/**
 * A pool whose transports run `check` before every command: the run's locks must still be held
 * (DESIGN.md, safety), so a command after the lock was taken over is refused, not run. One view
 * per connection, the same for every step: what a step learned about a node
 * (facts/remembered.ts) is there for the next one.
 */
export function guardedPool(pool: TransportSource, check: () => Promise<void> | void): TransportSource {
  const views = new WeakMap<Transport, Transport>();
  const view = (t: Transport): Transport => {
    let v = views.get(t);
    if (!v) {
      v = {
        host: t.host,
        kind: t.kind,
        connect: () => t.connect(),
        close: () => t.close(),
        exec: async (argv, opts) => {
          await check();
          return t.exec(argv, opts);
        },
      };
      views.set(t, v);
    }
    return v;
  };
  return {
    get: async (host) => view(await pool.get(host)),
    markDown: pool.markDown ? (host, reason) => pool.markDown!(host, reason) : undefined,
  };
}
