import { checkKind, type SeverityArg } from './check/common.js';
import { driverFor, DEFAULT_TIMEOUT_S, POWER_SECRET_ARGS, type PowerArgs } from './fence.js';
import { describeError } from '../engine/errors.js';

/**
 * `fence_device`: the fence device of `target` answers and reports its power, from where the
 * step runs (the peer that would fence it). A fence device that does not answer is found at
 * the worst time, in the middle of a failover: check it ahead. Status only, never a power
 * change. On or off are both answers (OK); no answer is the problem.
 */
export type FenceDeviceArgs = SeverityArg & Omit<PowerArgs, 'on' | 'off'>;

export interface FenceDeviceObserved {
  power?: 'on' | 'off';
  error?: string;
  device: string;
}

/** A status read should take a second; a cron check must not wait out a fence's 60 s. */
const DEFAULT_CHECK_TIMEOUT_S = 10;

export const fenceDevice = checkKind<FenceDeviceArgs, FenceDeviceObserved>({
  kind: 'fence_device',
  secretArgs: POWER_SECRET_ARGS,

  async probe(ctx, a) {
    const driver = driverFor(ctx, a as PowerArgs);
    const timeoutMs = Math.min((a.timeout ?? DEFAULT_CHECK_TIMEOUT_S) * 1000, ctx.timeoutMs ?? Infinity, DEFAULT_TIMEOUT_S * 1000);
    try {
      return { power: await driver.status(ctx, timeoutMs), device: driver.label };
    } catch (e) {
      // The device not answering is the very thing this check looks for: a finding, not an unknown.
      return { error: describeError(e), device: driver.label };
    }
  },

  problem: (seen, a) => (seen.power ? undefined : `the fence device of ${a.target} (${seen.device}) does not answer: ${seen.error}`),

  healthy: (seen, a) => `${seen.device} answers: ${a.target} is ${seen.power}`,

  describe(a) {
    return { summary: `the fence device of ${a.target} answers a power status request`, commands: [] };
  },
});
