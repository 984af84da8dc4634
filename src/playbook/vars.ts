import type { Host, Inventory } from '../inventory/model.js';
import { hostsOfGroup } from '../inventory/pattern.js';
import { loadServiceGroups, type ServiceGroup } from '../inventory/services.js';
import type { Play, StepSpec } from './model.js';
import { isTemplate, render, TemplateError } from './template.js';

type Vars = Record<string, unknown>;

/** Names baton sets itself; playbooks read them, never define them. */
export const MAGIC_VARS = ['inventory_hostname', 'hostvars', 'groups', 'play_hosts', 'baton_iscsi_luns'] as const;

/** One LUN of the inventory's iSCSI service groups, as `baton_iscsi_luns` lists them (iscsi-health.yml loops over it). */
export interface IscsiLunItem {
  group: string;
  vip: string;
  port: number;
  iqn: string;
  lun: number;
  scsi_id: string;
  scsi_sn: string;
  /** The NAA designator tgt derives from scsi_id (docs/iscsi.md): 6, then its hex digits in 31. */
  naa: string;
}

export function iscsiLunItems(groups: ServiceGroup[]): IscsiLunItem[] {
  return groups.flatMap((g) =>
    g.iscsiTargets.flatMap((t) =>
      t.luns.map((l) => ({ group: g.name, vip: g.vip.address, port: t.port, iqn: t.iqn, lun: l.lun, scsi_id: l.scsiId, scsi_sn: l.scsiSn, naa: `6${l.scsiId.toLowerCase().padStart(31, '0')}` })),
    ),
  );
}

export interface VarsInput {
  host: Host;
  inventory: Inventory;
  play: Play;
  step?: StepSpec;
  extraVars?: Vars;
  /** Outcomes of `register:`ed steps on this host so far. */
  registered?: Vars;
  /** The current loop item, under the step's loop_var (and `ansible_loop` when index is given). */
  loop?: { var: string; value: unknown; index?: number; length?: number };
  /** The item of a looped play (`loop:` on the play), under its loop_var. */
  playItem?: { var: string; value: unknown };
  /** Names of the hosts the play runs on; default: none known. */
  playHosts?: string[];
}

/**
 * Every variable a step sees on one host. Lowest to highest (docs/variables.md):
 *   role defaults < inventory (group < host) < play vars < role params
 *   < registered results < the play's item < the step's loop var < extra vars (-e)
 * then the magic vars, which nothing overrides.
 *
 * Vars written in the playbook or a role (role defaults, play vars, role params) are templates
 * themselves — `vip_interface: "{{ iface | default('eth0') }}"` — rendered when first read,
 * against all the other vars, as Ansible does. Values from the inventory, from `-e` and from
 * registered results are data: never rendered, so a value holding `{{` stays that text — except
 * inventory vars the loader deferred (their `{{ }}` need play vars or -e), rendered here as Ansible does.
 */
export function varsFor(input: VarsInput): Vars {
  const { host, inventory, play, step } = input;
  const out: Vars = {};
  // Keys that hold a lazy var (an accessor): a higher layer must redefine them, not assign.
  // Plain keys are assigned: defineProperty for each of an inventory's vars, at every step
  // instance on every host, was a tenth of an eight-group move's CPU.
  const lazy = new Set<string>();
  const setPlain = (key: string, value: unknown) => {
    if (lazy.delete(key) || key === '__proto__') definePlain(out, key, value);
    else out[key] = value;
  };
  const layers: Array<[Vars, boolean]> = [
    [step?.role?.defaults ?? {}, true],
    [host.vars, false],
    [play.vars, true],
    [step?.role?.params ?? {}, true],
    [input.registered ?? {}, false],
  ];
  for (const [layer, authored] of layers) {
    for (const [k, v] of Object.entries(layer)) {
      // Inventory vars whose {{ }} need a play's names (play vars, -e) are rendered here, in the
      // step's full context, as Ansible does; every other inventory value is data.
      const deferred = layer === host.vars && host.deferred !== undefined && k in host.deferred && host.deferred[k] === v;
      if ((authored || deferred) && hasTemplate(v)) {
        defineLazy(out, k, v);
        lazy.add(k);
      } else setPlain(k, v);
    }
  }
  if (input.playItem) setPlain(input.playItem.var, input.playItem.value);
  if (input.loop) {
    setPlain(input.loop.var, input.loop.value);
    if (input.loop.index !== undefined) {
      setPlain('ansible_loop', { index0: input.loop.index, index: input.loop.index + 1, length: input.loop.length });
    }
  }
  for (const [k, v] of Object.entries(input.extraVars ?? {})) setPlain(k, v);
  for (const [k, v] of Object.entries(magicVars(inventory, host.name, input.playHosts ?? []))) setPlain(k, v);
  return out;
}

function definePlain(out: Vars, key: string, value: unknown): void {
  Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true });
}

/** A var rendered on first read, then kept; a var that needs itself is an error, not a hang. */
function defineLazy(out: Vars, key: string, raw: unknown): void {
  let resolving = false;
  Object.defineProperty(out, key, {
    enumerable: true,
    configurable: true,
    get() {
      if (resolving) throw new TemplateError(`variable "${key}" is defined in terms of itself`, key);
      resolving = true;
      try {
        const value = render(raw, out);
        definePlain(out, key, value);
        return value;
      } finally {
        resolving = false;
      }
    },
  });
}

function hasTemplate(v: unknown): boolean {
  if (typeof v === 'string') return isTemplate(v);
  if (Array.isArray(v)) return v.some(hasTemplate);
  if (v && typeof v === 'object') return Object.values(v).some(hasTemplate);
  return false;
}

const hostvarsCache = new WeakMap<Inventory, { hostvars: Vars; groups: Record<string, string[]>; iscsiLuns: IscsiLunItem[] }>();

/** The groups' LUNs; none when the groups do not load (the inventory loader has said why). */
function iscsiLunsOf(inventory: Inventory): IscsiLunItem[] {
  try {
    return iscsiLunItems(loadServiceGroups(inventory));
  } catch {
    return [];
  }
}

/** `inventory_hostname`, `hostvars` (every host's inventory vars), `groups`, `play_hosts`, `baton_iscsi_luns`. */
export function magicVars(inventory: Inventory, hostName: string, playHosts: string[]): Vars {
  let shared = hostvarsCache.get(inventory);
  if (!shared) {
    const hostvars: Vars = {};
    for (const h of inventory.hosts.values()) hostvars[h.name] = { inventory_hostname: h.name, ...h.vars };
    const groups: Record<string, string[]> = {};
    for (const g of inventory.groups.keys()) groups[g] = [...hostsOfGroup(inventory, g)];
    shared = { hostvars, groups, iscsiLuns: iscsiLunsOf(inventory) };
    hostvarsCache.set(inventory, shared);
  }
  return { inventory_hostname: hostName, hostvars: shared.hostvars, groups: shared.groups, play_hosts: playHosts, baton_iscsi_luns: shared.iscsiLuns };
}
