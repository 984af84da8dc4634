import { StepRefusedError, type StepContext } from '../contract.js';
import { readMountAt } from '../../facts/nfs.js';
import { ganeshaProvider } from './ganesha.js';
import { kernelProvider } from './kernel.js';
import { withDefaults, type ExportArgs, type ExportProvider } from './types.js';

export type { ExportArgs, ExportObserved } from './types.js';

export function providerFor(a: ExportArgs): ExportProvider {
  if (a.provider === 'ganesha') return ganeshaProvider;
  if (a.provider === 'kernel') return kernelProvider;
  throw new StepRefusedError(`export: unknown provider ${JSON.stringify((a as { provider?: unknown }).provider)} (ganesha or kernel)`);
}

/**
 * Before exporting: the path must be a mounted filesystem's mount point (an export of the empty
 * directory under it would serve the wrong data and clients would write there), and the server
 * must present the NFSv4 scope the playbook expects.
 */
export async function checkBeforeExport(ctx: StepContext, raw: ExportArgs, p: ExportProvider): Promise<void> {
  const a = withDefaults(raw);
  // Two independent reads: asked at once (each round trip before an export is outage).
  const [m, s] = await Promise.all([a.require_mount ? readMountAt(ctx, a.path) : undefined, a.scope ? p.scope(ctx) : undefined]);
  if (a.require_mount) {
    if (!m) {
      throw new StepRefusedError(
        `on ${ctx.transport.host}: ${a.path} is not a mount point: nothing is mounted there, so exporting it would serve the empty ` +
          'directory underneath. Mount the volume first (the mount step comes before export), or set require_mount: false for a path that is not its own filesystem.',
      );
    }
    ctx.log(`${a.path} is ${m.source} (${m.fstype})`);
  }
  if (s && s.scope !== a.scope) {
    throw new StepRefusedError(
      `on ${ctx.transport.host}: the NFS server presents NFSv4 server scope ${JSON.stringify(s.scope)} (${s.source}), not ${JSON.stringify(a.scope)}. ` +
        'Clients refuse to reclaim state from a server with another scope: give every node the same scope and restart its NFS server before failing over.',
    );
  }
}

/** The key export and unexport share: one exported path, on whichever node. */
export const exportResource = (a: ExportArgs): string => `export ${a.path}`;

/**
 * What an export must find before it serves anything, and what the revert of an unexport must find
 * too: an fsid (clients get ESTALE without a stable one), a mounted path, the right server scope.
 */
export async function exportPreconditions(ctx: StepContext, a: ExportArgs): Promise<void> {
  if (a.fsid === undefined || a.fsid === '') {
    throw new StepRefusedError('export: fsid is required and must be the same on every node, or clients get ESTALE after a move');
  }
  await checkBeforeExport(ctx, a, providerFor(a));
}

export function exportSummary(a: ExportArgs): string {
  const b = withDefaults(a);
  const id = a.provider === 'ganesha' ? ` as export ${a.export_id}${a.pseudo ? ` (${a.pseudo})` : ''}` : '';
  return `${b.clients}:${a.path} ${b.access} fsid=${a.fsid ?? '?'} via ${a.provider}${id}`;
}
