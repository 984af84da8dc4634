import { expandPlays, type PlayItem } from '../engine/expand.js';
import { expandStep } from '../engine/instances.js';
import { DEFAULT_ITEM_CONCURRENCY } from '../playbook/play-items.js';
import type { Play } from '../playbook/model.js';
import { tagSelected } from '../engine/tags.js';
import { render } from '../playbook/template.js';
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
  for (const e of expandPlays(inputs.playbook, inputs.inventory, inputs.extraVars, o.limit, inputs.playbookFile)) {
    const play = e.play;
    const loop = play.loop;
    const each = loop ? `  (once per ${loop.var}, ${e.units.length} item(s), ${loop.concurrency ?? DEFAULT_ITEM_CONCURRENCY} at a time, on_item_failure: ${loop.onItemFailure})` : '';
    out.push('', `PLAY [${e.title}] on ${e.hosts.join(', ') || '(no hosts matched)'}${play.onFailure === 'stop' ? '  (on_failure: stop)' : ''}${each}`);
    for (const unit of e.units) {
      if (unit.item) out.push(`  ${loop!.var.toUpperCase()} [${unit.item.label}] on ${unit.hosts.join(', ') || '(no hosts matched)'}  (lock: ${unit.lock})`);
      renderSteps(play, unit.hosts, unit.item, unit.item ? '    ' : '  ');
    }
  }
  return out.join('\n');

  function renderSteps(play: Play, hosts: string[], item: PlayItem | undefined, indent: string): void {
    for (const step of play.steps) {
      if (!tagSelected(step.tags, { tags: o.tags, skipTags: o.skipTags })) continue;
      const targets = step.runOnce ? hosts.slice(0, 1) : hosts;
      for (const name of targets) {
        const host = inputs.inventory.hosts.get(name)!;
        const kind = inputs.registry.get(step.kind)!;
        const expansion = expandStep(play, step, host, item, { inventory: inputs.inventory, extraVars: inputs.extraVars, registered: {}, playHosts: hosts });
        // A loop known only at run time shows nothing here: the run decides its instances.
        const instances = 'loopError' in expansion ? [] : expansion.instances;
        for (const { vars: v } of instances) {
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
            out.push(`${indent}${name}: ${step.name ?? step.kind}${cond}`);
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
          out.push(`${indent}${name}${on}: ${summary}  [${step.tags.join(', ')}]${cond}`);
          for (const c of commands) out.push(`${indent}    $ ${redactor.redact(displayArgv(c))}`);
        }
      }
    }
  }
}

