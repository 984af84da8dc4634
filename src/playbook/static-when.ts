import type { Host, Inventory } from '../inventory/model.js';
import { evalCondition, parseCondition } from './conditions.js';
import type { Play, StepSpec } from './model.js';
import { varsFor } from './vars.js';

/**
 * A step whose `when:` is false on every host of its play, whatever the run does, never runs:
 * the loader leaves it out, so plans, recaps and journals show only steps that can run. This is
 * how a role offers one step per provider (`when: volume_provider == 'zfs'`) and a play on loop
 * devices shows no ZFS or LVM step.
 *
 * "Whatever the run does" means the condition reads only what is fixed when the playbook is
 * loaded: role defaults and params, inventory, play vars, extra vars, and the inventory's
 * magic vars. A condition that names a registered result, a loop variable (the step's or the
 * play's item), or `play_hosts`
 * (which --limit changes) stays for the run to decide, and so does any condition that cannot
 * be evaluated now. A step that registers a result stays too: later conditions may test it.
 */
export function provablySkipped(
  step: StepSpec,
  play: Play,
  targets: Host[],
  ctx: { inventory: Inventory; extraVars: Record<string, unknown>; runtimeNames: Set<string> },
): string | undefined {
  if (!step.when.length || step.register !== undefined || step.loop !== undefined || !targets.length) return undefined;
  const playHosts = targets.map((h) => h.name);
  for (const cond of step.when) {
    // Every identifier in the text, string literals included: erring towards "decided at run time".
    const words = cond.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? [];
    if (words.some((w) => ctx.runtimeNames.has(w) || w === step.loopVar || w === play.loop?.var || w === 'play_hosts' || w === 'ansible_loop')) continue;
    let falseEverywhere = true;
    try {
      const ast = parseCondition(cond);
      for (const host of targets) {
        const vars = varsFor({ host, inventory: ctx.inventory, play, step, extraVars: ctx.extraVars, registered: {}, playHosts });
        if (evalCondition(ast, vars)) {
          falseEverywhere = false;
          break;
        }
      }
    } catch {
      falseEverywhere = false; // undefined somewhere, or not decidable now: the run decides
    }
    if (falseEverywhere) return cond;
  }
  return undefined;
}
