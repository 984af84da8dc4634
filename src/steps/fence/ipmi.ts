/**
 * ipmi provider: `ipmitool chassis power` against the target's BMC, run where the step runs
 * (a surviving node or the controller). The password reaches ipmitool through stdin and -E,
 * never through argv (see facts/power.ts).
 */
import { CommandFailedError, type StepContext } from '../contract.js';
import { BmcError, ipmitoolArgv, readIpmiPower, retryFor, withPasswordOnStdin, type BmcSpec, type PowerState } from '../../facts/power.js';
import type { PowerDriver } from '../fence.js';

export function ipmiDriver(bmc: BmcSpec): PowerDriver {
  const label = `BMC ${bmc.address}${bmc.port !== undefined ? `:${bmc.port}` : ''}`;
  return {
    label,
    async status(ctx: StepContext, timeoutMs: number): Promise<PowerState> {
      try {
        return await readIpmiPower(ctx, bmc, timeoutMs);
      } catch (e) {
        throw asBmcError(e, bmc, ipmitoolArgv(bmc, 'status', retryFor(timeoutMs)), ctx);
      }
    },
    async set(ctx: StepContext, state: PowerState, timeoutMs: number): Promise<void> {
      const argv = ipmitoolArgv(bmc, state, retryFor(timeoutMs));
      try {
        const r = await ctx.run(withPasswordOnStdin(argv), { stdin: `${bmc.password}\n`, okCodes: [0, 1, 97], timeoutMs });
        if (r.code !== 0) throw new BmcError(bmc, argv, ctx.transport.host, r.stderr || r.stdout, r.code);
      } catch (e) {
        throw asBmcError(e, bmc, argv, ctx);
      }
    },
    commands: (action) => [withPasswordOnStdin(ipmitoolArgv(bmc, action))],
  };
}

function asBmcError(e: unknown, bmc: BmcSpec, argv: string[], ctx: StepContext): Error {
  if (e instanceof BmcError) return e;
  if (e instanceof CommandFailedError) {
    const r = e.result;
    const detail = r.timedOut ? `no answer within ${Math.round(r.durationMs / 1000)} s (killed)` : r.stderr || r.stdout;
    return new BmcError(bmc, argv, ctx.transport.host, detail, r.code);
  }
  return e instanceof Error ? e : new Error(String(e));
}
