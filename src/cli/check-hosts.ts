import type { Inputs } from './inputs.js';
import { render } from '../playbook/template.js';
import { selectHosts } from '../inventory/pattern.js';

/** Every host a check may reach: each play's hosts and the literal delegates of its steps. */
export function playHostsOf(inputs: Inputs, limit?: string): string[] {
  const all = new Set<string>();
  for (const play of inputs.playbook.plays) {
    const pattern = String(render(play.hosts, { ...play.vars, ...inputs.extraVars }));
    for (const h of selectHosts(inputs.inventory, pattern, limit).hosts) all.add(h.name);
    for (const s of play.steps) if (s.delegateTo && !s.delegateTo.includes('{{')) all.add(s.delegateTo);
  }
  return [...all];
}
