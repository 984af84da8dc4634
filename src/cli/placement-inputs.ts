/**
 * A playbook with `placement:` plays (service-move, node-evacuate, node-failover) shows and runs
 * the moves what runs where asks for now: the groups are observed once, read-only, before the
 * plan is printed, and the run goes on with that list (engine/placement.ts).
 */
import path from 'node:path';
import { connectionFor } from '../inventory/connection.js';
import { hasPlacement, resolvePlaybookPlacement } from '../engine/placement.js';
import { LocalTransport, TransportPool } from '../transport/index.js';
import type { Inputs } from './inputs.js';

export async function withPlacement(inputs: Inputs, say: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<Inputs> {
  if (!hasPlacement(inputs.playbook)) return inputs;
  const inv = inputs.inventory;
  const pool = new TransportPool((name) => connectionFor(inv.hosts.get(name)!, path.dirname(inv.file)));
  try {
    const { playbook, notes } = await resolvePlaybookPlacement(inputs.playbook, inv, inputs.extraVars, { transportOf: (n) => pool.get(n), bmcRunner: new LocalTransport('controller') });
    for (const n of notes) say(`note: ${n}`);
    return { ...inputs, playbook };
  } finally {
    await pool.closeAll();
  }
}
