import { playHosts, playTitle } from '../engine/execute.js';
import { tagSelected } from '../engine/tags.js';
import { render } from '../playbook/template.js';
import { varsFor } from '../playbook/vars.js';
import { evalCondition, parseCondition } from '../playbook/conditions.js';
import { displayArgv } from '../util/argv.js';
import { Redactor } from '../engine/redact.js';
import type { CommonOptions, Inputs } from './inputs.js';

/**
 * The plan: every step with its host and the exact commands it would run if the node
 * needs changing. Read from the playbook and inventory alone — no node is contacted — so
 * it can be shown before asking, and read in a change review.
 */
export function renderPlan(inputs: Inputs, o: CommonOptions): string {
  const redactor = new Redactor();
  redactor.addInventory(inputs.inventory);
  redactor.addVars(inputs.extraVars);
  const out: string[] = [`PLAN for ${inputs.playbookFile}`];
  inputs.playbook.plays.forEach((play) => {
    const hosts = playHosts(play, inputs.inventory, inputs.extraVars, o.limit);
    out.push('', `PLAY [${playTitle(play, inputs.extraVars)}] on ${hosts.join(', ') || '(no hosts matched)'}${play.onFailure === 'stop' ? '  (on_failure: stop)' : ''}`);
    for (const step of play.steps) {
      if (!tagSelected(step.tags, { tags: o.tags, skipTags: o.skipTags })) continue;
      const targets = step.runOnce ? hosts.slice(0, 1) : hosts;
      for (const name of targets) {
        const host = inputs.inventory.hosts.get(name)!;
        const varsInput = { host, inventory: inputs.inventory, play, step, extraVars: inputs.extraVars, registered: {}, playHosts: hosts };
        const vars = varsFor(varsInput);
        const kind = inputs.registry.get(step.kind)!;
        let items: unknown[] = [undefined];
        if (step.loop !== undefined) {
          try {
            const rendered = render(step.loop, vars);
            items = Array.isArray(rendered) ? rendered : [];
          } catch {
            items = [];
          }
        }
        for (const item of items) {
          const v = step.loop !== undefined ? varsFor({ ...varsInput, loop: { var: step.loopVar, value: item } }) : vars;
          let cond = '';
          let skipped = false;
          for (const c of step.when) {
            try {
              if (!evalCondition(parseCondition(c), v)) {
                skipped = true;
                cond = `  [skipped: when ${c}]`;
              }
            } catch {
              cond = `  [only if: ${c}]`;
            }
          }
          if (skipped) {
            out.push(`  ${name}: ${step.name ?? step.kind}${cond}`);
            continue;
          }
          let summary: string;
          let commands: string[][] = [];
          try {
            const args = render(step.args, v);
            const d = kind.describe(args);
            summary = step.name ? String(render(step.name, v)) : d.summary;
            commands = d.commands;
          } catch (e) {
            summary = `${step.name ?? step.kind} (arguments known only at run time: ${(e as Error).message})`;
          }
          const on = step.delegateTo ? ` (on ${String(render(step.delegateTo, v))})` : '';
          out.push(`  ${name}${on}: ${summary}  [${step.tags.join(', ')}]${cond}`);
          for (const c of commands) out.push(`      $ ${redactor.redact(displayArgv(c))}`);
        }
      }
    }
  });
  return out.join('\n');
}

