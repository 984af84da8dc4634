/** Command provider: site-specific import/deport/probe argvs (a SAN CLI, a cloud volume tool). */
import { need, type VolumeArgs, type VolumeProvider } from './provider.js';

export interface CommandVolumeObserved {
  imported: boolean;
}

export function probeSaysImported(code: number | null, stdout: string, expect?: string): boolean {
  return code === 0 && (expect === undefined || new RegExp(expect, 'm').test(stdout));
}

export const commandVolumeProvider: VolumeProvider<CommandVolumeObserved> = {
  label: (a: VolumeArgs) => `volume (probe: ${need(a, 'probe').join(' ')})`,

  async probe(run, a) {
    // Exit 0 (and a match of `expect`, if given) means imported; exit 1 means not; others are errors.
    const r = await run(need(a, 'probe'), [0, 1]);
    return { imported: probeSaysImported(r.code, r.stdout, a.expect) };
  },

  imported: (o) => o.imported,

  async importHere(ctx, a) {
    await ctx.run(need(a, 'import'), { timeoutMs: ctx.timeoutMs });
  },

  async deportHere(ctx, a) {
    await ctx.run(need(a, 'deport'), { timeoutMs: ctx.timeoutMs });
  },

  importArgv: (a) => [need(a, 'import')],
  deportArgv: (a) => [need(a, 'deport')],
};
