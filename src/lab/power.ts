/** `baton lab power NODE on|off|status`: through the node's BMC, as a fence agent would. */
import { chassisPower } from './bmc.js';
import { LabError } from './exec.js';
import { waitBooted } from './node.js';
import type { LabPlan, NodePlan } from './plan.js';
import { BatonError, ExitCode } from '../util/errors.js';

export function findNode(plan: LabPlan, name: string): NodePlan {
  const n = plan.nodes.find((x) => x.name === name);
  if (!n) {
    throw new BatonError(`lab power: lab "${plan.spec.name}" has no node ${JSON.stringify(name)} (nodes: ${plan.nodes.map((x) => x.name).join(', ')})`, ExitCode.INVALID);
  }
  return n;
}

/**
 * Returns ipmitool's answer. `on` also waits until the node has booted (answers SSH), so the
 * caller can use it at once; a real BMC returns earlier, a fence agent polls `status`.
 */
export async function labPower(plan: LabPlan, nodeName: string, action: 'on' | 'off' | 'status'): Promise<string> {
  const node = findNode(plan, nodeName);
  const out = await chassisPower(node, action);
  if (action === 'on' && !(await waitBooted(node))) {
    throw new LabError(`node ${node.name}: powered on through its BMC but sshd on ${node.address}:22 did not answer within 20 s; see ${node.dir}/console.log\nbaton: left it powered on`);
  }
  if (action === 'off') {
    const st = await chassisPower(node, 'status');
    if (!/off/i.test(st)) throw new LabError(`node ${node.name}: \`chassis power off\` answered "${out}" but status says "${st}"`);
  }
  return out;
}
