import type { StepContext } from '../contract.js';
import type { Runner } from '../../facts/storage.js';

/** Arguments of import_volume / deport_volume; each provider reads its own. */
export interface VolumeArgs {
  provider: 'loop' | 'zfs' | 'lvm' | 'command';
  /** loop: the shared image file. */
  image?: string;
  /** zfs */
  pool?: string;
  /** lvm */
  vg?: string;
  /** lvm: the system ID to take the VG over to (default: this host's, from `lvm systemid`). */
  system_id?: string;
  /** zfs: `-f` on import and export. */
  force?: boolean;
  /** command provider */
  import?: string[];
  deport?: string[];
  probe?: string[];
  /** command provider: stdout of `probe` matching this means imported (default: exit 0 means imported). */
  expect?: string;
  /** Hosts checked for holding the volume before an import (default: every other inventory host). */
  peers?: string[];
}

/** One way of importing a volume. Observed values are plain JSON (they are journaled). */
export interface VolumeProvider<O = unknown> {
  /** "loop image /x.img", "zpool tank": names the volume in messages. */
  label(a: VolumeArgs): string;
  probe(run: Runner, a: VolumeArgs): Promise<O>;
  imported(o: O, a: VolumeArgs): boolean;
  /**
   * Make it imported here (the peer check has been done). May resolve to probe()'s reading taken
   * after the change in the same exec (see the step contract's apply).
   */
  importHere(ctx: StepContext, a: VolumeArgs, now: O): Promise<O | void>;
  /** Make it deported here; `restore` is what to converge back to when reverting an import. Like importHere. */
  deportHere(ctx: StepContext, a: VolumeArgs, now: O, restore?: O): Promise<O | void>;
  importArgv(a: VolumeArgs): string[][];
  deportArgv(a: VolumeArgs): string[][];
}

export function need<K extends keyof VolumeArgs>(a: VolumeArgs, key: K): NonNullable<VolumeArgs[K]> {
  const v = a[key];
  if (v === undefined || v === null || v === '') throw new Error(`provider ${a.provider} needs \`${String(key)}\``);
  return v as NonNullable<VolumeArgs[K]>;
}
