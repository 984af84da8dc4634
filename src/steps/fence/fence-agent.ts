/**
 * fence-agent provider: any `fence_*` agent through the fence-agents stdin protocol
 * (`key=value` lines; exit 0 = success, 1 = failure; for status 0 = on, 2 = off). Every option,
 * the password included, travels on stdin: the agent's argv is its name alone.
 */
import { CommandFailedError, type StepContext } from '../contract.js';
import { agentStatusFromExit, fenceAgentStdin, parseAgentStatus, type AgentOptions, type PowerState } from '../../facts/power.js';
import type { PowerDriver } from '../fence.js';

/** Keys shown in place of their values in messages and plans. */
const HIDDEN_KEYS = /pass|secret|token|key/i;

function visible(options: AgentOptions): string {
  return Object.entries(options)
    .map(([k, v]) => `${k}=${HIDDEN_KEYS.test(k) ? '********' : String(v)}`)
    .join(' ');
}

export function fenceAgentDriver(agent: string, options: AgentOptions): PowerDriver {
  const call = async (ctx: StepContext, action: 'on' | 'off' | 'status', timeoutMs: number) => {
    const opts = { ...options, action };
    try {
      // Agents count their own power_timeout; the step's deadline still bounds the whole call.
      return await ctx.run([agent], { stdin: fenceAgentStdin(opts), okCodes: Array.from({ length: 256 }, (_, i) => i), timeoutMs });
    } catch (e) {
      if (e instanceof CommandFailedError) {
        const r = e.result;
        throw new Error(
          `fence agent ${agent} (action=${action}) run on ${ctx.transport.host} ${r.timedOut ? `did not finish within ${Math.round(timeoutMs / 1000)} s and was killed` : `was killed by ${r.signal}`}; stdin: ${visible(opts)}`,
        );
      }
      throw e;
    }
  };
  const failure = (ctx: StepContext, action: string, code: number | null, stderr: string) =>
    new Error(
      `fence agent ${agent} (action=${action}) run on ${ctx.transport.host} exited ${code}: ${lastLines(stderr) || '(no output)'}; stdin: ${visible({ ...options, action })}`,
    );
  return {
    label: `${agent} ${options.ip !== undefined ? `ip=${String(options.ip)}${options.ipport !== undefined ? `:${String(options.ipport)}` : ''}` : ''}`.trim(),
    async status(ctx, timeoutMs): Promise<PowerState> {
      const r = await call(ctx, 'status', timeoutMs);
      const byExit = agentStatusFromExit(r.code);
      if (!byExit) throw failure(ctx, 'status', r.code, r.stderr || r.stdout);
      // The exit code is the protocol; the printed line is only a cross-check when present.
      const printed = parseAgentStatus(r.stdout);
      if (printed && printed !== byExit) {
        throw new Error(`fence agent ${agent} on ${ctx.transport.host}: status exit code ${r.code} means ${byExit} but it printed "Status: ${printed.toUpperCase()}"`);
      }
      return byExit;
    },
    async set(ctx, state, timeoutMs) {
      const r = await call(ctx, state, timeoutMs);
      if (r.code !== 0) throw failure(ctx, state, r.code, r.stderr || r.stdout);
    },
    // The options are not argv: they go on stdin (shown with the password masked in errors).
    commands: () => [[agent]],
  };
}

/** Python agents print deprecation warnings first; the cause is at the end. */
function lastLines(text: string, n = 3): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/DeprecationWarning|^from pipes import/.test(l))
    .slice(-n)
    .join(' | ');
}
