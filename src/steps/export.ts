import { StepRefusedError, type StepKind } from './contract.js';
import { exportPreconditions, exportResource, exportSummary, providerFor, type ExportArgs, type ExportObserved } from './export/index.js';

/**
 * `export`: serve a directory over NFS with a stable fsid, through Ganesha (D-Bus) or the kernel
 * server (exportfs). Refuses a path that is not a mount point and, with `scope:`, a server whose
 * NFSv4 server scope differs. Revert removes the export again (or puts back what was there).
 *
 *   - export: { provider: ganesha, path: /srv/disk1, pseudo: /disk1, export_id: 101, fsid: 101, vip: "{{ vip }}" }
 */
export const exportStep: StepKind<ExportArgs, ExportObserved> = {
  kind: 'export',
  inverse: 'unexport',
  role: 'takeover',
  // Ganesha's D-Bus calls are bounded by dbus-send (25 s); the grace event comes after.
  defaultTimeoutS: 60,
  resource: exportResource,
  preconditions: exportPreconditions,

  async heldBy(peer, a) {
    const p = providerFor(a);
    return p.absent(await p.probe(peer, a), a) ? null : `exports ${a.path}`;
  },

  probe: (ctx, a) => providerFor(a).probe(ctx, a),
  satisfied: (o, a) => providerFor(a).exported(o, a),
  restored: (before, now, a) => providerFor(a).absent(before, a) === providerFor(a).absent(now, a) && providerFor(a).exported(before, a) === providerFor(a).exported(now, a),

  async apply(ctx, a, before) {
    const p = providerFor(a);
    if (before.provider === 'ganesha' && before.activePath !== null && before.activePath !== a.path) {
      throw new StepRefusedError(
        `on ${ctx.transport.host}: Ganesha Export_Id ${before.exportId} already serves ${before.activePath}; refusing to export ${a.path} under the same id. ` +
          'Pick another export_id, or unexport the other path first.',
      );
    }
    return p.add(ctx, a, before);
  },

  revert: (ctx, a, before) => providerFor(a).restore(ctx, a, before),

  describe(a) {
    let commands: string[][] = [];
    try {
      commands = providerFor(a).commands(a, 'export');
    } catch {
      /* invalid args are reported by apply with the full message */
    }
    return { summary: `export ${exportSummary(a)}`, commands };
  },
};
