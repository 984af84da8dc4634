import type { Host, Inventory } from '../inventory/model.js';
import type { Play, StepSpec } from '../playbook/model.js';
import type { PlayItem } from '../playbook/play-items.js';
import { render } from '../playbook/template.js';
import { varsFor, type VarsInput } from '../playbook/vars.js';

/**
 * The expander of step instances: one step on one host (for one item of a looped play) becomes
 * one instance, or one per item of the step's own `loop:`. run, check, plan and undo all ask it,
 * so an instance has the same id (`p1.s2`, `p1.s2#0` for the play's first item, `p1.s2#0[3]`
 * for the step's fourth loop item) and the same vars wherever it is looked at.
 */
export interface StepInstance {
  instance: string;
  vars: Record<string, unknown>;
  /** Position in the step's own loop, when it has one. */
  loopIndex?: number;
}

export type StepExpansion =
  | { instances: StepInstance[]; base: Record<string, unknown>; id: string }
  /** The step's loop did not give a list: `thrown` when rendering it failed, else what it gave. */
  | { loopError: { thrown?: unknown; got?: unknown }; base: Record<string, unknown>; id: string };

export interface InstanceContext {
  inventory: Inventory;
  extraVars: Record<string, unknown>;
  /** Registered results on this host so far (a run's own; none for a plan or a check). */
  registered?: VarsInput['registered'];
  /** The hosts of the play (or of the item). */
  playHosts: string[];
}

/** The id of a step's instances on behalf of an item: `p1.s2#0`. */
export function instanceId(step: StepSpec, item?: Pick<PlayItem, 'index'>): string {
  return item ? `${step.id}#${item.index}` : step.id;
}

/** Every instance of `step` on `host` (see StepInstance); the step's loop is rendered now. */
export function expandStep(play: Play, step: StepSpec, host: Host, item: PlayItem | undefined, c: InstanceContext): StepExpansion {
  const input: VarsInput = { host, inventory: c.inventory, play, step, extraVars: c.extraVars, registered: c.registered ?? {}, playHosts: c.playHosts, ...(item ? { playItem: item } : {}) };
  const base = varsFor(input);
  const id = instanceId(step, item);
  if (step.loop === undefined) return { instances: [{ instance: id, vars: base }], base, id };
  let list: unknown;
  try {
    list = render(step.loop, base);
  } catch (thrown) {
    return { loopError: { thrown }, base, id };
  }
  if (!Array.isArray(list)) return { loopError: { got: list }, base, id };
  const instances = list.map((value, index) => ({
    instance: `${id}[${index}]`,
    vars: varsFor({ ...input, loop: { var: step.loopVar, value, index, length: list.length } }),
    loopIndex: index,
  }));
  return { instances, base, id };
}
