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
import { coordinatorSpec, openCoordinator } from '../engine/coordinator.js';
import { owedCheck } from '../engine/resume.js';
import { journaledVars, secretsOf } from '../engine/session.js';

/** What the groups' last runs, cut short, left owed: shown in the plan and finished by the run. */
const owedOf = (inputs: Inputs) => owedCheck(inputs.playbookFile, journaledVars(inputs.extraVars, secretsOf(inputs)));

/**
 * For `baton run`: the same resolution, over connections the run then goes on using (handed to
 * the session, which closes them), so each node's SSH connection is opened once per run, not
 * once to read and once to run. While the groups are read a node that does not answer is
 * given up after the status connect timeout, as in withPlacement; a failed connect is
 * remembered by the pool, so the run's peer checks do not wait for that node again.
 */
export async function withPlacementForRun(inputs: Inputs, o: { acceptNew?: boolean; coordinator?: string }, say: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<{ inputs: Inputs; pool?: TransportPool }> {
  if (!hasPlacement(inputs.playbook)) return { inputs };
  const inv = inputs.inventory;
  // Another controller's run cut short may have to be finished: its journal is read with ours.
  for (const n of await openCoordinator(coordinatorSpec(o.coordinator, inv), inv).syncJournals()) say(n);
  let reading = true;
  const pool = new TransportPool(
    (name) => {
      const host = inv.hosts.get(name)!;
      const spec = connectionFor(host, path.dirname(inv.file));
      return reading ? { ...spec, connectTimeoutMs: connectTimeoutMsFor(host) } : spec;
    },
    { acceptNewHostKeys: o.acceptNew },
  );
  try {
    const { playbook, notes } = await resolvePlaybookPlacement(inputs.playbook, inv, inputs.extraVars, { transportOf: (n) => pool.get(n), bmcRunner: new LocalTransport('controller'), owed: owedOf(inputs) });
    reading = false;
    for (const n of notes) say(`note: ${n}`);
    return { inputs: { ...inputs, playbook }, pool };
  } catch (e) {
    await pool.closeAll();
    throw e;
  }
}

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
    const { playbook, notes } = await resolvePlaybookPlacement(inputs.playbook, inv, inputs.extraVars, { transportOf: (n) => pool.get(n), bmcRunner: new LocalTransport('controller'), owed: owedOf(inputs) });
    for (const n of notes) say(`note: ${n}`);
    return { ...inputs, playbook };
  } finally {
    await pool.closeAll();
  }
}
