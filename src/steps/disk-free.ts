import { checkKind, type Severity, type SeverityArg } from './check/common.js';
import { dfArgv, readDiskFree, type DiskFree } from '../facts/health.js';

/**
 * `disk_free`: enough free space on the filesystem holding `path`. Below `min_free_percent`
 * or `min_free_mb` is the step's severity (critical by default); below `warning_percent`
 * only is a warning. Without any threshold: critical under 5 %, warning under 10 %.
 */
export interface DiskFreeArgs extends SeverityArg {
  path: string;
  min_free_percent?: number;
  min_free_mb?: number;
  warning_percent?: number;
}

function thresholds(a: DiskFreeArgs): { pct?: number; mb?: number; warn?: number } {
  const none = a.min_free_percent === undefined && a.min_free_mb === undefined && a.warning_percent === undefined;
  return none ? { pct: 5, warn: 10 } : { pct: a.min_free_percent, mb: a.min_free_mb, warn: a.warning_percent };
}

function belowCritical(seen: DiskFree, a: DiskFreeArgs): string | undefined {
  const t = thresholds(a);
  const freeMb = Math.floor(seen.availKb / 1024);
  if (t.pct !== undefined && seen.freePercent < t.pct) return `${seen.freePercent}% free on ${seen.mountPoint} (under ${t.pct}%)`;
  if (t.mb !== undefined && freeMb < t.mb) return `${freeMb} MiB free on ${seen.mountPoint} (under ${t.mb} MiB)`;
  return undefined;
}

export const diskFree = checkKind<DiskFreeArgs, DiskFree>({
  kind: 'disk_free',

  probe: (ctx, a) => readDiskFree(ctx, a.path),

  problem(seen, a) {
    const crit = belowCritical(seen, a);
    if (crit) return crit;
    const warn = thresholds(a).warn;
    if (warn !== undefined && seen.freePercent < warn) return `${seen.freePercent}% free on ${seen.mountPoint} (under the warning level ${warn}%)`;
    return undefined;
  },

  severityOf: (seen, a): Severity => (belowCritical(seen, a) ? (a.severity ?? 'critical') : 'warning'),

  healthy: (seen) => `${seen.freePercent}% (${Math.floor(seen.availKb / 1024)} MiB) free on ${seen.mountPoint}`,

  describe(a) {
    const t = thresholds(a);
    const limits = [t.pct !== undefined && `${t.pct}%`, t.mb !== undefined && `${t.mb} MiB`].filter(Boolean).join(' and ');
    return { summary: `at least ${limits || 'some space'} free at ${a.path}${t.warn !== undefined ? ` (warning under ${t.warn}%)` : ''}`, commands: [dfArgv(a.path)] };
  },
});
