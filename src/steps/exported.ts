import { CommandFailedError } from './contract.js';
import { checkKind, type SeverityArg } from './check/common.js';
import { ganeshaShowExportsArgv, kernelServerArgv, parseKernelServer, parseShowExports } from '../facts/nfs.js';
import { normPath } from '../facts/storage.js';

/**
 * `exported`: the NFS server of the node exports `path` (and/or `export_id`, Ganesha's id).
 * A Ganesha that is not on the bus exports nothing: that is an unhealthy answer, not an
 * unknown one, since it is exactly what clients see.
 */
export interface ExportedArgs extends SeverityArg {
  path?: string;
  export_id?: number;
  provider?: 'ganesha' | 'kernel';
}

export interface ExportedObserved {
  /** False when the server itself is not running (Ganesha absent from the system bus; the kernel's nfsd at 0 threads). */
  serverUp: boolean;
  /** The kernel server was read (not Ganesha). */
  kernel?: boolean;
  exports: Array<{ id?: number; path: string }>;
}

/** dbus-send's errors when nobody owns the name: the daemon is not running. */
const NOT_ON_BUS = /ServiceUnknown|NameHasNoOwner|was not provided by any \.service/;

export function matchingExports(seen: ExportedObserved, a: ExportedArgs): ExportedObserved['exports'] {
  return seen.exports.filter((e) => (a.path === undefined || normPath(e.path) === normPath(a.path)) && (a.export_id === undefined || e.id === Number(a.export_id)));
}

function what(a: ExportedArgs): string {
  return [a.path, a.export_id !== undefined ? `export id ${a.export_id}` : ''].filter(Boolean).join(' as ');
}

export const exported = checkKind<ExportedArgs, ExportedObserved>({
  kind: 'exported',

  async probe(ctx, a) {
    if ((a.provider ?? 'ganesha') === 'kernel') {
      const k = parseKernelServer((await ctx.run(kernelServerArgv())).stdout);
      return { serverUp: k.up, kernel: true, exports: k.exports.map((e) => ({ path: e.path })) };
    }
    const r = await ctx.run(ganeshaShowExportsArgv(), { okCodes: [0, 1] });
    if (r.code !== 0) {
      if (NOT_ON_BUS.test(r.stderr)) return { serverUp: false, exports: [] };
      throw new CommandFailedError(ctx.transport.host, r);
    }
    return { serverUp: true, exports: parseShowExports(r.stdout).map((e) => ({ id: e.id, path: e.path })) };
  },

  problem(seen, a) {
    if (!seen.serverUp && seen.kernel) return `the kernel NFS server has no threads (nfsd stopped), so ${what(a)} is not served, whatever etab lists`;
    if (!seen.serverUp) return `NFS-Ganesha is not running (not on the system bus), so ${what(a)} is not exported`;
    return matchingExports(seen, a).length ? undefined : `${what(a)} is not exported (exports: ${seen.exports.map((e) => e.path).join(', ') || 'none'})`;
  },

  healthy: (seen, a) => `${what(a)} exported`,

  describe(a) {
    return {
      summary: `${what(a)} is exported by ${(a.provider ?? 'ganesha') === 'kernel' ? 'the kernel server' : 'NFS-Ganesha'}`,
      commands: [(a.provider ?? 'ganesha') === 'kernel' ? kernelServerArgv() : ganeshaShowExportsArgv()],
    };
  },
});
