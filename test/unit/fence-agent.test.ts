/**
 * The fence-agent provider against small agent scripts that speak the stdin protocol the way
 * fence-agents' fencing.py does (and the way a broken wrapper does not): exit 2 is "off" only
 * with the `Status: OFF` line; `fence_device` asks `monitor`; a warning on stderr (an option
 * the agent ignored) is shown, with its value hidden. Runs on the local transport, no root.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentWarnings, judgeAgentStatus } from '../../src/facts/power.js';
import { check } from '../../src/engine/check.js';
import { makeStepContext } from '../../src/engine/context.js';
import { defaultRegistry } from '../../src/steps/registry.js';
import { fenceAgentDriver } from '../../src/steps/fence/fence-agent.js';
import { TransportPool } from '../../src/transport/index.js';
import { connectionFor } from '../../src/inventory/connection.js';
import { localInventory, playbook, step } from '../helpers/model.js';

let dir: string;
const inventory = localInventory(['local', 'peer']);

/** An agent script: reads stdin into $dir/NAME.stdin, then runs BODY with $action set. */
function agent(name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\ncat > "${dir}/${name}.stdin"\naction=$(sed -n 's/^action=//p' "${dir}/${name}.stdin")\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

async function withCtx<T>(fn: (ctx: ReturnType<typeof makeStepContext>) => Promise<T>): Promise<T> {
  const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
  try {
    const transport = await pool.get('local');
    return await fn(makeStepContext({ host: inventory.hosts.get('local')!, transport, inventory, pool, vars: {}, force: false, log: () => {} }));
  } finally {
    await pool.closeAll();
  }
}

async function fenceDeviceCheck(agentPath: string, options: Record<string, unknown> = {}) {
  const pool = new TransportPool((h) => connectionFor(inventory.hosts.get(h)!));
  try {
    const pb = playbook([step('fence_device', { target: 'peer', provider: 'fence-agent', agent: agentPath, options: { ip: '198.18.120.9', ...options }, timeout: 5 })], { hosts: 'local' });
    const [r] = await check({ playbook: pb, inventory, extraVars: {}, registry: defaultRegistry(), pool });
    return r!;
  } finally {
    await pool.closeAll();
  }
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'baton-agents-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('status: exit 2 means off only with "Status: OFF"', () => {
  it('judges the exit code together with the printed line', () => {
    expect(judgeAgentStatus(2, 'Status: OFF\n')).toEqual({ state: 'off' });
    expect(judgeAgentStatus(0, 'Status: ON\n')).toEqual({ state: 'on' });
    expect(judgeAgentStatus(2, '')).toMatchObject({ problem: expect.stringMatching(/exited 2 without printing "Status: OFF"/) });
    expect(judgeAgentStatus(2, 'Status: ON\n')).toMatchObject({ problem: expect.stringMatching(/printed "Status: ON"/) });
    expect(judgeAgentStatus(0, 'Status: OFF\n')).toMatchObject({ problem: expect.stringMatching(/exited 0 \(on\) but printed "Status: OFF"/) });
    expect(judgeAgentStatus(1, '')).toEqual({ problem: 'exited 1' });
  });

  it('a real agent answer: off with exit 2 and the line; on with exit 0', async () => {
    const off = agent('agent-off', 'echo "Status: OFF"; exit 2');
    const on = agent('agent-on', 'echo "Status: ON"; exit 0');
    await withCtx(async (ctx) => {
      expect(await fenceAgentDriver(off, { ip: '198.18.120.9' }).status(ctx, 5000)).toBe('off');
      expect(await fenceAgentDriver(on, { ip: '198.18.120.9' }).status(ctx, 5000)).toBe('on');
    });
    expect(readFileSync(`${off}.stdin`, 'utf8')).toBe('ip=198.18.120.9\naction=status\n');
  });

  it('a wrapper with a shell syntax error exits 2 and is NOT taken as off', async () => {
    // `sh` exits 2 on a syntax error, before the real agent could print anything.
    const broken = agent('agent-broken', 'if then fi');
    await withCtx(async (ctx) => {
      await expect(fenceAgentDriver(broken, { ip: '198.18.120.9', password: 'hunter2' }).status(ctx, 5000)).rejects.toThrow(
        /fence agent .*agent-broken \(action=status\) run on local exited 2 without printing "Status: OFF".*Syntax error.*stdin: ip=198\.18\.120\.9 password=\*\*\*\*\*\*\*\* action=status/s,
      );
    });
  });
});

describe('fence_device asks the agents\' monitor action', () => {
  it('OK when monitor exits 0; the agent was asked action=monitor, not status', async () => {
    const a = agent('agent-monitor', '[ "$action" = monitor ] && exit 0; echo "unexpected action $action" >&2; exit 1');
    const r = await fenceDeviceCheck(a);
    expect(r.status, r.message).toBe('OK');
    expect(r.message).toMatch(/agent-monitor ip=198\.18\.120\.9 answers \(monitor\)/);
    expect(readFileSync(`${a}.stdin`, 'utf8')).toMatch(/^action=monitor$/m);
  });

  it('CRITICAL when monitor fails, with the agent\'s last stderr lines', async () => {
    const a = agent('agent-down', 'echo "ERROR:root:Failed: Unable to connect/login to fencing device" >&2; exit 1');
    const r = await fenceDeviceCheck(a);
    expect(r.status).toBe('CRITICAL');
    expect(r.message).toMatch(/the fence device of peer \(.*agent-down ip=198\.18\.120\.9\) does not answer: .*action=monitor.* exited 1: ERROR:root:Failed: Unable to connect\/login to fencing device/);
  });

  it('a warning on stderr ("Ignoring unknown option") is shown as a WARNING, the value hidden', async () => {
    const a = agent(
      'agent-warns',
      `echo "/usr/sbin/fence_x:5: DeprecationWarning: 'pipes' is deprecated" >&2
grep -v '^action=\\|^ip=' "${dir}/agent-warns.stdin" | while read -r l; do echo "WARNING:root:Parse error: Ignoring unknown option '$l'" >&2; done
exit 0`,
    );
    const r = await fenceDeviceCheck(a, { passwrd: 'hunter2' });
    expect(r.status).toBe('WARNING');
    expect(r.message).toBe(`agent warning: unknown option "passwrd" ignored (a typo in options:?); the fence device of peer (${a} ip=198.18.120.9) answers`);
    expect(JSON.stringify(r)).not.toContain('hunter2');
  });

  it('warnings: unknown options by key only, other WARNING lines kept, deprecation noise dropped', () => {
    expect(
      agentWarnings("x:5: DeprecationWarning: 'pipes'\nWARNING:root:Parse error: Ignoring unknown option 'lanpluss=1'\nWARNING:root:Parse error: Ignoring unknown option 'lanpluss=1'\nWARNING:root:Delay 3 s\n"),
    ).toEqual(['unknown option "lanpluss" ignored (a typo in options:?)', 'Delay 3 s']);
    expect(agentWarnings('')).toEqual([]);
  });

  it('a failed fence shows the warnings in its error', async () => {
    const a = agent('agent-fails', `echo "WARNING:root:Parse error: Ignoring unknown option 'ipp=1'" >&2; echo "ERROR:root:Failed: Timed out waiting to power OFF" >&2; exit 1`);
    await withCtx(async (ctx) => {
      await expect(fenceAgentDriver(a, {}).set(ctx, 'off', 5000)).rejects.toThrow(/exited 1: .*Timed out waiting to power OFF; warnings: unknown option "ipp" ignored/);
    });
  });
});
