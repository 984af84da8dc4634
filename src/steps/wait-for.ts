import type { StepContext, StepKind } from './contract.js';
import { StepRefusedError } from './contract.js';

/**
 * `wait_for`: wait until a TCP port is open (`started`) or closed (`stopped`), seen from
 * the node the step runs on, as Ansible's wait_for does. Read-only: waiting changes nothing.
 */
export interface WaitForArgs {
  host: string;
  port: number;
  state?: 'started' | 'stopped';
  /** Seconds before giving up (default 30). */
  timeout?: number;
  /** Seconds between probes (default 0.25). */
  interval?: number;
}

export interface WaitForObserved {
  open: boolean;
}

/**
 * The probe script is constant; host and port travel as positional arguments, so they
 * are data to bash, never code. bash's /dev/tcp needs no netcat on the node.
 */
const TCP_PROBE = 'exec 3<>"/dev/tcp/$1/$2"';

export function tcpProbeArgv(host: string, port: number): string[] {
  return ['timeout', '2', 'bash', '-c', TCP_PROBE, 'baton-wait-for', host, String(port)];
}

async function isOpen(ctx: StepContext, a: WaitForArgs): Promise<boolean> {
  const r = await ctx.run(tcpProbeArgv(a.host, a.port), { okCodes: [0, 1, 124] });
  return r.code === 0;
}

const wanted = (a: WaitForArgs) => (a.state ?? 'started') === 'started';

export const waitFor: StepKind<WaitForArgs, WaitForObserved> = {
  kind: 'wait_for',
  role: 'neutral',
  defaultTimeoutS: (a) => (a.timeout ?? 30) + 10,
  readOnly: true,

  async probe(ctx, a) {
    return { open: await isOpen(ctx, a) };
  },

  satisfied(seen, a) {
    return seen.open === wanted(a);
  },

  async apply(ctx, a) {
    const deadline = Date.now() + (a.timeout ?? 30) * 1000;
    const intervalMs = (a.interval ?? 0.25) * 1000;
    for (;;) {
      if ((await isOpen(ctx, a)) === wanted(a)) return;
      if (Date.now() >= deadline) {
        throw new StepRefusedError(
          `${a.host}:${a.port} was still ${wanted(a) ? 'closed' : 'open'} after ${a.timeout ?? 30} s (seen from ${ctx.transport.host})`,
        );
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  },

  async revert() {
    // Waiting changed nothing, so there is nothing to put back.
  },

  describe(a) {
    return {
      summary: `wait up to ${a.timeout ?? 30} s for ${a.host}:${a.port} to be ${wanted(a) ? 'open' : 'closed'}`,
      commands: [tcpProbeArgv(a.host, a.port)],
    };
  },
};
