/**
 * fence / unfence against the lab's real BMCs (ipmi_sim powering namespace nodes), driven the
 * way users drive them: a playbook, the lab's inventory and the built CLI. The step runs on n2
 * and reaches n1's BMC over the lab network (the BMC listens on the controller's lab address).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { runRaw } from '../../src/lab/exec.js';

const CLI = path.resolve('dist/cli/main.js');
let lab: Lab;
let work: string;
let stateDir: string;
let n1Password: string;

interface Summary {
  runId: string;
  exitCode: number;
  outcome: string;
  recap: Record<string, { ok: number; changed: number; failed: number }>;
  failures: string[];
}

function baton(args: string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile('node', [CLI, ...args], { env: { ...process.env, BATON_STATE_DIR: stateDir, CI: 'true' }, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

function summaryOf(stdout: string): Summary {
  const last = stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string }).filter((e) => e.type === 'summary').pop();
  if (!last) throw new Error(`no summary line in baton's output:\n${stdout}`);
  return last as unknown as Summary;
}

let seq = 0;
function playbook(steps: string): string {
  const file = path.join(work, `play-${++seq}.yml`);
  writeFileSync(file, `- name: fence test ${seq}\n  hosts: n2\n  steps:\n${steps}`);
  return file;
}

async function runPlay(steps: string, timeoutMs?: number) {
  const r = await baton(['run', '--yes', '--json', '-i', lab.inventoryPath, playbook(steps)], timeoutMs);
  return { ...r, summary: summaryOf(r.stdout) };
}

async function bmcStatus(node: string): Promise<string> {
  return (await runRaw(lab.ipmitoolArgv(node, ['chassis', 'power', 'status']), { timeoutMs: 20_000 })).stdout.trim();
}

/** Every file baton wrote in its state dir (journals, locks), read whole. */
function stateFiles(dir = stateDir): string {
  let all = '';
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    all += statSync(p).isDirectory() ? stateFiles(p) : readFileSync(p, 'utf8');
  }
  return all;
}

async function sshAnswers(node: string): Promise<boolean> {
  return (await lab.sshExec(node, ['true'], { timeoutMs: 10_000 })).code === 0;
}

beforeAll(async () => {
  requireRoot();
  if (!existsSync(CLI)) throw new Error('dist/ is missing: build with `npx tsc -p .` before the lab tests');
  lab = await startLab({ name: 'fencesteps', subnet: '198.18.60.0/24', disks: 1 });
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-fence-lab-'));
  n1Password = lab.node('n1').bmc.password;
});

afterAll(async () => {
  try {
    await lab?.down();
  } finally {
    if (work) rmSync(work, { recursive: true, force: true });
  }
});

beforeEach(async () => {
  stateDir = mkdtempSync(path.join(work, 'state-'));
  // Every test starts from both nodes on and answering.
  if (!/is on/.test(await bmcStatus('n1'))) await lab.power('n1', 'on');
  expect(await lab.waitSsh('n1')).toBe(true);
});

describe('fence / unfence in the lab', () => {
  it('n2 reaches n1\'s BMC over the lab network', async () => {
    const b = lab.node('n1').bmc;
    const out = await lab.sshOk('n2', ['ipmitool', '-I', 'lanplus', '-C', '3', '-H', b.address, '-p', String(b.port), '-U', b.user, '-P', b.password, 'chassis', 'power', 'status']);
    expect(out).toMatch(/Chassis Power is on/);
  });

  it('ipmi: fences n1 from n2 (off, confirmed), a second run changes nothing, undo powers it back on; the password is nowhere', async () => {
    const first = await runPlay('    - fence: { target: n1, timeout: 30 }\n');
    expect(first.code, first.stderr + first.stdout).toBe(0);
    expect(first.summary.recap.n2).toMatchObject({ changed: 1, failed: 0 });
    expect(await bmcStatus('n1')).toMatch(/Chassis Power is off/);
    expect(await sshAnswers('n1')).toBe(false);
    expect(await sshAnswers('n2')).toBe(true);

    const second = await runPlay('    - fence: { target: n1, timeout: 30 }\n');
    expect(second.code).toBe(0);
    expect(second.summary.recap.n2).toMatchObject({ changed: 0, ok: 1 });

    const undo = await baton(['undo', '--yes', '--json', '-i', lab.inventoryPath, first.summary.runId]);
    expect(undo.code, undo.stderr + undo.stdout).toBe(0);
    expect(await bmcStatus('n1')).toMatch(/Chassis Power is on/);
    expect(await lab.waitSsh('n1')).toBe(true);
    expect(await sshAnswers('n1')).toBe(true);

    for (const text of [first.stdout, first.stderr, second.stdout, second.stderr, undo.stdout, undo.stderr, stateFiles()]) {
      expect(text).not.toContain(n1Password);
    }
  });

  it('ipmi with the password as a step argument: masked in the journal and output', async () => {
    const r = await runPlay(`    - fence: { target: n1, password: "${n1Password}", timeout: 30 }\n`);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(await bmcStatus('n1')).toMatch(/off/);
    const journal = stateFiles();
    expect(journal).toContain('"$secret":"password"');
    for (const text of [r.stdout, r.stderr, journal]) expect(text).not.toContain(n1Password);
  });

  it('fence-agent: the real fence_ipmilan fences n1; a later failure rolls the fence back (n1 on, SSH answers)', async () => {
    const steps = '    - fence: { target: n1, provider: fence-agent, agent: fence_ipmilan, timeout: 40 }\n';
    const first = await runPlay(steps);
    expect(first.code, first.stderr + first.stdout).toBe(0);
    expect(first.summary.recap.n2).toMatchObject({ changed: 1 });
    expect(await bmcStatus('n1')).toMatch(/Chassis Power is off/);
    expect(await sshAnswers('n1')).toBe(false);
    const again = await runPlay(steps);
    expect(again.summary.recap.n2).toMatchObject({ changed: 0, ok: 1 });

    await lab.power('n1', 'on');
    const rolled = await runPlay(`${steps}    - command: [sh, -c, "exit 3"]\n`);
    expect(rolled.code).toBe(1);
    expect(rolled.summary.outcome).toBe('failed-rolled-back');
    expect(await bmcStatus('n1')).toMatch(/Chassis Power is on/);
    expect(await lab.waitSsh('n1')).toBe(true);
    for (const text of [first.stdout, first.stderr, rolled.stdout, rolled.stderr, stateFiles()]) expect(text).not.toContain(n1Password);
  });

  it('a BMC that does not answer (wrong port): fails with a clear error within its timeout, n1 untouched', async () => {
    const r = await runPlay('    - fence: { target: n1, port: 20699, timeout: 6 }\n');
    expect(r.code).not.toBe(0);
    expect(r.summary.recap.n2).toMatchObject({ changed: 0, failed: 1 });
    const why = r.summary.failures.join('\n');
    expect(why).toMatch(/BMC 198\.18\.60\.1:20699 .*did not answer .*ipmitool.* run on n2/s);
    expect(r.ms).toBeLessThan(6_000 + 5_000);
    expect(await bmcStatus('n1')).toMatch(/is on/);
    expect(await sshAnswers('n1')).toBe(true);
    expect(r.stdout + r.stderr).not.toContain(n1Password);
  });

  it('fence-agent against a BMC that does not answer fails, never reports success', async () => {
    const r = await runPlay('    - fence: { target: n1, provider: fence-agent, agent: fence_ipmilan, port: 20699, timeout: 8, options: { power_timeout: 3, login_timeout: 2, retry_on: 1 } }\n');
    expect(r.code).not.toBe(0);
    expect(r.summary.recap.n2).toMatchObject({ changed: 0, failed: 1 });
    expect(r.summary.failures.join('\n')).toMatch(/fence_ipmilan \(action=status\) run on n2/);
    expect(r.summary.failures.join('\n')).not.toContain(n1Password);
    expect(await sshAnswers('n1')).toBe(true);
  });

  it('ssh (self-fence): n1 powers itself off from inside; it stops answering and its BMC reads off', async () => {
    const steps = '    - fence: { target: n1, provider: ssh, command: [systemctl, poweroff, --force, --force], timeout: 20 }\n';
    const r = await runPlay(steps);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.summary.recap.n2).toMatchObject({ changed: 1 });
    expect(await sshAnswers('n1')).toBe(false);
    expect(await bmcStatus('n1')).toMatch(/is off/);
    expect(await sshAnswers('n2')).toBe(true);
    // Once it is down, nothing this provider can read tells "off" from "cut off by a partition":
    // a second fence is not confirmed (before, it was "ok" without sending anything, and the
    // engine excused an unreachable node as fenced).
    const again = await runPlay(steps);
    expect(again.code).not.toBe(0);
    expect(again.summary.recap.n2).toMatchObject({ changed: 0, failed: 1 });
    expect(again.summary.failures.join('\n')).toMatch(/n1 cannot be reached over SSH .*partition/);
  });

  it('unfence powers n1 on through its BMC, then changes nothing; undo powers it off again', async () => {
    await lab.power('n1', 'off');
    const first = await runPlay('    - unfence: { target: n1, timeout: 30 }\n');
    expect(first.code, first.stderr + first.stdout).toBe(0);
    expect(first.summary.recap.n2).toMatchObject({ changed: 1 });
    expect(await bmcStatus('n1')).toMatch(/is on/);
    expect(await lab.waitSsh('n1')).toBe(true);
    const again = await runPlay('    - unfence: { target: n1, timeout: 30 }\n');
    expect(again.summary.recap.n2).toMatchObject({ changed: 0, ok: 1 });
    const undo = await baton(['undo', '--yes', '--json', '-i', lab.inventoryPath, first.summary.runId]);
    expect(undo.code, undo.stderr + undo.stdout).toBe(0);
    expect(await bmcStatus('n1')).toMatch(/is off/);
  });
});
