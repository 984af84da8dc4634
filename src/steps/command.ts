import type { StepContext, StepKind } from './contract.js';

/**
 * `command`: the escape hatch. An argv (never a shell string), made idempotent by
 * `creates`/`removes` (as in Ansible), and made reversible by an explicit `revert` argv.
 *
 *   - command: [systemctl, restart, nfs-server]
 *   - command: { argv: [touch, /srv/flag], creates: /srv/flag, revert: [rm, -f, /srv/flag] }
 */
export interface CommandArgs {
  argv: string[];
  /** The step is done when this path exists (probed with `test -e`). */
  creates?: string;
  /** The step is done when this path does not exist. */
  removes?: string;
  /** Run on rollback/undo. Without it, reverting this step does nothing (said in the output). */
  revert?: string[];
  stdin?: string;
  env?: Record<string, string>;
  /** Exit codes that count as success (default [0]). */
  ok_codes?: number[];
}

type Raw = string[] | CommandArgs;

export interface CommandObserved {
  createsExists?: boolean;
  removesExists?: boolean;
}

export function normalizeCommandArgs(raw: Raw): CommandArgs {
  return Array.isArray(raw) ? { argv: raw } : raw;
}

async function exists(ctx: StepContext, path: string): Promise<boolean> {
  const r = await ctx.run(['test', '-e', path], { okCodes: [0, 1] });
  return r.code === 0;
}

export const command: StepKind<Raw, CommandObserved> = {
  kind: 'command',
  role: 'neutral',
  // Without creates/removes there is no state to probe: the command runs every time.
  oneShot: (raw) => {
    const a = normalizeCommandArgs(raw);
    return a.creates === undefined && a.removes === undefined;
  },

  async probe(ctx, raw) {
    const a = normalizeCommandArgs(raw);
    const seen: CommandObserved = {};
    if (a.creates !== undefined) seen.createsExists = await exists(ctx, a.creates);
    if (a.removes !== undefined) seen.removesExists = await exists(ctx, a.removes);
    return seen;
  },

  satisfied(seen, raw) {
    const a = normalizeCommandArgs(raw);
    if (a.creates !== undefined && !seen.createsExists) return false;
    if (a.removes !== undefined && seen.removesExists) return false;
    return a.creates !== undefined || a.removes !== undefined;
  },

  async apply(ctx, raw) {
    const a = normalizeCommandArgs(raw);
    await ctx.run(a.argv, { stdin: a.stdin, env: a.env, okCodes: a.ok_codes, timeoutMs: ctx.timeoutMs });
  },

  reversible: (raw) => normalizeCommandArgs(raw).revert !== undefined,

  async revert(ctx, raw) {
    const a = normalizeCommandArgs(raw);
    if (a.revert) await ctx.run(a.revert, { env: a.env, timeoutMs: ctx.timeoutMs });
  },

  describe(raw) {
    const a = normalizeCommandArgs(raw);
    const guard = a.creates ? ` (unless ${a.creates} exists)` : a.removes ? ` (only if ${a.removes} exists)` : '';
    return { summary: `run ${a.argv.join(' ')}${guard}`, commands: [a.argv] };
  },
};
