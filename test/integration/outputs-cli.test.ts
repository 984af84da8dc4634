/**
 * The CLI as cron and CI call it, on the local transport (no root, no SSH): `--json` always
 * ends with a summary record valid against schemas/events.json, whatever the exit code;
 * `plan --json` is one JSON document; `--junit` is written for invalid input too; `check` never
 * reports OK for nothing checked and always rewrites its --prom file.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { baton as batonIn } from '../helpers/nfs-service.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { validateJunit } from '../helpers/reports.js';

const CLI = path.resolve('dist/cli/main.js');
const validate = new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(path.resolve('schemas/events.json'), 'utf8')));

let work: string;
let inv: string;
let pb: string;

/** The real CLI, non-interactive, with this test's state dir. */
const baton = (args: string[]) => batonIn(args, path.join(work, 'state'));

/** Every stdout line parsed and validated; returns the records. */
function records(stdout: string): Array<Record<string, unknown>> {
  const lines = stdout.trimEnd().split('\n');
  return lines.map((l) => {
    const r = JSON.parse(l) as Record<string, unknown>;
    expect(validate(r), `${l}\n${JSON.stringify(validate.errors)}`).toBe(true);
    expect(r.v).toBe(1);
    return r;
  });
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-outputs-'));
  inv = path.join(work, 'inv.yml');
  writeFileSync(inv, `all:\n  hosts:\n    localhost:\n      ansible_connection: local\n`);
  pb = path.join(work, 'pb.yml');
  writeFileSync(
    pb,
    `- name: local
  hosts: localhost
  steps:
    - name: make a
      command: { argv: [touch, "${work}/a"], creates: "${work}/a", revert: [rm, -f, "${work}/a"] }
      tags: [make]
    - name: tmp has room
      disk_free: { path: /tmp, min_free_percent: 1 }
      tags: [storage]
`,
  );
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('run --json', () => {
  it('a run that succeeds: events, then the summary last (exit 0, run id)', async () => {
    const r = await baton(['run', '--yes', '--json', '-i', inv, pb]);
    expect(r.code, r.stderr).toBe(0);
    const recs = records(r.stdout);
    expect(recs.at(-1)).toMatchObject({ type: 'summary', outcome: 'succeeded', exitCode: 0, runId: expect.any(String) });
    expect(recs.filter((x) => x.type === 'summary')).toHaveLength(1);
  });

  it('invalid input (exit 2): stdout is one summary record, and the --junit file holds the error', async () => {
    const junit = path.join(work, 'invalid.xml');
    writeFileSync(junit, '<testsuites><testsuite name="old" tests="0" failures="0" errors="0"/></testsuites>');
    const bad = path.join(work, 'bad.yml');
    writeFileSync(bad, `- name: bad\n  hosts: localhost\n  steps:\n    - mountt: { path: /x }\n`);
    const r = await baton(['run', '--yes', '--json', '--junit', junit, '-i', inv, bad]);
    expect(r.code).toBe(2);
    const recs = records(r.stdout);
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ type: 'summary', outcome: 'invalid-input', exitCode: 2, runId: null });
    expect(String((recs[0]!.failures as string[])[0])).toMatch(/bad\.yml:4:7: .*mountt/);
    const v = await validateJunit(junit);
    expect(v.ok, v.output).toBe(true);
    expect(readFileSync(junit, 'utf8')).toMatch(/<error message="[^"]*mountt[^"]*" type="ValidationError">/);
  });

  it('no --yes without a terminal and a usage error (exit 2), an unreachable host (exit 4): each ends with its summary', async () => {
    const noYes = await baton(['run', '--json', '-i', inv, pb]);
    expect(noYes.code).toBe(2);
    expect(records(noYes.stdout).at(-1)).toMatchObject({ type: 'summary', outcome: 'invalid-input', exitCode: 2 });
    const usage = await baton(['run', '--json', '--bogus', '-i', inv, pb]);
    expect(usage.code).toBe(2);
    expect(records(usage.stdout)).toEqual([expect.objectContaining({ type: 'summary', outcome: 'invalid-input', exitCode: 2, failures: ["error: unknown option '--bogus'"] })]);

    const far = path.join(work, 'far.yml');
    writeFileSync(far, `all:\n  hosts:\n    far.example.com:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n      ansible_user: nobody\n`);
    const farPb = path.join(work, 'far-pb.yml');
    writeFileSync(farPb, `- name: far\n  hosts: all\n  steps:\n    - command: ["true"]\n`);
    const junit = path.join(work, 'far.xml');
    const r = await baton(['run', '--yes', '--json', '--junit', junit, '-i', far, farPb]);
    expect(r.code, r.stderr).toBe(4);
    expect(records(r.stdout).at(-1)).toMatchObject({ type: 'summary', outcome: 'unreachable', exitCode: 4 });
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/cannot reach 1 host/);
    expect(xml.match(/<testcase /g)).toHaveLength(1);
  });
});

describe('plan --json', () => {
  it('one JSON document: plays, steps per host, the commands', async () => {
    const r = await baton(['plan', '--json', '-i', inv, pb]);
    expect(r.code, r.stderr).toBe(0);
    const recs = records(r.stdout);
    expect(recs).toHaveLength(1);
    const doc = recs[0] as { type: string; plays: Array<{ name: string; hosts: string[]; steps: Array<{ host: string; name: string; commands: string[][] }> }> };
    expect(doc.type).toBe('plan');
    expect(doc.plays[0]!.hosts).toEqual(['localhost']);
    expect(doc.plays[0]!.steps.map((s) => [s.host, s.name])).toEqual([
      ['localhost', 'make a'],
      ['localhost', 'tmp has room'],
    ]);
    expect(doc.plays[0]!.steps[0]!.commands).toEqual([['touch', `${work}/a`]]);
  });
});

describe('check: no false success', () => {
  it('-l typo and -t typo: UNKNOWN, exit 3, in text, JSON and the Prometheus file', async () => {
    const prom = path.join(work, 'c.prom');
    const ok = await baton(['check', '-i', inv, pb, '-t', 'storage', '--prom', prom]);
    expect(ok.code, ok.stdout).toBe(0);
    expect(readFileSync(prom, 'utf8')).toContain('baton_check_overall_status{playbook="pb"} 0');

    const l = await baton(['check', '-i', inv, pb, '-l', 'typo', '--prom', prom]);
    expect(l.code).toBe(3);
    expect(l.stdout.split('\n')[0]).toMatch(/^BATON CHECK UNKNOWN - no check selected by --limit "typo"/);
    expect(readFileSync(prom, 'utf8')).toContain('baton_check_overall_status{playbook="pb"} 3');

    const t = await baton(['check', '--json', '-i', inv, pb, '-t', 'typo']);
    expect(t.code).toBe(3);
    expect(records(t.stdout)[0]).toMatchObject({ type: 'check', status: 'UNKNOWN', exitCode: 3, checks: [] });
  });

  it('a CRITICAL whose --prom file cannot be written stays CRITICAL (exit 2, first line), the write failure said on stderr; an OK becomes UNKNOWN', async () => {
    const down = path.join(work, 'null-down.yml');
    writeFileSync(down, `- name: t\n  hosts: localhost\n  steps:\n    - name: the NFS server answers\n      nfs_null: { address: 127.0.0.1, port: 1, timeout: 1 }\n`);
    const nowhere = path.join(work, 'no-such-dir', 'c.prom');
    const critical = await baton(['check', '-i', inv, down, '--prom', nowhere]);
    expect(critical.code, critical.stdout + critical.stderr).toBe(2);
    expect(critical.stdout.split('\n')[0]).toMatch(/^BATON CHECK CRITICAL - /);
    expect(critical.stderr).toMatch(/could not write --prom .*no-such-dir/);
    const json = await baton(['check', '--json', '-i', inv, down, '--prom', nowhere]);
    expect(records(json.stdout)[0]).toMatchObject({ status: 'CRITICAL', exitCode: 2 });
    const ok = await baton(['check', '-i', inv, pb, '-t', 'storage', '--prom', nowhere]);
    expect(ok.code).toBe(3);
    expect(ok.stdout.split('\n')[0]).toMatch(/^BATON CHECK UNKNOWN - could not write/);
  });

  it('invalid input replaces the previous Prometheus file with UNKNOWN: an old OK never lingers', async () => {
    const prom = path.join(work, 'old.prom');
    expect((await baton(['check', '-i', inv, pb, '-t', 'storage', '--prom', prom])).code).toBe(0);
    expect(readFileSync(prom, 'utf8')).toMatch(/baton_check_status\{[^}]*\} 0/);
    const r = await baton(['check', '-i', inv, path.join(work, 'missing.yml'), '--prom', prom]);
    expect(r.code).toBe(3);
    const text = readFileSync(prom, 'utf8');
    expect(text).toContain('baton_check_overall_status{playbook="missing"} 3');
    expect(text).not.toMatch(/baton_check_status\{/);
    const bad = await baton(['check', '-i', inv, pb, '--connect-timeout', 'soon', '--prom', prom]);
    expect(bad.code).toBe(3);
    expect(bad.stdout).toMatch(/--connect-timeout must be a number of seconds/);

    // A usage error is invalid input too: UNKNOWN on stdout and in the file, exit 3 (not 2, CRITICAL).
    writeFileSync(prom, 'baton_check_overall_status{playbook="pb"} 0\n');
    const usage = await baton(['check', '-i', inv, pb, '--prom', prom, '--bogus']);
    expect(usage.code).toBe(3);
    expect(usage.stdout).toMatch(/^BATON CHECK UNKNOWN - invalid usage; nothing was checked: unknown option '--bogus'/);
    expect(readFileSync(prom, 'utf8')).toContain('baton_check_overall_status{playbook="pb"} 3');
  });
});
