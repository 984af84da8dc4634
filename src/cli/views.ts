import { playHosts, playTitle } from '../engine/execute.js';
import { tagSelected } from '../engine/tags.js';
import { render } from '../playbook/template.js';
import { varsFor } from '../playbook/vars.js';
import type { CommonOptions, Inputs } from './inputs.js';

/**
 * ansible-playbook's read-only views, for `run` and `plan`: `--list-hosts`, `--list-tasks`,
 * `--list-tags` and `--syntax-check`. Each is printed from the loaded playbook and inventory
 * alone (the whole input was validated first, exit 2 otherwise); no node is contacted.
 * The layout follows ansible-playbook's, so habits and scripts that read it carry over.
 */
export interface ViewOptions extends CommonOptions {
  listHosts?: boolean;
  listTasks?: boolean;
  listTags?: boolean;
  syntaxCheck?: boolean;
}

export function wantsView(o: ViewOptions): boolean {
  return Boolean(o.listHosts || o.listTasks || o.listTags || o.syntaxCheck);
}

export function renderViews(inputs: Inputs, o: ViewOptions): string {
  const out = ['', `playbook: ${inputs.playbookFile}`];
  if (o.syntaxCheck && !(o.listHosts || o.listTasks || o.listTags)) return out.join('\n');
  const filter = { tags: o.tags, skipTags: o.skipTags };
  inputs.playbook.plays.forEach((play, i) => {
    const hosts = playHosts(play, inputs.inventory, inputs.extraVars, o.limit);
    const title = playTitle(play, inputs.extraVars);
    out.push('', `  play #${i + 1} (${String(render(play.hosts, { ...play.vars, ...inputs.extraVars }))}): ${title}\tTAGS: [${play.tags.join(', ')}]`);
    if (o.listHosts) {
      out.push(`    pattern: ['${play.hosts}']`, `    hosts (${hosts.length}):`);
      for (const h of hosts) out.push(`      ${h}`);
    }
    const selected = play.steps.filter((s) => tagSelected(s.tags, filter));
    if (o.listTasks) {
      out.push('    tasks:');
      const first = inputs.inventory.hosts.get(hosts[0] ?? '');
      for (const s of selected) {
        // Named as the first host would see it (role defaults, inventory, play and extra vars).
        const vars = first ? varsFor({ host: first, inventory: inputs.inventory, play, step: s, extraVars: inputs.extraVars, playHosts: hosts }) : inputs.extraVars;
        const role = s.role ? `${s.role.name} : ` : ''; // as ansible-playbook shows a role's tasks
        out.push(`      ${role}${stepTitle(s.name, s.kind, vars)}\tTAGS: [${s.tags.join(', ')}]`);
      }
    }
    if (o.listTags) {
      const tags = [...new Set(selected.flatMap((s) => s.tags))].sort();
      out.push(`      TASK TAGS: [${tags.join(', ')}]`);
    }
  });
  return out.join('\n');
}

/** A step's name with its templates filled in where the vars are known; the kind when unnamed. */
function stepTitle(name: string | undefined, kind: string, vars: Record<string, unknown>): string {
  if (!name) return kind;
  try {
    return String(render(name, vars));
  } catch {
    return name; // needs per-host or role vars: shown as written
  }
}
