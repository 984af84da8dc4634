/**
 * Where the inventory's and the playbook's Ansible features meet the engine: a play's or step's
 * `become` reaches every command of the step (its peers' too), vault secrets are masked wherever
 * baton prints, and inventory vars whose templates need play vars are rendered in the step's
 * context — while a value from -e never is.
 */
import { describe, expect, it } from 'vitest';
import { execute } from '../../src/engine/execute.js';
import { Redactor } from '../../src/engine/redact.js';
import type { TransportSource } from '../../src/engine/context.js';
import type { ExecOptions, ExecResult, Transport } from '../../src/transport/transport.js';
import { defaultRegistry } from '../../src/steps/registry.js';
import { varsFor } from '../../src/playbook/vars.js';
import { localInventory, playbook, step } from '../helpers/model.js';

/** A transport that records each command with the become it was asked to run under. */
function recordingPool(): { pool: TransportSource; seen: Array<{ host: string; argv: string[]; become: ExecOptions['become'] }> } {
  const seen: Array<{ host: string; argv: string[]; become: ExecOptions['become'] }> = [];
  const make = (host: string): Transport => ({
    host,
    kind: 'local',
    connect: async () => undefined,
    close: async () => undefined,
    exec: async (argv: string[], opts: ExecOptions = {}): Promise<ExecResult> => {
      seen.push({ host, argv, become: opts.become });
      return { argv, code: 0, signal: null, stdout: '', stderr: '', durationMs: 1, timedOut: false } as ExecResult;
    },
  });
  return { pool: { get: async (h) => make(h) }, seen };
}

describe('become reaches every command of a step', () => {
  it("the step's become wins over the play's, and a step without one gets the play's", async () => {
    const { pool, seen } = recordingPool();
    const steps = [step('command', ['id', '-u'], { become: true, becomeUser: 'postgres' }), step('command', ['whoami'])];
    const pb = playbook(steps, { become: true, becomeUser: 'root' });
    const r = await execute({ playbook: pb, inventory: localInventory(['n1']), extraVars: {}, registry: defaultRegistry(), pool, runId: 'r', redactor: new Redactor(), onEvent: () => undefined });
    expect(r.exitCode).toBe(0);
    expect(seen.find((c) => c.argv[0] === 'id')!.become).toEqual({ user: 'postgres' });
    expect(seen.find((c) => c.argv[0] === 'whoami')!.become).toEqual({ user: 'root' });
  });

  it('become: false on a step runs it without sudo even when the play asks for it', async () => {
    const { pool, seen } = recordingPool();
    const pb = playbook([step('command', ['true'], { become: false })], { become: true });
    await execute({ playbook: pb, inventory: localInventory(['n1']), extraVars: {}, registry: defaultRegistry(), pool, runId: 'r', redactor: new Redactor(), onEvent: () => undefined });
    expect(seen[0]!.become).toBe(false);
  });
});

describe('vault secrets are masked', () => {
  it('values from the vault are masked whatever their var is called', () => {
    const inventory = localInventory(['n1']);
    inventory.hosts.get('n1')!.vars.bmc_address = '198.18.0.77';
    inventory.hosts.get('n1')!.vars.db_password = 'pl41n-s3cret';
    inventory.secretVars = new Set(['bmc_address']);
    inventory.secretValues = new Set(['v4ulted-t0ken']);
    const r = new Redactor();
    r.addInventory(inventory);
    expect(r.redact('ipmitool -H 198.18.0.77 -P pl41n-s3cret v4ulted-t0ken')).toBe('ipmitool -H ******** -P ******** ********');
  });
});

describe('inventory templates that need a play', () => {
  const host = () => {
    const inv = localInventory(['n1']);
    const h = inv.hosts.get('n1')!;
    h.vars.export_path = '/srv/{{ service }}';
    h.deferred = { export_path: '/srv/{{ service }}' };
    return { inv, h };
  };

  it('are rendered with the play vars when the step reads them', () => {
    const { inv, h } = host();
    const play = playbook([], { vars: { service: 'nfs-a' } }).plays[0]!;
    expect(varsFor({ host: h, inventory: inv, play }).export_path).toBe('/srv/nfs-a');
  });

  it('but a value given with -e is data: never rendered', () => {
    const { inv, h } = host();
    const play = playbook([], { vars: { service: 'nfs-a' } }).plays[0]!;
    const withE = { ...h, vars: { ...h.vars, export_path: '{{ service }}' } };
    expect(varsFor({ host: withE, inventory: inv, play, extraVars: { export_path: '{{ service }}' } }).export_path).toBe('{{ service }}');
  });
});
