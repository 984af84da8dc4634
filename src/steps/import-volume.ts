/**
 * `import_volume`: make a shared volume usable on this node (attach a loop image, import a
 * zpool, take over a VG). Before importing, every peer is asked whether it holds the volume:
 * importing what a live peer still uses is split brain, so that is refused unless --force.
 *
 *   - import_volume: { provider: loop, image: /srv/san/disk1.img }
 *   - import_volume: { provider: zfs, pool: tank }
 *   - import_volume: { provider: lvm, vg: vg_nfs }
 */
import { StepRefusedError, type StepContext, type StepKind } from './contract.js';
import { runnerOfTransport } from '../facts/storage.js';
import type { VolumeArgs, VolumeProvider } from './volume/provider.js';
import { loopProvider } from './volume/loop.js';
import { zfsProvider } from './volume/zfs.js';
import { lvmProvider } from './volume/lvm.js';
import { commandVolumeProvider } from './volume/command.js';
import { describeError } from '../engine/errors.js';
import { UnreachableError } from '../transport/transport.js';

export type { VolumeArgs };

const providers: Record<VolumeArgs['provider'], VolumeProvider> = {
  loop: loopProvider as VolumeProvider,
  zfs: zfsProvider as VolumeProvider,
  lvm: lvmProvider as VolumeProvider,
  command: commandVolumeProvider as VolumeProvider,
};

export function volumeProvider(a: VolumeArgs): VolumeProvider {
  const p = providers[a.provider];
  if (!p) throw new Error(`unknown volume provider "${String(a.provider)}" (loop, zfs, lvm, command)`);
  return p;
}

/** Other hosts to ask: `peers`, or every other inventory host. */
export function peersOf(ctx: StepContext, peers?: string[]): string[] {
  return (peers ?? [...ctx.inventory.hosts.keys()]).filter((h) => h !== ctx.host.name);
}

/**
 * Peers that hold the volume. An unreachable peer is skipped (said in the log): it may be the
 * dead node being failed over from. A reachable peer that cannot answer counts as a holder,
 * since nobody can say it does not hold the volume.
 */
export async function volumeHolders(ctx: StepContext, a: VolumeArgs): Promise<Array<{ host: string; why: string }>> {
  const p = volumeProvider(a);
  const held: Array<{ host: string; why: string }> = [];
  for (const peer of peersOf(ctx, a.peers)) {
    let run;
    try {
      run = runnerOfTransport(await ctx.transportFor(peer));
    } catch (e) {
      ctx.log(`${p.label(a)}: skipped the check on ${peer}: unreachable (${describeError(e)})`);
      continue;
    }
    try {
      // A peer's own system ID decides for LVM, not the one this node takes over to.
      const seen = await p.probe(run, { ...a, system_id: undefined });
      if (p.imported(seen, a)) held.push({ host: peer, why: 'has it imported' });
    } catch (e) {
      const msg = describeError(e);
      if (e instanceof UnreachableError) {
        ctx.log(`${p.label(a)}: skipped the check on ${peer}: unreachable (${msg})`);
      } else {
        held.push({ host: peer, why: `could not be checked (${msg}); limit the check with \`peers:\` if it has no access to the volume` });
      }
    }
  }
  return held;
}

export const importVolume: StepKind<VolumeArgs, unknown> = {
  kind: 'import_volume',
  inverse: 'deport_volume',
  role: 'takeover',

  probe: (ctx, a) => volumeProvider(a).probe((argv, okCodes) => ctx.run(argv, { okCodes }), a),

  satisfied: (o, a) => volumeProvider(a).imported(o, a),

  async apply(ctx, a, before) {
    const p = volumeProvider(a);
    const holders = await volumeHolders(ctx, a);
    if (holders.length) {
      const who = holders.map((h) => `${h.host} ${h.why}`).join('; ');
      if (!ctx.force) {
        throw new StepRefusedError(
          `${ctx.host.name}: will not import ${p.label(a)}: ${who}. Release it there first (unmount + deport_volume), ` +
            `or fence that node and re-run with --force if it is dead.`,
        );
      }
      ctx.log(`--force: importing ${p.label(a)} although ${who}`);
    }
    await p.importHere(ctx, a, before);
  },

  reversible: (a) => a.provider !== 'command' || a.deport !== undefined,

  async revert(ctx, a, before) {
    const p = volumeProvider(a);
    if (p.imported(before, a)) return;
    // Probe again: an undo after a crash may revert an import that never happened.
    const now = await p.probe((argv, okCodes) => ctx.run(argv, { okCodes }), a);
    if (p.imported(now, a) || a.provider === 'lvm') await p.deportHere(ctx, a, now, before);
  },

  describe(a) {
    const p = volumeProvider(a);
    return { summary: `import ${p.label(a)}${a.force ? ' (forced)' : ''}`, commands: p.importArgv(a) };
  },
};
