/**
 * `baton check playbooks/nfs-health.yml` on the 2-node lab with n2 powered off through its
 * BMC, as on-call meets it: the answer comes back bounded by the connect timeout (2 s by
 * default), says "n2 unreachable" once instead of once per check, keeps the first line under
 * 200 characters, and exits UNKNOWN (3), or CRITICAL (2) with check_unreachable=critical.
 * While all is well, the first line says who holds the VIP. Root only.
 *
 * The wall time is printed for the record; bench/check.mjs measures it. The test asserts only
 * what a monitoring system depends on: an answer well inside NRPE's default 10 s plugin
 * timeout, past which the monitoring kills the check and the detail is lost.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { baton } from '../helpers/nfs-service.js';

const PB = (name: string) => path.resolve('playbooks', name);

let lab: Lab;
let tmp: string;

const check = (...args: string[]) => baton(['check', '-i', lab.inventoryPath, PB('nfs-health.yml'), ...args], path.join(tmp, 'check-state'));

async function timed<T>(fn: () => Promise<T>): Promise<{ r: T; ms: number }> {
  const t0 = performance.now();
  const r = await fn();
  return { r, ms: performance.now() - t0 };
}

describe('baton check with a node powered off', () => {
  beforeAll(async () => {
    requireRoot();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-check-off-'));
    lab = await startLab({ name: 'outchk', subnet: '198.18.120.0/24' });
    const start = await baton(['run', '--yes', '-i', lab.inventoryPath, PB('nfs-start.yml'), '-e', 'on=n1'], path.join(tmp, 'run-state'));
    expect(start.code, start.stdout + start.stderr).toBe(0);
  });

  afterAll(async () => {
    await lab?.down();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('all well: OK, and the first line names the VIP holder', async () => {
    const r = await check();
    expect(r.code, r.stdout).toBe(0);
    const first = r.stdout.split('\n')[0]!;
    expect(first).toMatch(new RegExp(`^BATON CHECK OK - 8 OK; ${lab.vip.replace(/\./g, '\\.')} held by n1 \\| checks=8 `));
    expect(first.length).toBeLessThan(200);
  });

  it('fence_device with the real fence_ipmilan: monitor answers OK; a typo in options: is a WARNING naming the key', async () => {
    const pb = path.join(tmp, 'fence-health.yml');
    const write = (options: string) =>
      writeFileSync(
        pb,
        `- name: fence devices
  hosts: n1
  steps:
    - name: fence device of n2
      fence_device: { target: n2, provider: fence-agent, agent: fence_ipmilan, timeout: 20, options: { ${options} } }
`,
      );
    write('power_timeout: 5');
    const ok = await baton(['check', '-v', '-i', lab.inventoryPath, pb], path.join(tmp, 'check-state'));
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(/^OK n1 fence device of n2 \[fence_device\]: fence_ipmilan ip=[\d.]+:\d+ answers \(monitor\)/m);
    write('power_timeout: 5, lanpluss: 1');
    const typo = await baton(['check', '-i', lab.inventoryPath, pb], path.join(tmp, 'check-state'));
    expect(typo.code, typo.stdout).toBe(1);
    expect(typo.stdout.split('\n')[0]).toMatch(/^BATON CHECK WARNING - fence device of n2: agent warning: unknown option "lanpluss" ignored \(a typo in options:\?\)/);
    expect(typo.stdout.split('\n')[0]!.length).toBeLessThan(200);
  });

  it('n2 off: UNKNOWN (exit 3) within the bound, one line for n2, first line < 200 characters; critical on request (exit 2)', async () => {
    await lab.power('n2', 'off');
    const prom = path.join(tmp, 'off.prom');
    const { r, ms } = await timed(() => check('--prom', prom));
    console.log(`check with n2 powered off: ${ms.toFixed(0)} ms (exit ${r.code})\n${r.stdout}`);
    expect(r.code, r.stdout).toBe(3);
    const lines = r.stdout.trimEnd().split('\n');
    const first = lines[0]!;
    expect(first.length).toBeLessThan(200);
    expect(first).toMatch(/^BATON CHECK UNKNOWN - n2: unreachable, 3 checks not run; 5 OK; [\d.]+ held by n1 \(could not ask n2\) \| checks=6 critical=0 warning=0 unknown=1 /);
    // One UNKNOWN for the host, not one per check of it.
    expect(lines.filter((l) => /^UNKNOWN /.test(l))).toEqual([expect.stringMatching(/^UNKNOWN n2 reach n2 \[reach\]: unreachable, 3 checks not run: cannot reach n2 at root@[\d.]+:22: timed out while connecting/)]);
    // The fence device of n2 still answers from n1 (its BMC is up): that check ran and is OK.
    expect(r.stdout).toMatch(/'fence device of n2'=0;1;2;0;3/);
    expect(readFileSync(prom, 'utf8')).toMatch(/baton_check_status\{playbook="nfs-health",host="n2",check="reach",name="reach n2"\} 3/);
    expect(ms).toBeLessThan(10_000);

    const crit = await check('-e', 'check_unreachable=critical');
    expect(crit.code, crit.stdout).toBe(2);
    expect(crit.stdout.split('\n')[0]).toMatch(/^BATON CHECK CRITICAL - n2: unreachable, 3 checks not run/);

    // The bound is the operator's: --connect-timeout (or baton_check_connect_timeout) moves it.
    const quick = await timed(() => check('--connect-timeout', '0.5'));
    console.log(`same with --connect-timeout 0.5: ${quick.ms.toFixed(0)} ms`);
    expect(quick.r.code).toBe(3);
  });
});
