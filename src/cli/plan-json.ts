import { playHosts, playTitle } from '../engine/execute.js';
import { tagSelected } from '../engine/tags.js';
import { render } from '../playbook/template.js';
import { varsFor } from '../playbook/vars.js';
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
}

export interface PlannedPlay {
  name: string;
  hosts: string[];
  onFailure: string;
  steps: PlannedStep[];
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
  const plays = inputs.playbook.plays.map((play): PlannedPlay => {
    const hosts = playHosts(play, inputs.inventory, inputs.extraVars, o.limit);
    const steps: PlannedStep[] = [];
    for (const step of play.steps) {
      if (!tagSelected(step.tags, { tags: o.tags, skipTags: o.skipTags })) continue;
      const kind = inputs.registry.get(step.kind)!;
      for (const name of step.runOnce ? hosts.slice(0, 1) : hosts) {
        const host = inputs.inventory.hosts.get(name)!;
        const base = { host, inventory: inputs.inventory, play, step, extraVars: inputs.extraVars, registered: {}, playHosts: hosts };
        let items: unknown[] = [undefined];
        let loopNote: string | undefined;
        if (step.loop !== undefined) {
          try {
            const rendered = render(step.loop, varsFor(base));
            items = Array.isArray(rendered) ? rendered : [];
          } catch (e) {
            items = [undefined];
            loopNote = `loop known only at run time: ${(e as Error).message}`;
          }
        }
        items.forEach((item, index) => {
          const v = step.loop !== undefined && !loopNote ? varsFor({ ...base, loop: { var: step.loopVar, value: item, index, length: items.length } }) : varsFor(base);
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
            step: step.loop !== undefined && !loopNote ? `${step.id}[${index}]` : step.id,
            kind: step.kind,
            name: step.name ?? step.kind,
            tags: step.tags,
            status,
            ...(step.when.length ? { when: step.when } : {}),
            commands: [],
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
    return { name: playTitle(play, inputs.extraVars), hosts, onFailure: play.onFailure ?? 'rollback', steps };
  });
  return { v: JSON_FORMAT_VERSION, type: 'plan', playbook: inputs.playbookFile, plays };
}
