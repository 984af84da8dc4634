/**
 * What automation reads from baton, checked the way a consumer would: every `--json` record
 * validated with ajv against the published schemas/events.json; the Nagios first line short and
 * never OK when nothing was checked; JUnit files valid for Jenkins xunit (junit-10.xsd) and the
 * strict Ant-layout schema, with classnames Jenkins does not split. Needs xmllint
 * (scripts/install-test-deps.sh).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import type { CheckResult } from '../../src/engine/check.js';
import type { EngineEvent, StepRef } from '../../src/engine/events.js';
import { Redactor } from '../../src/engine/redact.js';
import { FIRST_LINE_MAX, formatJson, formatNagios, formatProm, invalidReport, makeReport, perfLabel } from '../../src/report/check.js';
import { JsonReporter, stoppedSummaryLine } from '../../src/report/json.js';
import { JunitCollector, classnameFor, renderJunit, renderStoppedJunit } from '../../src/report/junit.js';
import { emptyRecap } from '../../src/engine/events.js';

const schema = JSON.parse(readFileSync(path.resolve('schemas/events.json'), 'utf8'));
const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);

/** The records' validation errors, empty when the record is valid. */
export function schemaErrors(record: unknown): string[] {
  return validate(record) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

const ref = (over: Partial<StepRef> = {}): StepRef => ({
  play: 0, playName: 'move {{ x }}', stepId: 'p0.s0', instance: 'p0.s0', name: 'raise the VIP', kind: 'raise_vip', host: 'nas1.example.com', tags: ['network'], ...over,
});

const everyEvent: EngineEvent[] = [
  { type: 'play-start', play: 0, name: 'move to nas2', hosts: ['nas1.example.com', 'nas2.example.com'] },
  { type: 'step-group-start', play: 0, stepId: 'p0.s0', name: 'raise the VIP', kind: 'raise_vip', hosts: ['nas1.example.com'] },
  { type: 'step-start', step: ref(), at: 1_700_000_000_000 },
  { type: 'step-end', step: ref(), status: 'changed', durationMs: 13.800000000000182, before: { present: false }, after: { present: true }, commands: [['ip', 'addr', 'add']] },
  { type: 'step-end', step: ref({ instance: 'p0.s0[1]', on: 'ctl' }), status: 'failed', durationMs: 2, error: 'exited 1', attempt: 2 },
  { type: 'step-end', step: ref(), status: 'skipped', durationMs: 0, reason: 'when: false' },
  { type: 'step-group-end', play: 0, stepId: 'p0.s0' },
  { type: 'rollback-start', reason: 'a step failed', count: 1 },
  { type: 'revert-start', step: ref() },
  { type: 'revert-end', step: ref(), ok: true, durationMs: 4.25, note: 'as before' },
  { type: 'rollback-end', complete: true },
  { type: 'log', host: 'nas1.example.com', message: '$ true → 0' },
  { type: 'play-end', play: 0 },
];

const res = (over: Partial<CheckResult>): CheckResult => ({
  play: 0, host: 'n1', kind: 'service_running', stepId: 'p0.s0', instance: 'p0.s0', name: 'ganesha', label: 'ganesha', status: 'OK', severity: 'critical', message: 'runs', durationMs: 12, ...over,
});

describe('--json records follow schemas/events.json, version 1', () => {
  it('every engine event and the summary validate; each carries v: 1; durations are rounded', () => {
    const lines: string[] = [];
    const rep = new JsonReporter((l) => lines.push(l));
    for (const e of everyEvent) rep.onEvent(e);
    const recap = new Map([['nas1.example.com', { ...emptyRecap(), changed: 1 }]]);
    rep.finish({ runId: '20261127-abc', mode: 'run', outcome: 'failed-rolled-back', exitCode: 1, recap, failures: ['x'], journalPath: '/j', durationMs: 1234.5678, notes: [] });
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((r) => r.type)).toEqual([...everyEvent.map((e) => e.type), 'summary']);
    for (const r of records) {
      expect(r.v).toBe(1);
      expect(schemaErrors(r), JSON.stringify(r)).toEqual([]);
    }
    expect(records[3]!.durationMs).toBe(13.8);
    expect(records.at(-1)!.durationMs).toBe(1235);
  });

  it('a run that stopped early (invalid input, unreachable, locked) still ends with a summary: outcome and exit code', () => {
    for (const [exitCode, outcome] of [[2, 'invalid-input'], [4, 'unreachable'], [5, 'locked'], [3, 'error']] as const) {
      const r = JSON.parse(stoppedSummaryLine({ mode: 'run', exitCode, message: 'why', durationMs: 12.3, runId: exitCode === 5 ? 'R1' : undefined }));
      expect(r).toMatchObject({ v: 1, type: 'summary', outcome, exitCode, failures: ['why'], runId: exitCode === 5 ? 'R1' : null });
      expect(schemaErrors(r)).toEqual([]);
    }
  });

  it('the check document validates, also for invalid input; a record of another shape does not', () => {
    const ok = JSON.parse(formatJson(makeReport('h.yml', [res({ observed: { pids: [1] } }), res({ host: 'n2', status: 'UNKNOWN', kind: 'reach', name: 'reach n2' })], 50.123, 1)));
    expect(ok).toMatchObject({ v: 1, type: 'check', status: 'UNKNOWN', exitCode: 3 });
    expect(schemaErrors(ok)).toEqual([]);
    const bad = JSON.parse(formatJson(invalidReport('h.yml', 'invalid input', 'h.yml:1:1: no', 3, 1)));
    expect(bad).toMatchObject({ v: 1, status: 'UNKNOWN', exitCode: 3, checks: [] });
    expect(schemaErrors(bad)).toEqual([]);
    // The schema is not a blank check: wrong version, unknown type, missing fields fail.
    expect(schemaErrors({ ...ok, v: 2 })).not.toEqual([]);
    expect(schemaErrors({ v: 1, type: 'summary', outcome: 'x' })).not.toEqual([]);
    expect(schemaErrors({ v: 1, type: 'step-end', time: new Date().toISOString(), step: ref(), status: 'great', durationMs: 1 })).not.toEqual([]);
  });
});

describe('baton check: no false success', () => {
  it('no check selected is UNKNOWN (exit 3) and says by what', () => {
    const rep = makeReport('h.yml', [], 5, 1, '--limit "typo"');
    expect(rep.exitCode).toBe(3);
    expect(formatNagios(rep).split('\n')[0]).toMatch(/^BATON CHECK UNKNOWN - no check selected by --limit "typo": nothing was checked \| checks=0 /);
  });

  it('the Prometheus file of an invalid run says UNKNOWN overall and keeps no per-check series', () => {
    const text = formatProm(invalidReport('/p/nfs-health.yml', 'invalid input', undefined, 3, 1_700_000_000));
    expect(text).toContain('baton_check_overall_status{playbook="nfs-health"} 3\n');
    expect(text).not.toContain('baton_check_status{');
  });

  it('durations carry no float noise', () => {
    const text = formatProm(makeReport('/p/h.yml', [res({ durationMs: 13.8 })], 1000 * 0.1 + 1000 * 0.2, 1));
    expect(text).toContain(' 0.0138\n');
    expect(text).toContain('baton_check_duration_seconds{playbook="h"} 0.3\n');
    expect(text).not.toMatch(/\d{8,}/);
  });

  it('first line under 200 characters with many long problems; every problem still listed below it', () => {
    const many = Array.from({ length: 12 }, (_, i) =>
      res({ host: `node${i}.storage.example.com`, status: 'CRITICAL', stepId: 'p0.s1', label: 'fence device of the peer', message: `the fence device of node${i} (fence_ipmilan ip=198.18.0.${i}) does not answer: Connection timed out after 5 s` }),
    );
    const out = formatNagios(makeReport('h.yml', [...many, res({})], 1, 0));
    const lines = out.trimEnd().split('\n');
    expect(lines[0]!.length).toBeLessThan(200);
    expect(lines[0]!.length).toBeLessThanOrEqual(FIRST_LINE_MAX);
    // As many problems as fit at 40+ characters each, the rest counted.
    expect(lines[0]).toMatch(/^BATON CHECK CRITICAL - fence device of the peer@node0\.storage\.example\.c…; fence device of the peer@node1\.storage\.example\.c…; \+10 more; 1 OK \| checks=13 critical=12 /);
    for (let i = 0; i < 12; i++) expect(lines.some((l) => l.startsWith(`CRITICAL node${i}.storage.example.com `))).toBe(true);
    // One enormous message is cut, not allowed to push the perfdata off the line.
    const huge = formatNagios(makeReport('h.yml', [res({ status: 'CRITICAL', message: 'x'.repeat(500) })], 1, 0)).split('\n')[0]!;
    expect(huge.length).toBeLessThan(200);
    expect(huge).toMatch(/^BATON CHECK CRITICAL - ganesha: x+… \| checks=1 critical=1 /);
    // Two problems that do not fit whole share the room; a short one keeps its length.
    const two = formatNagios(makeReport('h.yml', [res({ status: 'CRITICAL', label: 'nfs_null', stepId: 'a', message: 'y'.repeat(300) }), res({ status: 'CRITICAL', host: 'n1', stepId: 'b', message: 'no process named ganesha.nfsd' })], 1, 0)).split('\n')[0]!;
    expect(two.length).toBeLessThan(200);
    expect(two).toMatch(/^BATON CHECK CRITICAL - nfs_null: y+…; ganesha: no process named ganesha\.nfsd \| /);
  });

  it('an unreachable host is one UNKNOWN line naming it, not one per check', () => {
    const out = formatNagios(makeReport('h.yml', [res({ host: 'n2', kind: 'reach', label: 'reach', stepId: 'reach', name: 'reach n2', status: 'UNKNOWN', message: 'unreachable, 3 checks not run: cannot reach n2: timed out' }), res({})], 1, 0));
    expect(out.split('\n')[0]).toBe('BATON CHECK UNKNOWN - n2: unreachable, 3 checks not run: cannot reach n2: timed out; 1 OK | checks=2 critical=0 warning=0 unknown=1 duration=0.001s');
  });

  it('perfdata labels: quotes doubled, no = or |', () => {
    expect(perfLabel("it's a=b|c")).toBe("'it''s a_b c'");
  });
});

describe('JUnit for Jenkins xunit and GitLab', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-junit-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  const xmllint = (file: string, xsd: string) => {
    if (!existsSync('/usr/bin/xmllint')) throw new Error('/usr/bin/xmllint is missing: run scripts/install-test-deps.sh (npm test does, as root)');
    try {
      execFileSync('xmllint', ['--noout', '--schema', path.resolve('test/fixtures', xsd), file], { stdio: 'pipe' });
      return 'valid';
    } catch (e) {
      return String((e as { stderr?: Buffer }).stderr ?? e);
    }
  };

  it('dotted host names are not split into package and class: dots become _', () => {
    expect(classnameFor('move to nas2.example.com/nas1.example.com')).toBe('move to nas2_example_com/nas1_example_com');
    const j = new JunitCollector({ redactor: new Redactor(), now: () => 0 });
    for (const e of everyEvent) j.onEvent(e);
    const xml = renderJunit(j.suites, 'run');
    const classnames = [...xml.matchAll(/classname="([^"]*)"/g)].map((m) => m[1]!);
    expect(classnames.length).toBeGreaterThan(0);
    for (const c of classnames) expect(c).not.toContain('.');
    expect(classnames).toContain('move to nas2/nas1_example_com');
  });

  it('(classname, name) pairs are unique, since GitLab keeps only the first of each', () => {
    const j = new JunitCollector({ redactor: new Redactor(), now: () => 0 });
    for (const e of everyEvent) j.onEvent(e);
    const xml = renderJunit(j.suites, 'run');
    const pairs = [...xml.matchAll(/classname="([^"]*)" name="([^"]*)"/g)].map((m) => `${m[1]}|${m[2]}`);
    expect(new Set(pairs).size).toBe(pairs.length);
    expect(pairs).toContain('move to nas2/nas1_example_com|raise the VIP #2');
  });

  it('a run, and a run that stopped before any step, validate against junit-10.xsd and junit.xsd', () => {
    const j = new JunitCollector({ redactor: new Redactor(), now: () => 0 });
    for (const e of everyEvent) j.onEvent(e);
    const run = path.join(tmp, 'run.xml');
    writeFileSync(run, renderJunit(j.suites, 'run'));
    const stopped = path.join(tmp, 'stopped.xml');
    writeFileSync(stopped, renderStoppedJunit('run pb.yml', 'pb.yml:3:5: unknown step kind "mountt"', 'ValidationError', 2));
    for (const file of [run, stopped]) {
      expect(xmllint(file, 'junit-10.xsd')).toBe('valid');
      expect(xmllint(file, 'junit.xsd')).toBe('valid');
    }
    expect(readFileSync(stopped, 'utf8')).toMatch(/<error message="pb\.yml:3:5: unknown step kind &quot;mountt&quot;" type="ValidationError">/);
  });

  it('junit-10.xsd is not a blank check: it refuses skipped= on <testsuites>, as Jenkins does', () => {
    const bad = path.join(tmp, 'bad.xml');
    writeFileSync(bad, '<?xml version="1.0"?>\n<testsuites tests="0" failures="0" errors="0" skipped="0"></testsuites>\n');
    expect(xmllint(bad, 'junit-10.xsd')).toMatch(/skipped.*not allowed/);
  });
});
