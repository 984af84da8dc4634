/**
 * Kernel NFS server provider (nfs-utils exportfs). No kernel NFS server runs in the lab, so this
 * provider is covered by unit tests of the argv it builds and of the `exportfs -v` / etab text
 * it parses (real formats), not by a lab test.
 */
import { StepRefusedError, type StepContext } from '../contract.js';
import {
  exportfsExportArgv,
  exportfsFlushArgv,
  exportfsUnexportArgv,
  optionValue,
  readKernelExports,
  readKernelScope,
  unlockFilesystemArgv,
} from '../../facts/nfs.js';
import { withDefaults, type ExportArgs, type ExportObserved, type ExportProvider } from './types.js';

type KernelObserved = Extract<ExportObserved, { provider: 'kernel' }>;

/** exportfs options for the arguments: access, squash and the stable fsid, then extra options. */
export function kernelOptions(raw: ExportArgs): string[] {
  const a = withDefaults(raw);
  if (a.fsid === undefined) throw new StepRefusedError('export: fsid is required (the same on every node) so filehandles survive a move');
  const extra = (a.options ?? []).filter((o) => !/^(rw|ro|fsid=.*|root_squash|no_root_squash|all_squash)$/.test(o));
  return [a.access, a.squash, `fsid=${a.fsid}`, ...extra];
}

async function unexportClient(ctx: StepContext, client: string, dir: string, othersLeft: boolean): Promise<void> {
  await ctx.run(exportfsUnexportArgv(client, dir));
  if (!othersLeft) {
    // Drop nfsd's locks on the filesystem so it can be unmounted (FACTS.md); a kernel without
    // the file (or no nfsd mounted) has nothing to drop.
    const r = await ctx.run(unlockFilesystemArgv(dir), { okCodes: [0, 1, 2] });
    if (r.code !== 0) ctx.log(`could not write ${dir} to /proc/fs/nfsd/unlock_filesystem: ${r.stderr.trim()}`);
  }
  await ctx.run(exportfsFlushArgv());
}

export const kernelProvider: ExportProvider = {
  async probe(ctx, a) {
    const clients: Record<string, string[]> = {};
    for (const e of await readKernelExports(ctx)) if (e.path === a.path) clients[e.client] = e.options;
    return { provider: 'kernel', path: a.path, clients };
  },

  exported(o, raw) {
    const a = withDefaults(raw);
    const opts = (o as KernelObserved).clients[a.clients];
    if (!opts) return false;
    return opts.includes(a.access) && opts.includes(a.squash) && optionValue(opts, 'fsid') === String(a.fsid);
  },

  absent: (o, raw) => (o as KernelObserved).clients[withDefaults(raw).clients] === undefined,

  async add(ctx, raw) {
    const a = withDefaults(raw);
    await ctx.run(exportfsExportArgv(a.clients, a.path, kernelOptions(a)));
  },

  async remove(ctx, raw, before) {
    const a = withDefaults(raw);
    const others = Object.keys((before as KernelObserved).clients).filter((c) => c !== a.clients);
    await unexportClient(ctx, a.clients, a.path, others.length > 0);
  },

  async restore(ctx, raw, before) {
    const a = withDefaults(raw);
    const was = (before as KernelObserved).clients[a.clients];
    const now = ((await this.probe(ctx, a)) as KernelObserved).clients;
    if (was === undefined) {
      if (now[a.clients]) await unexportClient(ctx, a.clients, a.path, Object.keys(now).length > 1);
      return;
    }
    if (now[a.clients]?.join(',') !== was.join(',')) await ctx.run(exportfsExportArgv(a.clients, a.path, was));
  },

  async scope(ctx) {
    return { scope: await readKernelScope(ctx), source: 'scope= in [nfsd] of /etc/nfs.conf (rpc.nfsd --scope)' };
  },

  commands(raw, direction) {
    const a = withDefaults(raw);
    if (direction === 'export') return [exportfsExportArgv(a.clients, a.path, kernelOptions(a))];
    return [exportfsUnexportArgv(a.clients, a.path), unlockFilesystemArgv(a.path), exportfsFlushArgv()];
  },
};
