import type { Host, Inventory } from '../inventory/model.js';
import type { Play, PlayLoop } from './model.js';
import { render } from './template.js';
import { varsFor } from './vars.js';

type Vars = Record<string, unknown>;

/** Items of one looped play in flight at once when `loop_control.concurrency` is not given. */
export const DEFAULT_ITEM_CONCURRENCY = 10;

/** One item of a looped play, as the run knows it. */
export interface PlayItem {
  /** The template name it has (`loop_control.loop_var`). */
  var: string;
  value: unknown;
  /** Position in the list: how the journal and undo find it again. */
  index: number;
  /** How output and the journal name it (`nfs-b`). */
  label: string;
}

/**
 * What a play-level template (`name`, `hosts`, `loop`, `lock`) may read: the inventory's `all`
 * vars, play vars, the item (once there is one), -e, and `hostvars`/`groups`. No host's own vars:
 * these are decided once for the play, not per host.
 */
export function playLevelVars(play: Pick<Play, 'vars'> & Partial<Pick<Play, 'name' | 'hosts' | 'steps' | 'tags' | 'loc'>>, inventory: Inventory, extraVars: Vars, item?: Pick<PlayItem, 'var' | 'value'>): Vars {
  const everyone: Host = { name: '', vars: inventory.groups.get('all')?.vars ?? {}, groups: ['all'] };
  return varsFor({
    host: everyone,
    inventory,
    play: { name: '', hosts: '', steps: [], tags: [], loc: { file: '', line: 0, col: 0 }, ...play },
    extraVars,
    ...(item ? { playItem: item } : {}),
  });
}

/** The label of an item: `loop_control.label` rendered, else its `name` key, else the item itself. */
function labelOf(loop: PlayLoop, value: unknown, index: number, vars: Vars): string {
  if (loop.label !== undefined) return String(render(loop.label, vars));
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && typeof (value as Vars).name === 'string') return (value as Vars).name as string;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `#${index + 1}`;
}

/**
 * The items of a looped play, rendered from play-level vars. Throws (TemplateError, or an Error
 * saying what the loop rendered to) when they cannot be had: the caller says where.
 */
export function playItems(play: Pick<Play, 'vars' | 'loop'>, inventory: Inventory, extraVars: Vars): PlayItem[] {
  const loop = play.loop;
  if (!loop) return [];
  const list = render(loop.items, playLevelVars(play, inventory, extraVars));
  if (!Array.isArray(list)) throw new Error(`loop: expected a list, got ${JSON.stringify(list)}`);
  return list.map((value, index) => ({ var: loop.var, value, index, label: labelOf(loop, value, index, playLevelVars(play, inventory, extraVars, { var: loop.var, value })) }));
}
