import type { Inventory } from '../inventory/model.js';
import { selectHosts } from '../inventory/pattern.js';
import type { Play, Playbook } from '../playbook/model.js';
import { playItems, playLevelVars, type PlayItem } from '../playbook/play-items.js';
import { render } from '../playbook/template.js';
import { BatonError, ExitCode } from '../util/errors.js';
import { describeError } from './errors.js';

export type { PlayItem } from '../playbook/play-items.js';

/**
 * The expander: what a playbook becomes once its play-level templates meet the inventory and -e.
 * A play becomes one unit, or one unit per item of its `loop:`; each unit has its title, its
 * hosts (after --limit) and its lock name. run, plan, check, the lock and the engine all read
 * plays through it, so they agree on which hosts and which items there are.
 */
export interface PlayUnit {
  /** Absent for a play without `loop:`. */
  item?: PlayItem;
  title: string;
  hosts: string[];
  /** The lock this unit takes: the play's `lock:` rendered for the item, else the playbook's path. */
  lock: string;
}

export interface ExpandedPlay {
  play: Play;
  index: number;
  /** The play's title without an item. */
  title: string;
  /** Every host of any unit (the only unit's hosts for a plain play). */
  hosts: string[];
  units: PlayUnit[];
}

/** A play's name with its templates rendered (as written, if that fails). */
export function playTitle(play: Play, extraVars: Record<string, unknown>, inventory?: Inventory, item?: PlayItem): string {
  try {
    // Without an item the name is rendered as it always was: play vars and -e.
    if (!item || !inventory) return String(render(play.name, { ...play.vars, ...extraVars }));
    return String(render(play.name, playLevelVars(play, inventory, extraVars, item)));
  } catch {
    return item ? `${play.name} [${item.label}]` : play.name;
  }
}

/** The hosts a play (or one of its items) targets after `--limit`, its `hosts:` rendered. */
export function playHosts(play: Play, inventory: Inventory, extraVars: Record<string, unknown>, limit?: string, item?: PlayItem): string[] {
  const pattern = item ? String(render(play.hosts, playLevelVars(play, inventory, extraVars, item))) : String(render(play.hosts, { ...play.vars, ...extraVars }));
  return selectHosts(inventory, pattern, limit).hosts.map((h) => h.name);
}

/** The items of a looped play; a list that cannot be had is invalid input, said with the play's place. */
export function itemsOf(play: Play, index: number, inventory: Inventory, extraVars: Record<string, unknown>): PlayItem[] {
  try {
    return playItems(play, inventory, extraVars);
  } catch (e) {
    throw new BatonError(`play ${index + 1} "${play.name}" (${play.loc.file}:${play.loc.line}:${play.loc.col}): loop: ${describeError(e)}; nothing was run`, ExitCode.INVALID);
  }
}

function lockOf(play: Play, inventory: Inventory, extraVars: Record<string, unknown>, playbookFile: string, item?: PlayItem): string {
  if (play.lock === undefined) return playbookFile;
  // A plain play's lock renders with the play's vars and -e, as its name does (node-failover's
  // `fence-{{ failed }}` was taken as written: failovers of different nodes waited on one lock).
  try {
    return String(render(play.lock, item ? playLevelVars(play, inventory, extraVars, item) : { ...play.vars, ...extraVars }));
  } catch (e) {
    throw new BatonError(`play "${play.name}"${item ? `, item ${item.label}` : ''}: lock: ${describeError(e)}; nothing was run`, ExitCode.INVALID);
  }
}

/** Every play of the playbook, expanded (see PlayUnit). Throws BatonError (exit 2) on a loop or lock that does not render. */
export function expandPlays(playbook: Playbook, inventory: Inventory, extraVars: Record<string, unknown>, limit?: string, playbookFile = playbook.file): ExpandedPlay[] {
  return playbook.plays.map((play, index) => {
    const title = playTitle(play, extraVars);
    if (!play.loop) {
      const hosts = playHosts(play, inventory, extraVars, limit);
      return { play, index, title, hosts, units: [{ title, hosts, lock: lockOf(play, inventory, extraVars, playbookFile) }] };
    }
    // The caller resolves placement first (engine/placement.ts): an empty list here would read as "nothing to move".
    if (play.placement) throw new BatonError(`play ${index + 1} "${play.name}": its placement was not resolved before expanding it (a bug in baton); nothing was run`, ExitCode.INVALID);
    const units = itemsOf(play, index, inventory, extraVars).map((item) => ({
      item,
      title: playTitle(play, extraVars, inventory, item),
      hosts: playHosts(play, inventory, extraVars, limit, item),
      lock: lockOf(play, inventory, extraVars, playbookFile, item),
    }));
    return { play, index, title, hosts: [...new Set(units.flatMap((u) => u.hosts))], units };
  });
}

/**
 * The lock names a run takes, each once, in the playbook's order (the journal keeps them so). The
 * lock services take them sorted, so two runs never wait on each other in opposite orders.
 */
export function lockNamesOf(expanded: ExpandedPlay[]): string[] {
  return [...new Set(expanded.flatMap((e) => e.units.map((u) => u.lock)))];
}
