import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/engine/events.js';
import { revertChanges, type AppliedChange } from '../../src/engine/rollback.js';
import { allKinds } from '../../src/steps/index.js';
import type { StepKind } from '../../src/steps/contract.js';
import { defaultRegistry, StepRegistry } from '../../src/steps/registry.js';
import { TransportPool } from '../../src/transport/index.js';
import { connectionFor } from '../../src/inventory/connection.js';
import { localInventory } from '../helpers/model.js';

// A rollback (or undo) reverts newest first, so a fence comes back last. When an earlier revert
// failed — a takeover the fence made safe is still in place on the survivor — powering the fenced
// node on again would invite the split brain the fence was there to prevent: it stays fenced.

const calls: string[] = [];
const fence: StepKind<{ target: string }, { off: boolean }> = {
  kind: 'fake_power_fence',
  role: 'fence',
  probe: async () => ({ off: !calls.includes('power on') }),
  satisfied: (o) => o.off,
  apply: async () => undefined,
  revert: async () => void calls.push('power on'),
  describe: (a) => ({ summary: `fence ${a.target}`, commands: [] }),
};
const takeover = (fails: boolean): StepKind<Record<string, never>, { held: boolean }> => ({
  kind: fails ? 'stuck_takeover' : 'takeover_ok',
  probe: async () => ({ held: !calls.includes('released') }),
  satisfied: (o) => o.held,
  apply: async () => undefined,
  revert: async () => {
    if (fails) throw new Error('umount: target is busy');
    calls.push('released');
  },
  describe: () => ({ summary: 'take over', commands: [] }),
});

async function rollback(takeoverFails: boolean): Promise<{ complete: boolean; events: EngineEvent[] }> {
  calls.length = 0;
  const kinds = [fence, takeover(true), takeover(false)] as StepKind[];
  const registry = new StepRegistry([...allKinds, ...kinds], (k) => (kinds.some((x) => x.kind === k) ? {} : defaultRegistry().schema(k)));
  const inventory = localInventory();
  const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
  const change = (seq: number, kind: string, args: unknown): AppliedChange => ({
    ref: { play: 0, playName: 'failover', stepId: `p0.s${seq}`, instance: `p0.s${seq}`, name: kind, kind, host: 'local', tags: [] },
    kind,
    args,
    before: kind === 'fake_power_fence' ? { off: false } : { held: false },
    seq,
    runId: 'r',
    journaledArgs: args,
  });
  const events: EngineEvent[] = [];
  try {
    const complete = await revertChanges([change(1, 'fake_power_fence', { target: 'n1' }), change(2, takeoverFails ? 'stuck_takeover' : 'takeover_ok', {})], { registry, inventory, pool, onEvent: (e) => events.push(e) });
    return { complete, events };
  } finally {
    await pool.closeAll();
  }
}

describe('rolling back a fence', () => {
  it('is left fenced when a later change could not be put back, and the rollback says so', async () => {
    const r = await rollback(true);
    expect(r.complete).toBe(false);
    expect(calls).toEqual([]);
    expect(r.events).toContainEqual(expect.objectContaining({ type: 'revert-end', ok: false, error: expect.stringMatching(/left fenced: an earlier revert failed/) }));
  });

  it('is powered back on once everything after it is back', async () => {
    const r = await rollback(false);
    expect(r.complete).toBe(true);
    expect(calls).toEqual(['released', 'power on']);
  });
});
