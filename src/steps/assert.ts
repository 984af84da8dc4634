import type { StepContext, StepKind } from './contract.js';
import { StepRefusedError } from './contract.js';
import { evalCondition, parseCondition } from '../playbook/conditions.js';
import { ANY_EXIT_STATUS } from '../transport/transport.js';

/**
 * `assert`: stop the run (and so roll back) unless something holds. Either conditions over
 * vars (`that`, Ansible's syntax) or a command run on the node and its exit code/output.
 * Read-only.
 */
export interface AssertArgs {
  that?: string | string[];
  command?: string[];
  exit_code?: number;
  stdout_contains?: string;
  /** Said when the assertion fails, before the details. */
  msg?: string;
}

export interface AssertObserved {
  /** Why it does not hold; empty when it does. */
  failures: string[];
}

async function check(ctx: StepContext, a: AssertArgs): Promise<string[]> {
  const failures: string[] = [];
  for (const expr of a.that === undefined ? [] : Array.isArray(a.that) ? a.that : [a.that]) {
    if (!evalCondition(parseCondition(expr), ctx.vars)) failures.push(`not true: ${expr}`);
  }
  if (a.command) {
    const r = await ctx.run(a.command, { okCodes: ANY_EXIT_STATUS });
    const code = a.exit_code ?? 0;
    if (r.code !== code) failures.push(`\`${a.command.join(' ')}\` exited ${r.code}, expected ${code}: ${r.stderr.trim()}`);
    if (a.stdout_contains !== undefined && !r.stdout.includes(a.stdout_contains)) {
      failures.push(`\`${a.command.join(' ')}\` printed no "${a.stdout_contains}"`);
    }
  }
  return failures;
}

export const assertStep: StepKind<AssertArgs, AssertObserved> = {
  kind: 'assert',
  role: 'neutral',
  readOnly: true,

  async probe(ctx, a) {
    return { failures: await check(ctx, a) };
  },

  satisfied(seen) {
    return seen.failures.length === 0;
  },

  async apply(ctx, a) {
    const failures = await check(ctx, a);
    if (failures.length) throw new StepRefusedError(`${a.msg ? `${a.msg}: ` : ''}${failures.join('; ')}`);
  },

  async revert() {
    // An assertion changed nothing.
  },

  describe(a) {
    const what = [
      ...(a.that === undefined ? [] : Array.isArray(a.that) ? a.that : [a.that]),
      ...(a.command ? [`\`${a.command.join(' ')}\` exits ${a.exit_code ?? 0}`] : []),
    ];
    return { summary: `assert ${what.join(' and ')}`, commands: a.command ? [a.command] : [] };
  },
};
