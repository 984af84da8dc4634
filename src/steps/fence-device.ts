import { checkKind, type SeverityArg } from './check/common.js';
import { driverFor, DEFAULT_TIMEOUT_S, POWER_SECRET_ARGS, type PowerArgs } from './fence.js';
import { isFenceAgentDriver } from './fence/fence-agent.js';
import { describeError } from '../engine/errors.js';

/**
 * `fence_device`: the fence device of `target` answers, from where the step runs (the peer
 * that would fence it). A fence device that does not answer is found at the worst time, in the
 * middle of a failover: check it ahead. Never a power change.
 *
 * With a fence agent it asks the agents' health action, `monitor` (the device answers and
 * accepts the login, without reading or switching a plug's power); the other providers read
 * the power status. An agent that answered but warned (an unknown option it ignored: a typo
 * the day it must fence) is a WARNING.
 */
export type FenceDeviceArgs = SeverityArg & Omit<PowerArgs, 'on' | 'off'>;

export interface FenceDeviceObserved {
  /** The device answered (monitor exit 0, or a power status read). */
  answers: boolean;
  /** The power read, for providers asked with a status read. */
  power?: 'on' | 'off';
  error?: string;
  device: string;
  /** What the agent warned about on stderr. */
  warnings?: string[];
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
      if (isFenceAgentDriver(driver)) {
        const { warnings } = await driver.monitor(ctx, timeoutMs);
        return { answers: true, device: driver.label, ...(warnings.length ? { warnings } : {}) };
      }
      return { answers: true, power: await driver.status(ctx, timeoutMs), device: driver.label };
    } catch (e) {
      // The device not answering is the very thing this check looks for: a finding, not an unknown.
      const warnings = isFenceAgentDriver(driver) ? driver.lastWarnings() : [];
      return { answers: false, error: describeError(e), device: driver.label, ...(warnings.length ? { warnings } : {}) };
    }
  },

  problem(seen, a) {
    if (!seen.answers) return `the fence device of ${a.target} (${seen.device}) does not answer: ${seen.error}`;
    // The warning first: it is what to fix, and what a one-line summary keeps.
    if (seen.warnings?.length) return `agent warning: ${seen.warnings.join('; ')}; the fence device of ${a.target} (${seen.device}) answers`;
    return undefined;
  },

  // Not answering is as bad as the check's severity says; a warning from an agent that answered is a warning.
  severityOf: (seen, a) => (seen.answers ? 'warning' : (a.severity ?? 'critical')),

  healthy: (seen, a) => (seen.power ? `${seen.device} answers: ${a.target} is ${seen.power}` : `${seen.device} answers (monitor)`),

  describe(a) {
    const how = a.provider === 'fence-agent' ? `a monitor request (${a.agent ?? 'fence agent'})` : 'a power status request';
    return { summary: `the fence device of ${a.target} answers ${how}`, commands: [] };
  },
});
