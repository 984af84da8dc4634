import { StepRefusedError, type StepKind } from './contract.js';
import { exportResource, exportSummary, providerFor, type ExportArgs, type ExportObserved } from './export/index.js';

/**
 * `unexport`: stop serving a directory (Ganesha RemoveExport; kernel exportfs -u, then drop its
 * locks and flush the export cache). Takes the same arguments as `export`, so a rollback can put
 * the export back exactly as it was.
 */
export const unexportStep: StepKind<ExportArgs, ExportObserved> = {
  kind: 'unexport',
  inverse: 'export',
  role: 'release',
  defaultTimeoutS: 60,
  resource: exportResource,
  restored: (before, now, a) => providerFor(a).absent(before, a) === providerFor(a).absent(now, a) && providerFor(a).exported(before, a) === providerFor(a).exported(now, a),

  probe: (ctx, a) => providerFor(a).probe(ctx, a),
  satisfied: (o, a) => providerFor(a).absent(o, a),

  async apply(ctx, a, before) {
    if (before.provider === 'ganesha' && before.activePath !== null && before.activePath !== a.path) {
      throw new StepRefusedError(
        `on ${ctx.transport.host}: Ganesha Export_Id ${before.exportId} serves ${before.activePath}, not ${a.path}; refusing to remove someone else's export. ` +
          'Check export_id in the playbook.',
      );
    }
    return providerFor(a).remove(ctx, a, before);
  },

  // Putting an export back needs its fsid (and, for Ganesha, the whole block).
  reversible: (a) => a.fsid !== undefined && a.fsid !== '',

  revert: (ctx, a, before) => providerFor(a).restore(ctx, a, before),

  describe(a) {
    let commands: string[][] = [];
    try {
      commands = providerFor(a).commands(a, 'unexport');
    } catch {
      /* reported by apply */
    }
    return { summary: `unexport ${exportSummary(a)}`, commands };
  },
};
