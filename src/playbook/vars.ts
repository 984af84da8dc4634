import type { Host, Inventory } from '../inventory/model.js';
import { hostsOfGroup } from '../inventory/pattern.js';
import type { Play, StepSpec } from './model.js';

type Vars = Record<string, unknown>;

/** Names baton sets itself; playbooks read them, never define them. */
export const MAGIC_VARS = ['inventory_hostname', 'hostvars', 'groups', 'play_hosts'] as const;

export interface VarsInput {
  host: Host;
  inventory: Inventory;
  play: Play;
  step?: StepSpec;
  extraVars?: Vars;
  /** Outcomes of `register:`ed steps on this host so far. */
  registered?: Vars;
  /** The current loop item, under the step's loop_var. */
  loop?: { var: string; value: unknown };
  /** Names of the hosts the play runs on; default: none known. */
  playHosts?: string[];
}

/**
 * Every variable a step sees on one host. Lowest to highest (docs/variables.md):
 *   role defaults < inventory (group < host) < play vars < role params
 *   < registered results < loop var < extra vars (-e)
 * then the magic vars, which nothing overrides.
 */
export function varsFor(input: VarsInput): Vars {
  const { host, inventory, play, step } = input;
  const out: Vars = {};
  Object.assign(out, step?.role?.defaults ?? {});
  Object.assign(out, host.vars);
  Object.assign(out, play.vars);
  Object.assign(out, step?.role?.params ?? {});
  Object.assign(out, input.registered ?? {});
  if (input.loop) out[input.loop.var] = input.loop.value;
  Object.assign(out, input.extraVars ?? {});
  Object.assign(out, magicVars(inventory, host.name, input.playHosts ?? []));
  return out;
}

const hostvarsCache = new WeakMap<Inventory, { hostvars: Vars; groups: Record<string, string[]> }>();

/** `inventory_hostname`, `hostvars` (every host's inventory vars), `groups`, `play_hosts`. */
export function magicVars(inventory: Inventory, hostName: string, playHosts: string[]): Vars {
  let shared = hostvarsCache.get(inventory);
  if (!shared) {
    const hostvars: Vars = {};
    for (const h of inventory.hosts.values()) hostvars[h.name] = { inventory_hostname: h.name, ...h.vars };
    const groups: Record<string, string[]> = {};
    for (const g of inventory.groups.keys()) groups[g] = [...hostsOfGroup(inventory, g)];
    shared = { hostvars, groups };
    hostvarsCache.set(inventory, shared);
  }
  return { inventory_hostname: hostName, hostvars: shared.hostvars, groups: shared.groups, play_hosts: playHosts };
}
