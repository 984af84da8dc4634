/**
 * A playbook with `placement:` plays (service-move, node-evacuate, node-failover) shows and runs
 * the moves what runs where asks for now: the groups are observed once, read-only, before the
 * plan is printed, and the run goes on with that list (engine/placement.ts).
 */
import path from 'node:path';
import { connectionFor } from '../inventory/connection.js';
import { hasPlacement, resolvePlaybookPlacement } from '../engine/placement.js';
import { LocalTransport, TransportPool } from '../transport/index.js';
import { connectTimeoutMsFor } from './check.js';
import type { Inputs } from './inputs.js';

export async function withPlacement(inputs: Inputs, say: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<Inputs> {
  if (!hasPlacement(inputs.playbook)) return inputs;
  const inv = inputs.inventory;
  // As `baton status` reads the nodes: a node that does not answer is unknown after the connect
  // timeout, not after the OS gives up.
  const pool = new TransportPool((name) => {
    const host = inv.hosts.get(name)!;
    return { ...connectionFor(host, path.dirname(inv.file)), connectTimeoutMs: connectTimeoutMsFor(host) };
  });
  try {
    const { playbook, notes } = await resolvePlaybookPlacement(inputs.playbook, inv, inputs.extraVars, { transportOf: (n) => pool.get(n), bmcRunner: new LocalTransport('controller') });
    for (const n of notes) say(`note: ${n}`);
    return { ...inputs, playbook };
  } finally {
    await pool.closeAll();
  }
}
