/**
 * `baton run --diff` in the lab, on the shipped switchover: what `--check --diff` says would
 * change, then what the real run changed, as diffs of the probed state, for the VIP move and the
 * export change on both nodes. Root only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { baton } from '../helpers/nfs-service.js';

const PB = (name: string) => path.resolve('playbooks', name);

let lab: Lab | undefined;
let state: string;

/** A step's line in the line output and the indented lines under it (its diff). */
function block(out: string, host: string, status: string, name: RegExp): string[] {
  const lines = out.split('\n');
  const at = lines.findIndex((l) => new RegExp(`^  ${host}\\s+${status}\\s+`).test(l) && name.test(l));
  if (at < 0) throw new Error(`no "${status}" step matching ${name} on ${host} in:\n${out}`);
  const body: string[] = [];
  for (let i = at + 1; i < lines.length && lines[i]!.startsWith('      '); i++) body.push(lines[i]!.slice(6));
  return body;
}

beforeAll(async () => {
  requireRoot();
  state = mkdtempSync(path.join(os.tmpdir(), 'baton-oncall-diff-'));
  lab = await startLab({ name: 'oncall2', subnet: '198.18.131.0/24', diskMiB: 64 });
  const start = await baton(['run', '--yes', '-i', lab.inventoryPath, PB('nfs-start.yml'), '-e', 'on=n1'], state);
  expect(start.code, start.stdout + start.stderr).toBe(0);
});

afterAll(async () => {
  await lab?.down();
  if (state) rmSync(state, { recursive: true, force: true });
});

describe('--diff on the shipped switchover', () => {
  it('--check --diff: for the VIP and the export, the state now on each node and the commands that would change it', async () => {
    const l = lab!;
    const r = await baton(['run', '--check', '--diff', '-i', l.inventoryPath, PB('nfs-switchover.yml'), '-e', 'from=n1', '-e', 'to=n2'], state);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lower = block(r.stdout, 'n1', 'would-change', /lower the VIP/);
    expect(lower.slice(0, 3)).toEqual(['--- n1 now', ' prefix: 24', ' present: true']);
    expect(lower).toContain('+++ would run on n1');
    expect(lower.some((x) => x.startsWith('+$ ') && x.includes(`ip addr del ${l.vip}/24 dev eth0`))).toBe(true);
    const unexport = block(r.stdout, 'n1', 'would-change', /stop exporting \/srv\/disk1/);
    expect(unexport).toContain(' activePath: /srv/disk1');
    // The takeover steps on n2 are checked before the release ran: n2 holds nothing now.
    const raise = block(r.stdout, 'n2', 'would-change', /raise the VIP/);
    expect(raise.slice(0, 2)).toEqual(['--- n2 now', ' present: false']);
    expect(raise.some((x) => x.startsWith('+$ ') && x.includes(`ip addr add ${l.vip}/24 dev eth0`))).toBe(true);
  });

  it('run --diff: the VIP leaves n1 and appears on n2, the export stops on n1 and starts on n2, as diffs', async () => {
    const l = lab!;
    const r = await baton(['run', '--yes', '--diff', '-i', l.inventoryPath, PB('nfs-switchover.yml'), '-e', 'from=n1', '-e', 'to=n2'], state);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(block(r.stdout, 'n1', 'changed', /lower the VIP/)).toEqual(['--- n1 before', '+++ n1 after', '@@ -1,2 +1,1 @@', '-prefix: 24', '-present: true', '+present: false']);
    expect(block(r.stdout, 'n2', 'changed', /raise the VIP/)).toEqual(['--- n2 before', '+++ n2 after', '@@ -1,1 +1,2 @@', '-present: false', '+prefix: 24', '+present: true']);
    const unexport = block(r.stdout, 'n1', 'changed', /stop exporting \/srv\/disk1/);
    expect(unexport.filter((x) => /^[-+][^-+]/.test(x))).toEqual(['-activePath: /srv/disk1', '+activePath: null']);
    const exp = block(r.stdout, 'n2', 'changed', /export \/srv\/disk1/);
    expect(exp.filter((x) => /^[-+][^-+]/.test(x))).toEqual(['-activePath: null', '+activePath: /srv/disk1']);
    // Context lines say which export it is; the raw JSON of the old --diff is gone.
    expect(exp).toContain(' provider: ganesha');
    expect(r.stdout).not.toMatch(/before: \{/);
  });
});
