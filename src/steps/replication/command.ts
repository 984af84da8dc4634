/** Command provider: site-specific promote/demote/probe argvs (a storage array CLI, a script). */
import type { ReplicationArgs, ReplicationProvider } from './provider.js';

function need(a: ReplicationArgs, key: 'promote' | 'demote' | 'probe'): string[] {
  const v = a[key];
  if (!v || v.length === 0) throw new Error(`provider command needs \`${key}\``);
  return v;
}

export const expectMatches = (stdout: string, expect: string): boolean => new RegExp(expect, 'm').test(stdout);

export const commandReplicationProvider: ReplicationProvider = {
  label: (a) => `role (probe: ${need(a, 'probe').join(' ')})`,

  async probe(run, a) {
    if (a.expect === undefined) throw new Error('provider command needs `expect`: a regex the probe output matches when this node is primary');
    const r = await run(need(a, 'probe'));
    return { primary: expectMatches(r.stdout, a.expect) };
  },

  async promote(ctx, a) {
    await ctx.run(need(a, 'promote'), { timeoutMs: ctx.timeoutMs });
  },

  async demote(ctx, a) {
    await ctx.run(need(a, 'demote'), { timeoutMs: ctx.timeoutMs });
  },

  promoteArgv: (a) => [need(a, 'promote')],
  demoteArgv: (a) => [need(a, 'demote')],
};
