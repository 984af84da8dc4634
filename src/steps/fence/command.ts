/**
 * command provider: the site's own power tool (a PDU's CLI, a cloud API client). Three argvs
 * run where the step runs; the status argv's output matched against `off_pattern` says off.
 */
import { CommandFailedError, type StepContext } from '../contract.js';
import { statusFromPattern, type PowerState } from '../../facts/power.js';
import type { PowerDriver } from '../fence.js';
import { ANY_EXIT_STATUS } from '../../transport/transport.js';

export interface PowerCommands {
  on?: string[];
  off?: string[];
  status?: string[];
  off_pattern?: string;
}

export function commandDriver(c: PowerCommands): PowerDriver {
  const need = (what: keyof PowerCommands) => {
    const v = c[what];
    if (!v || (Array.isArray(v) && v.length === 0)) throw new Error(`provider command needs \`${what}\` (an argv) for this step`);
    return v;
  };
  return {
    label: `${(c.status ?? c.off ?? ['command'])[0]}`,
    async status(ctx: StepContext, timeoutMs: number): Promise<PowerState> {
      const argv = need('status') as string[];
      const pattern = need('off_pattern') as string;
      let r;
      try {
        r = await ctx.run(argv, { okCodes: ANY_EXIT_STATUS, timeoutMs });
      } catch (e) {
        if (e instanceof CommandFailedError) throw new Error(`power status command \`${argv.join(' ')}\` on ${ctx.transport.host} did not finish within ${Math.round(timeoutMs / 1000)} s`);
        throw e;
      }
      // A tool that fails is no reading, whatever it printed: "could not switch outlet 3 off:
      // timed out" matches an off_pattern of `off`, and a fence confirmed on it would not be one.
      if (r.code !== 0) {
        throw new Error(`power status command \`${argv.join(' ')}\` on ${ctx.transport.host} exited ${r.code}: ${(r.stderr || r.stdout).trim() || '(no output)'}; its output is not read as a power state`);
      }
      return statusFromPattern(r.stdout, pattern);
    },
    async set(ctx, state, timeoutMs) {
      await ctx.run(need(state) as string[], { timeoutMs });
    },
    commands: (action) => {
      const v = c[action];
      return v && v.length ? [v] : [];
    },
  };
}
