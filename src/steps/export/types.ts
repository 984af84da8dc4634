import type { StepContext } from '../contract.js';

/** Arguments shared by `export` and `unexport` (unexport needs them to put an export back on revert). */
export interface ExportArgs {
  provider: 'ganesha' | 'kernel';
  /** Directory on the node to export; must be a mount point unless require_mount is false. */
  path: string;
  /** Same value on every node, or clients get ESTALE after a move (FACTS.md). */
  fsid?: number | string;
  /** NFSv4 pseudo path (ganesha); default: the path. */
  pseudo?: string;
  /** Ganesha Export_Id (1..65535). */
  export_id?: number;
  clients?: string;
  access?: 'rw' | 'ro';
  squash?: 'root_squash' | 'no_root_squash' | 'all_squash';
  /** Extra kernel export options (`sync`, `no_subtree_check`, …). */
  options?: string[];
  /** The service address, for Ganesha grace events. */
  vip?: string;
  /** Where the per-export Ganesha config file is written on the node. */
  conf_dir?: string;
  require_mount?: boolean;
  /** Refuse to export unless the server presents this NFSv4 server scope. */
  scope?: string;
}

/**
 * What a provider sees of one export. Ganesha: the path its Export_Id serves (null: not active).
 * Kernel: the options each client of the path is exported with.
 */
export type ExportObserved =
  | { provider: 'ganesha'; exportId: number; activePath: string | null }
  | { provider: 'kernel'; path: string; clients: Record<string, string[]> };

export interface ExportProvider {
  probe(ctx: StepContext, a: ExportArgs): Promise<ExportObserved>;
  /** Is the export there as the arguments ask? */
  exported(o: ExportObserved, a: ExportArgs): boolean;
  /** Is nothing of this export left? */
  absent(o: ExportObserved, a: ExportArgs): boolean;
  /**
   * Make the export (the server is checked for mount and scope before). May resolve to probe()'s
   * reading taken after the change in the same exec (the step contract's apply).
   */
  add(ctx: StepContext, a: ExportArgs, before: ExportObserved): Promise<ExportObserved | void>;
  remove(ctx: StepContext, a: ExportArgs, before: ExportObserved): Promise<ExportObserved | void>;
  /** Bring the export back to what `before` saw (revert of either direction). */
  restore(ctx: StepContext, a: ExportArgs, before: ExportObserved): Promise<void>;
  scope(ctx: StepContext): Promise<{ scope: string; source: string }>;
  commands(a: ExportArgs, direction: 'export' | 'unexport'): string[][];
}

export const DEFAULT_GANESHA_CONF_DIR = '/run/ganesha/baton';

export function withDefaults(a: ExportArgs): Required<Pick<ExportArgs, 'clients' | 'access' | 'squash' | 'require_mount'>> & ExportArgs {
  return { clients: '*', access: 'rw', squash: 'root_squash', require_mount: true, ...a };
}
