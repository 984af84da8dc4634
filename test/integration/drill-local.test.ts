/**
 * `baton drill` on the local transport (no root, no lab): a TCP service on loopback that the
 * drill's playbook stops for good. The lab's drills (test/lab/drill*.test.ts) show services that
 * come back; this one shows the verdict when one does not.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { baton } from '../helpers/nfs-service.js';

let work: string;
let server: ChildProcess | undefined;

beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-drill-local-'));
});
afterEach(() => {
  server?.kill('SIGKILL');
  server = undefined;
  rmSync(work, { recursive: true, force: true });
});

/** A TCP server on 127.0.0.1 (a port of its own); resolves with the port once it listens. */
async function startServer(): Promise<number> {
  const code = "const s=require('net').createServer(c=>c.destroy());s.listen(0,'127.0.0.1',()=>console.log(s.address().port))";
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  server = child;
  writeFileSync(path.join(work, 'server.pid'), String(child.pid));
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (b: Buffer) => resolve(Number(b.toString().trim())));
    child.once('exit', () => reject(new Error('the test server did not start')));
  });
}

function files(step: string): { inv: string; pb: string } {
  const inv = path.join(work, 'inv.yml');
  writeFileSync(inv, 'all:\n  hosts:\n    localhost: { ansible_connection: local }\n');
  const pb = path.join(work, 'pb.yml');
  writeFileSync(pb, `- name: the move\n  hosts: localhost\n  steps:\n${step}`);
  return { inv, pb };
}

describe('baton drill when the service does not come back', () => {
  it('the playbook stops the service for good: the drill fails (exit 1), naming the probe still failing, also with a generous --max-outage; JUnit has a failure', async () => {
    const port = await startServer();
    const { inv, pb } = files(`    - name: stop the service\n      command: [kill, "${server!.pid}"]\n`);
    const junit = path.join(work, 'drill.xml');
    const args = ['-i', inv, pb, '--probe', `tcp://127.0.0.1:${port}`, '--interval', '50', '--warmup', '300ms', '--settle', '1s', '--max-outage', '60s'];
    const r = await baton(['drill', ...args, '--junit', junit], path.join(work, 'state'));
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/tcp:\/\/127\.0\.0\.1:\d+: still failing when probing stopped \(\d+ failed reads in a row, the last [\d.]+ s after the last playbook ended\)/);
    expect(r.stdout + r.stderr).not.toMatch(/drill passed/);
    expect(readFileSync(junit, 'utf8')).toMatch(/<failure message="[^"]*still failing when probing stopped/);
    // The same drill, JSON: its last line is the report.
    const port2 = await startServer();
    const again = await baton(['drill', ...args.map((a) => a.replace(`:${port}`, `:${port2}`)).map((a) => (a === pb ? files(`    - name: stop the service\n      command: [kill, "${server!.pid}"]\n`).pb : a)), '--json'], path.join(work, 'state'));
    expect(again.code, again.stdout + again.stderr).toBe(1);
    const report = JSON.parse(again.stdout.trim().split('\n').pop()!) as { verdict: string; probes: Array<{ notBack?: string }> };
    expect(report.verdict).toBe('fail');
    expect(report.probes[0]!.notBack).toMatch(/still failing/);
  }, 60_000);

  it('a service that stays up: the drill passes (exit 0), nothing said of a probe not back', async () => {
    const port = await startServer();
    const { inv, pb } = files(`    - name: touch a file\n      command: [touch, "${path.join(work, 'moved')}"]\n`);
    const r = await baton(['drill', '-i', inv, pb, '--probe', `tcp://127.0.0.1:${port}`, '--interval', '50', '--warmup', '300ms', '--settle', '1s'], path.join(work, 'state'));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(/still failing|the probe stopped/);
  }, 60_000);
});
