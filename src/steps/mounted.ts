import { checkKind, type SeverityArg } from './check/common.js';
import { mountAt, mountinfoArgv, normPath, readMounts, runnerOf } from '../facts/storage.js';

/** `mounted`: a filesystem is mounted at `path` (of `fstype`, from `source`, when given). */
export interface MountedArgs extends SeverityArg {
  path: string;
  fstype?: string;
  source?: string;
}

export interface MountedObserved {
  mounted: boolean;
  fstype?: string;
  source?: string;
}

export const mounted = checkKind<MountedArgs, MountedObserved>({
  kind: 'mounted',

  async probe(ctx, a) {
    const m = mountAt(await readMounts(runnerOf(ctx)), a.path);
    return m ? { mounted: true, fstype: m.fstype, source: m.source } : { mounted: false };
  },

  problem(seen, a) {
    const p = normPath(a.path);
    if (!seen.mounted) return `nothing is mounted at ${p}`;
    if (a.fstype && seen.fstype !== a.fstype) return `${p} is ${seen.fstype}, not ${a.fstype}`;
    if (a.source && seen.source !== a.source) return `${p} is mounted from ${seen.source}, not ${a.source}`;
    return undefined;
  },

  healthy: (seen, a) => `${normPath(a.path)} mounted from ${seen.source} (${seen.fstype})`,

  describe(a) {
    const what = [a.fstype, a.source && `from ${a.source}`].filter(Boolean).join(' ');
    return { summary: `${normPath(a.path)} is mounted${what ? ` (${what})` : ''}`, commands: [mountinfoArgv()] };
  },
});
