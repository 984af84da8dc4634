import { expandPlays, type PlayItem } from '../engine/expand.js';
import { expandStep } from '../engine/instances.js';
import { DEFAULT_ITEM_CONCURRENCY } from '../playbook/play-items.js';
import type { Play } from '../playbook/model.js';
import { tagSelected } from '../engine/tags.js';
import { render } from '../playbook/template.js';
import { evalCondition, parseCondition } from '../playbook/conditions.js';
import { Redactor } from '../engine/redact.js';
import { JSON_FORMAT_VERSION } from '../report/json.js';
import type { CommonOptions, Inputs } from './inputs.js';

/** One step instance on one host, as `plan --json` lists it (schemas/events.json, `plan`). */
export interface PlannedStep {
  host: string;
  /** Where the commands run (delegate_to), when not the host. */
  on?: string;
  step: string;
  kind: string;
  name: string;
  tags: string[];
  /** `skipped`: a `when` is false from the vars alone; `conditional`: decided at run time. */
  status: 'planned' | 'skipped' | 'conditional';
  when?: string[];
  /** The argv of each command apply would run, secrets masked. */
  commands: string[][];
  /** Why the arguments could not be rendered before the run (a registered result, …). */
  note?: string;
  /** The item of a looped play (its label). */
  item?: string;
}

export interface PlannedPlay {
  name: string;
  hosts: string[];
  onFailure: string;
  steps: PlannedStep[];
  /** A looped play: its items, each with its hosts and lock, and what a failed item does. */
  loop?: { var: string; concurrency: number; onItemFailure: string; items: Array<{ label: string; hosts: string[]; lock: string }> };
}

/**
 * `baton plan --json`: the same plan as the text one, as one JSON document for review tools
 * and CI (play → steps per host → commands). Read from the playbook and inventory alone.
 */
export function planDocument(inputs: Inputs, o: CommonOptions): { v: number; type: 'plan'; playbook: string; plays: PlannedPlay[] } {
  const redactor = new Redactor();
  redactor.addInventory(inputs.inventory);
  redactor.addVars(inputs.extraVars);
  const mask = (argv: string[]) => argv.map((a) => redactor.redact(a));
  const plays = expandPlays(inputs.playbook, inputs.inventory, inputs.extraVars, o.limit, inputs.playbookFile).map((e): PlannedPlay => {
    const play = e.play;
    const steps: PlannedStep[] = [];
    for (const unit of e.units) planSteps(play, unit.hosts, unit.item, steps);
    const loop = play.loop
      ? { var: play.loop.var, concurrency: play.loop.concurrency ?? DEFAULT_ITEM_CONCURRENCY, onItemFailure: play.loop.onItemFailure, items: e.units.map((u) => ({ label: u.item!.label, hosts: u.hosts, lock: u.lock })) }
      : undefined;
    return { name: e.title, hosts: e.hosts, onFailure: play.onFailure ?? 'rollback', steps, ...(loop ? { loop } : {}) };
  });
  return { v: JSON_FORMAT_VERSION, type: 'plan', playbook: inputs.playbookFile, plays };

  function planSteps(play: Play, hosts: string[], item: PlayItem | undefined, steps: PlannedStep[]): void {
    for (const step of play.steps) {
      if (!tagSelected(step.tags, { tags: o.tags, skipTags: o.skipTags })) continue;
      const kind = inputs.registry.get(step.kind)!;
      for (const name of step.runOnce ? hosts.slice(0, 1) : hosts) {
        const host = inputs.inventory.hosts.get(name)!;
        const expansion = expandStep(play, step, host, item, { inventory: inputs.inventory, extraVars: inputs.extraVars, registered: {}, playHosts: hosts });
        let loopNote: string | undefined;
        let instances: Array<{ instance: string; vars: Record<string, unknown> }>;
        if (!('loopError' in expansion)) instances = expansion.instances;
        else if ('thrown' in expansion.loopError) {
          // One entry stands for the loop's instances, with why they are not known yet.
          instances = [{ instance: expansion.id, vars: expansion.base }];
          loopNote = `loop known only at run time: ${(expansion.loopError.thrown as Error).message}`;
        } else instances = [];
        instances.forEach(({ instance, vars: v }) => {
          let status: PlannedStep['status'] = 'planned';
          for (const c of step.when) {
            try {
              if (!evalCondition(parseCondition(c), v)) status = 'skipped';
            } catch {
              if (status === 'planned') status = 'conditional';
            }
          }
          const p: PlannedStep = {
            host: name,
            step: instance,
            kind: step.kind,
            name: step.name ?? step.kind,
            tags: step.tags,
            status,
            ...(step.when.length ? { when: step.when } : {}),
            commands: [],
            ...(item ? { item: item.label } : {}),
          };
          if (loopNote) p.note = loopNote;
          try {
            if (step.delegateTo) {
              const on = String(render(step.delegateTo, v));
              if (on !== name) p.on = on;
            }
            const args = render(step.args, v);
            const d = kind.describe(args);
            p.name = redactor.redact(step.name ? String(render(step.name, v)) : d.summary);
            if (status !== 'skipped') p.commands = d.commands.map(mask);
          } catch (e) {
            p.note = `arguments known only at run time: ${redactor.redact((e as Error).message)}`;
          }
          steps.push(p);
        });
      }
    }
  }
}
