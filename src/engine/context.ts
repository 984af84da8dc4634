import type { Host, Inventory } from '../inventory/model.js';
import type { ExecOptions, Transport } from '../transport/transport.js';
import { withBecomeKeyword } from '../transport/become.js';
import { CommandFailedError, type RunOptions, type StepContext } from '../steps/contract.js';

/** Anything that hands out connected transports by inventory host name (TransportPool in practice). */
export interface TransportSource {
  get(host: string): Promise<Transport>;
  /** See StepContext.markDown. */
  markDown?(host: string, reason: string | null): void;
}

export interface ContextOptions {
  host: Host;
  transport: Transport;
  inventory: Inventory;
  pool: TransportSource;
  vars: Record<string, unknown>;
  force: boolean;
  timeoutMs?: number;
  /** The play's or step's `become`: every command of the step, peers' included, runs through it. */
  become?: ExecOptions['become'];
  /** Aborts every command of the step (step timeout, interrupt). */
  signal?: AbortSignal;
  log: (message: string) => void;
  /** Told when the step marks a host down or up again (a fence kind's confirmation: the run's safety notes it). */
  onMarkDown?: (host: string, reason: string | null) => void;
  /** Called with every command and its result, for -v output and the failure report. */
  onCommand?: (argv: string[], result: { code: number | null; durationMs: number }) => void;
}

/**
 * Ansible's `become` keywords for one step: the step's wins over the play's (the inventory's
 * ansible_become wins over both, in the transport). Unset: undefined; `become: false`: false.
 */
export function becomeOf(play: { become?: boolean; becomeUser?: string }, step: { become?: boolean; becomeUser?: string }): ExecOptions['become'] {
  const on = step.become ?? play.become;
  return on === undefined ? undefined : on ? { user: step.becomeUser ?? play.becomeUser } : false;
}

/** The StepContext a step kind sees: commands run where the step runs, failures become CommandFailedError. */
export function makeStepContext(o: ContextOptions): StepContext {
  const transport = withBecomeKeyword(o.transport, o.become);
  return {
    host: o.host,
    transport,
    inventory: o.inventory,
    vars: o.vars,
    force: o.force,
    timeoutMs: o.timeoutMs,
    log: o.log,
    transportFor: async (name) => withBecomeKeyword(await o.pool.get(name), o.become),
    markDown: (name, reason) => {
      o.pool.markDown?.(name, reason);
      o.onMarkDown?.(name, reason);
    },
    async run(argv: string[], opts: RunOptions = {}) {
      const { okCodes = [0], ...exec } = opts;
      const result = await transport.exec(argv, {
        ...exec,
        timeoutMs: exec.timeoutMs ?? o.timeoutMs,
        signal: exec.signal ?? o.signal,
      });
      o.onCommand?.(argv, result);
      if (result.timedOut || result.code === null || !okCodes.includes(result.code)) {
        throw new CommandFailedError(transport.host, result);
      }
      return result;
    },
  };
}
