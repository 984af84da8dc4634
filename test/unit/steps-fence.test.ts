import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  agentOptionsFor,
  agentStatusFromExit,
  fenceAgentStdin,
  ipmitoolArgv,
  parseAgentStatus,
  parseIpmiPowerStatus,
  PASSWORD_FROM_STDIN,
  retryFor,
  statusFromPattern,
  withPasswordOnStdin,
} from '../../src/facts/power.js';
import { fence } from '../../src/steps/fence.js';
import { unfence } from '../../src/steps/unfence.js';
import { StepRegistry } from '../../src/steps/registry.js';
import { defaultRegistry } from '../../src/steps/registry.js';
import { execute } from '../../src/engine/execute.js';
import { Journal, readJournal } from '../../src/engine/journal.js';
import { RecapCollector, type EngineEvent } from '../../src/engine/events.js';
import { commandDriver } from '../../src/steps/fence/command.js';
import { allKinds } from '../../src/steps/index.js';
import { Redactor } from '../../src/engine/redact.js';
import { revertChanges } from '../../src/engine/rollback.js';
import { TransportPool } from '../../src/transport/index.js';
import { connectionFor } from '../../src/inventory/connection.js';
import { localInventory, playbook, step } from '../helpers/model.js';

// Captured in the lab (ipmitool 1.8.19 against ipmi_sim; fence_ipmilan from fence-agents 4.12.1).
const IPMI_STATUS_ON = 'Chassis Power is on\n';
const IPMI_STATUS_OFF = 'Chassis Power is off\n';
const IPMI_OFF_ANSWER = 'Chassis Power Control: Down/Off\n';
const AGENT_STATUS_OFF = 'Status: OFF\n'; // exit 2
const AGENT_STATUS_ON = 'Status: ON\n'; // exit 0
const AGENT_ALREADY_OFF = 'Success: Already OFF\n'; // action=off, exit 0

const BMC = { address: '198.18.60.1', port: 20601, user: 'admin', password: 's3cret pass', cipherSuite: 3 };

describe('power facts', () => {
  it('builds ipmitool argv with -E and never the password', () => {
    const argv = ipmitoolArgv(BMC, 'off');
    expect(argv).toEqual(['ipmitool', '-I', 'lanplus', '-H', '198.18.60.1', '-p', '20601', '-U', 'admin', '-E', '-C', '3', '-N', '1', '-R', '2', 'chassis', 'power', 'off']);
    expect(argv.join(' ')).not.toContain('s3cret');
    expect(ipmitoolArgv({ ...BMC, lanplus: false, port: undefined }, 'status')).toEqual(['ipmitool', '-I', 'lan', '-H', '198.18.60.1', '-U', 'admin', '-E', '-N', '1', '-R', '2', 'chassis', 'power', 'status']);
  });

  it('sizes ipmitool retries to the time left', () => {
    expect(retryFor(60_000)).toEqual({ seconds: 2, retries: 3 });
    expect(retryFor(8_000)).toEqual({ seconds: 1, retries: 2 });
    expect(retryFor(500)).toEqual({ seconds: 1, retries: 1 });
  });

  it('hands the password from stdin to IPMI_PASSWORD with a constant script (checked by a real sh)', () => {
    const argv = withPasswordOnStdin(['sh', '-c', 'printf "%s|%s" "$IPMI_PASSWORD" "$1"', 'x', 'arg;$(id)']);
    expect(argv.slice(0, 4)).toEqual(['sh', '-c', PASSWORD_FROM_STDIN, 'baton-ipmi']);
    const out = execFileSync(argv[0]!, argv.slice(1), { input: "p'a\"s $(id) s\n" }).toString();
    expect(out).toBe("p'a\"s $(id) s|arg;$(id)");
    // No password on stdin: the script stops before running the tool.
    expect(spawnSync(argv[0]!, argv.slice(1), { input: '' }).status).toBe(97);
  });

  it('parses ipmitool power status', () => {
    expect(parseIpmiPowerStatus(IPMI_STATUS_ON)).toBe('on');
    expect(parseIpmiPowerStatus(IPMI_STATUS_OFF)).toBe('off');
    expect(() => parseIpmiPowerStatus(IPMI_OFF_ANSWER)).toThrow(/unexpected answer/);
    expect(() => parseIpmiPowerStatus('')).toThrow(/unexpected answer/);
  });

  it('builds fence-agent stdin and refuses values that would inject a key', () => {
    const opts = { ...agentOptionsFor(BMC), action: 'off' };
    expect(fenceAgentStdin(opts)).toBe('ip=198.18.60.1\nusername=admin\npassword=s3cret pass\nipport=20601\nlanplus=1\ncipher=3\naction=off\n');
    expect(fenceAgentStdin({ lanplus: true, verbose: false })).toBe('lanplus=1\nverbose=0\n');
    expect(() => fenceAgentStdin({ password: 'x\naction=on' })).toThrow(/line break/);
    expect(() => fenceAgentStdin({ 'bad key': 1 })).toThrow(/not a key/);
  });

  it('maps agent status exit codes and output', () => {
    expect(agentStatusFromExit(0)).toBe('on');
    expect(agentStatusFromExit(2)).toBe('off');
    expect(agentStatusFromExit(1)).toBeUndefined();
    expect(agentStatusFromExit(null)).toBeUndefined();
    expect(parseAgentStatus(AGENT_STATUS_OFF)).toBe('off');
    expect(parseAgentStatus(`/usr/sbin/fence_ipmilan:5: DeprecationWarning\n${AGENT_STATUS_ON}`)).toBe('on');
    expect(parseAgentStatus(AGENT_ALREADY_OFF)).toBeUndefined();
  });

  it('reads a command status with off_pattern', () => {
    expect(statusFromPattern('outlet 4: OFF\n', 'outlet 4: OFF')).toBe('off');
    expect(statusFromPattern('outlet 4: ON\n', 'outlet 4: OFF')).toBe('on');
  });

  it('a status command that fails is no reading, even when its message matches off_pattern', async () => {
    // Before: "could not switch outlet 3 off" from a tool exiting 1 matched `off`: the fence was
    // confirmed, the node marked down, while it may still have been running.
    const ctx = {
      transport: { host: 'n2' },
      run: async (argv: string[]) => ({ argv, code: 1, signal: null, stdout: 'could not switch outlet 3 off: connection timed out\n', stderr: '', timedOut: false, durationMs: 1 }),
    };
    const driver = commandDriver({ status: ['pdu', 'status', '3'], off_pattern: 'off', on: ['pdu', 'on'], off: ['pdu', 'off'] });
    await expect(driver.status(ctx as never, 5000)).rejects.toThrow(/exited 1: could not switch outlet 3 off.*not read as a power state/);
  });
});

describe('fence/unfence describe and flags', () => {
  it('describes ipmi without inventory and without the password', () => {
    const d = fence.describe({ target: 'n1', password: 'hunter22' });
    expect(d.summary).toBe('fence (power off) n1 via ipmi');
    expect(d.commands[0]!.slice(0, 4)).toEqual(['sh', '-c', PASSWORD_FROM_STDIN, 'baton-ipmi']);
    expect(d.commands[0]).toContain('<bmc_address of n1>');
    expect(JSON.stringify(d)).not.toContain('hunter22');
    expect(fence.describe({ target: 'n1', provider: 'fence-agent', agent: 'fence_ipmilan' }).commands).toEqual([['fence_ipmilan']]);
    expect(fence.describe({ target: 'n1', provider: 'ssh' }).commands).toEqual([['sh', '-c', 'echo o > /proc/sysrq-trigger']]);
    expect(unfence.describe({ target: 'n1', provider: 'command', on: ['pdu', 'on', '4'] }).commands).toEqual([['pdu', 'on', '4']]);
  });

  it('marks roles, inverses, secrets, one-shot reboot and irreversible self-fence', () => {
    expect(fence.role).toBe('fence');
    expect(fence.inverse).toBe('unfence');
    expect(unfence.inverse).toBe('fence');
    expect(fence.secretArgs).toContain('password');
    expect(fence.secretArgs).toContain('options.password');
    expect(typeof fence.oneShot === 'function' && fence.oneShot({ target: 'n1', action: 'reboot' })).toBe(true);
    expect(typeof fence.oneShot === 'function' && fence.oneShot({ target: 'n1' })).toBe(false);
    expect(fence.reversible!({ target: 'n1' })).toBe(true);
    expect(fence.reversible!({ target: 'n1', provider: 'ssh' })).toBe(false);
    expect(fence.satisfied({ power: 'off' }, { target: 'n1' })).toBe(true);
    expect(fence.satisfied({ power: 'on' }, { target: 'n1' })).toBe(false);
    expect(unfence.satisfied({ power: 'on' }, { target: 'n1' })).toBe(true);
  });

  it('is registered with schemas that accept the documented args and reject unknown ones', () => {
    const reg = defaultRegistry();
    expect(reg.has('fence')).toBe(true);
    expect(reg.has('unfence')).toBe(true);
    const fenceSchema = JSON.parse(readFileSync(path.resolve('schemas/steps/fence.json'), 'utf8'));
    const unfenceSchema = JSON.parse(readFileSync(path.resolve('schemas/steps/unfence.json'), 'utf8'));
    expect(fenceSchema.additionalProperties).toBe(false);
    expect(fenceSchema.properties.provider.enum).toEqual(['ipmi', 'fence-agent', 'ssh', 'command', 'scsi-pr']);
    // ssh cannot power a node on.
    expect(unfenceSchema.properties.provider.enum).not.toContain('ssh');
    expect(unfenceSchema.properties.action).toBeUndefined();
  });
});

/**
 * The engine drives fence/unfence with the `command` provider on the local transport: a file
 * stands for the target's power supply, so probe/apply/verify/revert run for real.
 */
describe('fence through the engine (command provider, local)', () => {
  let dir: string;
  let stateDir: string;
  let psu: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-fence-'));
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'baton-fence-state-'));
    psu = path.join(dir, 'psu');
    writeFileSync(psu, 'on\n');
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  });

  const power = (state: string) => ['sh', '-c', 'echo "$1" > "$2"', 'psu', state, psu];
  const cmdArgs = (extra: Record<string, unknown> = {}) => ({
    target: 'peer',
    provider: 'command' as const,
    on: power('on'),
    off: power('off'),
    status: ['cat', psu],
    off_pattern: '^off$',
    timeout: 3,
    interval: 0.1,
    ...extra,
  });

  async function run(kind: string, args: unknown, runId = 'r1') {
    const inventory = localInventory(['local', 'peer']);
    const events: EngineEvent[] = [];
    const recap = new RecapCollector();
    const journal = new Journal(runId, path.join(stateDir, 'runs'));
    const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
    const registry = new StepRegistry([fence, unfence]);
    try {
      const result = await execute({
        playbook: playbook([step(kind, args)], { hosts: 'local' }),
        inventory,
        extraVars: {},
        registry,
        pool,
        runId,
        journal,
        redactor: new Redactor(),
        onEvent: (e) => {
          events.push(e);
          recap.onEvent(e);
        },
      });
      return { result, events, recap: recap.hosts.get('local')!, journalPath: journal.path, inventory, registry };
    } finally {
      journal.close();
      await pool.closeAll();
    }
  }

  it('powers off, confirms by status; a second run changes nothing; revert powers back on', async () => {
    const first = await run('fence', cmdArgs());
    expect(first.result.exitCode).toBe(0);
    expect(first.recap).toMatchObject({ changed: 1, failed: 0 });
    expect(readFileSync(psu, 'utf8')).toBe('off\n');

    const second = await run('fence', cmdArgs(), 'r2');
    expect(second.recap).toMatchObject({ changed: 0, ok: 1 });

    const inventory = first.inventory;
    const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
    try {
      const ok = await revertChanges(first.result.changes, { registry: first.registry, inventory, pool, onEvent: () => {} });
      expect(ok).toBe(true);
    } finally {
      await pool.closeAll();
    }
    expect(readFileSync(psu, 'utf8')).toBe('on\n');
  });

  it('fails within its timeout, never succeeds, when the power command works but the state never comes', async () => {
    const t0 = Date.now();
    const r = await run('fence', cmdArgs({ off: ['true'], timeout: 1 }));
    const ms = Date.now() - t0;
    expect(r.result.exitCode).not.toBe(0);
    expect(r.recap).toMatchObject({ changed: 0, failed: 1 });
    expect(r.result.failures.join('\n')).toMatch(/peer is not confirmed off: .* still reports power on .*NOT fenced/s);
    expect(ms).toBeLessThan(4000);
    expect(readFileSync(psu, 'utf8')).toBe('on\n');
  });

  it('refuses to fence the host it runs on through a BMC-style provider', async () => {
    const r = await run('fence', cmdArgs({ target: 'local' }));
    expect(r.result.exitCode).not.toBe(0);
    expect(r.result.failures.join('\n')).toMatch(/refusing to fence local from local itself/);
  });

  it('unfence powers on, is idempotent, and its revert powers off again', async () => {
    writeFileSync(psu, 'off\n');
    const first = await run('unfence', cmdArgs());
    expect(first.recap).toMatchObject({ changed: 1 });
    expect(readFileSync(psu, 'utf8')).toBe('on\n');
    expect((await run('unfence', cmdArgs(), 'r2')).recap).toMatchObject({ changed: 0, ok: 1 });
    const pool = new TransportPool((h) => connectionFor(first.inventory.hosts.get(h)!));
    try {
      expect(await revertChanges(first.result.changes, { registry: first.registry, inventory: first.inventory, pool, onEvent: () => {} })).toBe(true);
    } finally {
      await pool.closeAll();
    }
    expect(readFileSync(psu, 'utf8')).toBe('off\n');
  });

  it('a node powered back on in the run (unfence, or a reboot fence) is reached again by later steps, not excused as fenced', async () => {
    const inventory = localInventory(['local', 'peer']);
    const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
    const registry = new StepRegistry([fence, unfence, ...allKinds.filter((k) => k.kind === 'command')]);
    const journal = new Journal('r-up', path.join(stateDir, 'runs'));
    const onPeer = step('command', { argv: ['true'] }, { delegateTo: 'peer', name: 'ask the peer' });
    try {
      // Before: unfence left the node marked down ("fenced"), so the step after it could not
      // reach it, and takeover checks excused it although it was up.
      const r = await execute({
        playbook: playbook([step('fence', cmdArgs()), step('unfence', cmdArgs()), onPeer, step('fence', cmdArgs({ action: 'reboot' })), { ...onPeer, id: 'p0.again' }], { hosts: 'local' }),
        inventory, extraVars: {}, registry, pool, runId: 'r-up', journal, redactor: new Redactor(), onEvent: () => {},
      });
      expect(r.exitCode, JSON.stringify(r.failures)).toBe(0);
      expect(readFileSync(psu, 'utf8')).toBe('on\n');
    } finally {
      journal.close();
      await pool.closeAll();
    }
  });

  it('revert of a fence whose apply never ran (crash before apply) converges without changing anything', async () => {
    const inventory = localInventory(['local', 'peer']);
    const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
    try {
      const t = await pool.get('local');
      const { makeStepContext } = await import('../../src/engine/context.js');
      const ctx = makeStepContext({ host: inventory.hosts.get('local')!, transport: t, inventory, pool, vars: {}, force: false, log: () => {} });
      await fence.revert(ctx, cmdArgs(), { power: 'on' });
      await fence.revert(ctx, cmdArgs(), { power: 'on' });
      expect(readFileSync(psu, 'utf8')).toBe('on\n');
    } finally {
      await pool.closeAll();
    }
  });

  it('waits `delay` seconds before acting (two-node race), then fences', async () => {
    const t0 = Date.now();
    const r = await run('fence', cmdArgs({ delay: 0.5 }));
    expect(r.result.exitCode).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500);
    expect(readFileSync(psu, 'utf8')).toBe('off\n');
  });

  it('ipmi without BMC details in args or inventory fails before running anything, naming the vars', async () => {
    const r = await run('fence', { target: 'peer' });
    expect(r.result.exitCode).not.toBe(0);
    expect(r.result.failures.join('\n')).toMatch(/cannot reach the BMC of peer: no address \(inventory var bmc_address\), user \(bmc_user\), password \(bmc_password\)/);
  });

  it('a target missing from the inventory is named', async () => {
    const r = await run('fence', cmdArgs({ target: 'n9' }));
    expect(r.result.failures.join('\n')).toMatch(/target "n9" is not in the inventory/);
  });

  it('journals the fence with the password masked', async () => {
    const r = await run('fence', cmdArgs({ password: 'not-in-journal-123' }));
    expect(r.result.exitCode).toBe(0);
    const raw = readFileSync(r.journalPath, 'utf8');
    expect(raw).not.toContain('not-in-journal-123');
    const intent = readJournal(r.journalPath).find((x) => (x as { t: string }).t === 'intent') as { args: { password: unknown } };
    expect(intent.args.password).toEqual({ $secret: 'password' });
  });
});
