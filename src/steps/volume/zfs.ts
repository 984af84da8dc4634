/** ZFS provider: a pool on shared disks, imported on one node at a time. */
import { parseZpoolList, zpoolListArgv } from '../../facts/storage.js';
import { need, type VolumeArgs, type VolumeProvider } from './provider.js';

export interface ZpoolObserved {
  imported: boolean;
  health?: string;
}

/** cachefile=none: the pool must not be auto-imported at the next boot of whichever node held it last. */
export const zpoolImportArgv = (a: VolumeArgs): string[] => ['zpool', 'import', ...(a.force ? ['-f'] : []), '-o', 'cachefile=none', need(a, 'pool')];
export const zpoolExportArgv = (a: VolumeArgs): string[] => ['zpool', 'export', ...(a.force ? ['-f'] : []), need(a, 'pool')];

export const zfsProvider: VolumeProvider<ZpoolObserved> = {
  label: (a) => `zpool ${need(a, 'pool')}`,

  async probe(run, a) {
    const pool = need(a, 'pool');
    // Exit 1 with "cannot open 'POOL': no such pool" when it is not imported here.
    const r = await run(zpoolListArgv(pool), [0, 1]);
    const seen = r.code === 0 ? parseZpoolList(r.stdout, pool) : undefined;
    return seen ? { imported: true, health: seen.health } : { imported: false };
  },

  imported: (o) => o.imported,

  async importHere(ctx, a) {
    await ctx.run(zpoolImportArgv(a), { timeoutMs: ctx.timeoutMs });
  },

  async deportHere(ctx, a) {
    await ctx.run(zpoolExportArgv(a), { timeoutMs: ctx.timeoutMs });
  },

  importArgv: (a) => [zpoolImportArgv(a)],
  deportArgv: (a) => [zpoolExportArgv(a)],
};
