/**
 * LVM provider: a VG on shared disks guarded by LVM system IDs. Taking the system ID over is
 * ownership, not fencing: the old owner must be released or fenced first (FACTS.md).
 */
import { lvmSystemIdArgv, lvsArgv, parseLvmSystemId, parseLvs, parseVgs, vgsArgv } from '../../facts/storage.js';
import { need, type VolumeArgs, type VolumeProvider } from './provider.js';

export interface VgObserved {
  found: boolean;
  systemId: string;
  /** This host's own system ID (`lvm systemid`). */
  ownSystemId: string;
  lvs: Array<{ name: string; active: boolean }>;
}

export function vgTakeoverArgv(vg: string, oldId: string, newId: string): string[] {
  // The old owner's ID is allowed for this one command only, so the foreign VG can be changed.
  const allow = oldId ? ['--config', `local/extra_system_ids=["${oldId}"]`] : [];
  return ['vgchange', '-y', ...allow, '--systemid', newId, vg];
}
export const vgActivateArgv = (vg: string): string[] => ['vgchange', '-ay', vg];
export const vgDeactivateArgv = (vg: string): string[] => ['vgchange', '-an', vg];

const wantedId = (a: VolumeArgs, o: VgObserved) => a.system_id ?? o.ownSystemId;

export const lvmProvider: VolumeProvider<VgObserved> = {
  label: (a) => `VG ${need(a, 'vg')}`,

  async probe(run, a) {
    const vg = need(a, 'vg');
    const own = parseLvmSystemId((await run(lvmSystemIdArgv())).stdout);
    // vgs/lvs exit 5 when the VG is not found.
    const v = await run(vgsArgv(vg), [0, 5]);
    const seen = v.code === 0 ? parseVgs(v.stdout, vg) : undefined;
    if (!seen) return { found: false, systemId: '', ownSystemId: own, lvs: [] };
    const l = await run(lvsArgv(vg), [0, 5]);
    return { found: true, systemId: seen.systemId, ownSystemId: own, lvs: l.code === 0 ? parseLvs(l.stdout) : [] };
  },

  imported: (o, a) => o.found && o.systemId === wantedId(a, o) && o.lvs.every((lv) => lv.active),

  async importHere(ctx, a, now) {
    const vg = need(a, 'vg');
    if (!now.found) throw new Error(`on ${ctx.host.name}: VG ${vg} is not visible (\`vgs --foreign ${vg}\`): are the shared disks connected?`);
    const target = wantedId(a, now);
    if (now.systemId !== target) await ctx.run(vgTakeoverArgv(vg, now.systemId, target));
    await ctx.run(vgActivateArgv(vg));
  },

  async deportHere(ctx, a, now, restore) {
    const vg = need(a, 'vg');
    if (!now.found) return;
    await ctx.run(vgDeactivateArgv(vg));
    // Reverting a takeover hands the VG back to the system ID it had before.
    if (restore?.found && restore.systemId !== now.systemId) await ctx.run(vgTakeoverArgv(vg, now.systemId, restore.systemId));
  },

  importArgv: (a) => [vgTakeoverArgv(need(a, 'vg'), 'OLD', a.system_id ?? 'THIS_HOST'), vgActivateArgv(need(a, 'vg'))],
  deportArgv: (a) => [vgDeactivateArgv(need(a, 'vg'))],
};
