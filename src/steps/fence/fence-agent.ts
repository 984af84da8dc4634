/**
 * fence-agent provider: any `fence_*` agent through the fence-agents stdin protocol
 * (`key=value` lines; exit 0 = success, 1 = failure; for status 0 = on, 2 = off with the
 * `Status: OFF` line). Every option, the password included, travels on stdin: the agent's argv
 * is its name alone. Warnings the agent prints on stderr (an unknown option it ignored) are
 * passed on: in messages, to `-v`, and to `fence_device`, which reports them as a WARNING.
 */
import { CommandFailedError, type StepContext } from '../contract.js';
import { agentWarnings, fenceAgentStdin, judgeAgentStatus, type AgentOptions, type PowerState } from '../../facts/power.js';
import type { PowerDriver } from '../fence.js';
import { ANY_EXIT_STATUS } from '../../transport/transport.js';

/** Keys shown in place of their values in messages and plans. */
const HIDDEN_KEYS = /pass|secret|token|key/i;

function visible(options: AgentOptions): string {
  return Object.entries(options)
    .map(([k, v]) => `${k}=${HIDDEN_KEYS.test(k) ? '********' : String(v)}`)
    .join(' ');
}

type Action = 'on' | 'off' | 'status' | 'monitor';

/** The fence-agent driver, plus the agents' own health action for `fence_device`. */
export interface FenceAgentDriver extends PowerDriver {
  /**
   * action=monitor: the device answers (exit 0) or not. It checks what a fence would need
   * (login, the connection) without switching anything. Warnings come back with the answer.
   */
  monitor(ctx: StepContext, timeoutMs: number): Promise<{ warnings: string[] }>;
  /** Warnings of the last call (cleared by each call). */
  lastWarnings(): string[];
}

export function isFenceAgentDriver(d: PowerDriver): d is FenceAgentDriver {
  return typeof (d as Partial<FenceAgentDriver>).monitor === 'function';
}

export function fenceAgentDriver(agent: string, options: AgentOptions): FenceAgentDriver {
  let warnings: string[] = [];
  const call = async (ctx: StepContext, action: Action, timeoutMs: number) => {
    const opts = { ...options, action };
    let r;
    try {
      // Agents count their own power_timeout; the step's deadline still bounds the whole call.
      r = await ctx.run([agent], { stdin: fenceAgentStdin(opts), okCodes: ANY_EXIT_STATUS, timeoutMs });
    } catch (e) {
      if (e instanceof CommandFailedError) {
        const x = e.result;
        throw new Error(
          `fence agent ${agent} (action=${action}) run on ${ctx.transport.host} ${x.timedOut ? `did not finish within ${Math.round(timeoutMs / 1000)} s and was killed` : `was killed by ${x.signal}`}; stdin: ${visible(opts)}`,
        );
      }
      throw e;
    }
    warnings = agentWarnings(r.stderr);
    for (const w of warnings) ctx.log(`fence agent ${agent} (action=${action}) on ${ctx.transport.host}: ${w}`);
    return r;
  };
  const failure = (ctx: StepContext, action: Action, why: string, output: string) =>
    new Error(
      `fence agent ${agent} (action=${action}) run on ${ctx.transport.host} ${why}: ${lastLines(output) || '(no output)'}` +
        `${warnings.length ? `; warnings: ${warnings.join('; ')}` : ''}; stdin: ${visible({ ...options, action })}`,
    );
  return {
    label: `${agent} ${options.ip !== undefined ? `ip=${String(options.ip)}${options.ipport !== undefined ? `:${String(options.ipport)}` : ''}` : ''}`.trim(),
    async status(ctx, timeoutMs): Promise<PowerState> {
      const r = await call(ctx, 'status', timeoutMs);
      const judged = judgeAgentStatus(r.code, r.stdout);
      if ('problem' in judged) throw failure(ctx, 'status', judged.problem, `${r.stderr}\n${r.stdout}`);
      return judged.state;
    },
    async set(ctx, state, timeoutMs) {
      const r = await call(ctx, state, timeoutMs);
      if (r.code !== 0) throw failure(ctx, state, `exited ${r.code}`, r.stderr || r.stdout);
    },
    async monitor(ctx, timeoutMs) {
      const r = await call(ctx, 'monitor', timeoutMs);
      if (r.code !== 0) throw failure(ctx, 'monitor', `exited ${r.code}`, r.stderr || r.stdout);
      return { warnings };
    },
    lastWarnings: () => warnings,
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
