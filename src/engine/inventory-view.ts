import type { Inventory } from '../inventory/model.js';

/**
 * The inventory as a run sees it: every host's vars overlaid with the extra vars, which win over
 * everything in Ansible — `hostvars[n1].bmc_password` too, so `-e bmc_password=…` reaches a fence
 * of n1 even when the inventory holds an older password. The loaded inventory is left as it is.
 */
export function withExtraVars(inventory: Inventory, extraVars: Record<string, unknown>): Inventory {
  const keys = Object.keys(extraVars);
  if (keys.length === 0) return inventory;
  const hosts = new Map([...inventory.hosts].map(([name, h]) => [name, { ...h, vars: { ...h.vars, ...extraVars } }]));
  return { ...inventory, hosts };
}
