/**
 * `--junit FILE`: JUnit XML in the Ant/Jenkins shape CI servers read (GitLab, Jenkins, GitHub
 * test-report actions): `<testsuites>` → `<testsuite>` → `<testcase>` with `<failure>`,
 * `<error>` or `<skipped>`. Built from engine events, so `run` and `drill` report the same way.
 */
import os from 'node:os';
import type { EngineEvent, StepRef } from '../engine/events.js';
import type { Redactor } from '../engine/redact.js';
import { escapeAttr, escapeText } from './xml.js';
import { writeFileAtomic } from '../util/write-atomic.js';

export interface JunitCase {
  /** `play/host`: CI servers group test cases by it (dots are written as `_`, see classnameFor). */
  classname: string;
  name: string;
  timeMs: number;
  failure?: { message: string; type?: string; body?: string };
  /** A problem outside the step itself (host unreachable, lock held): not a test that failed. */
  error?: { message: string; type?: string; body?: string };
  skipped?: string;
  systemOut?: string;
}

export interface JunitSuite {
  name: string;
  /** ms since the epoch. */
  timestamp: number;
  cases: JunitCase[];
  properties?: Record<string, string | number>;
  /** Wall time of the suite; the sum of its cases when absent. */
  timeMs?: number;
}

const seconds = (ms: number) => (Math.max(0, ms) / 1000).toFixed(3);

/** ISO 8601 without zone designator or fraction, as the Ant schema's `timestamp` wants. */
const antTimestamp = (ms: number) => new Date(ms).toISOString().slice(0, 19);

function detail(tag: 'failure' | 'error', d: { message: string; type?: string; body?: string }): string {
  const type = d.type ? ` type="${escapeAttr(d.type)}"` : '';
  return `      <${tag} message="${escapeAttr(d.message.split('\n')[0] ?? '')}"${type}>${escapeText(d.body ?? d.message)}</${tag}>\n`;
}

/**
 * Jenkins' JUnit reader splits `classname` at its last dot into package and class: a host
 * `nas1.example.com` would show as class `com` in package `…/nas1.example`, and an address
 * `198.18.0.1` as class `1`. baton's classnames are `play/host`, never Java names, so every
 * dot is written as `_` (`nas1_example_com`): Jenkins shows the whole name as one class, and
 * GitLab, which shows classname as the suite column, shows the same text.
 */
export function classnameFor(s: string): string {
  return s.replace(/\./g, '_');
}

/**
 * GitLab keeps only the first test case of each (classname, name) pair: two loop items of one
 * unnamed step, or a step retried in one file, would hide each other. Later ones get ` #2`, ….
 */
function uniqueNames(suites: JunitSuite[]): Map<JunitCase, string> {
  const seen = new Map<string, number>();
  const names = new Map<JunitCase, string>();
  for (const s of suites) {
    for (const c of s.cases) {
      const key = `${classnameFor(c.classname)}\u0000${c.name}`;
      const n = (seen.get(key) ?? 0) + 1;
      seen.set(key, n);
      names.set(c, n > 1 ? `${c.name} #${n}` : c.name);
    }
  }
  return names;
}

/**
 * The file. Valid against Jenkins xUnit's junit-10.xsd (which allows no `skipped` on
 * `<testsuites>`: skips are counted per suite) and against the stricter Ant-layout schema in
 * test/fixtures/junit.xsd; (classname, name) pairs are unique, as GitLab needs.
 */
export function renderJunit(suites: JunitSuite[], name = 'baton'): string {
  let tests = 0;
  let failures = 0;
  let errors = 0;
  let totalMs = 0;
  const body: string[] = [];
  const names = uniqueNames(suites);
  suites.forEach((s, id) => {
    const f = s.cases.filter((c) => c.failure).length;
    const e = s.cases.filter((c) => c.error).length;
    const k = s.cases.filter((c) => c.skipped !== undefined).length;
    const ms = s.timeMs ?? s.cases.reduce((n, c) => n + c.timeMs, 0);
    tests += s.cases.length;
    failures += f;
    errors += e;
    totalMs += ms;
    const out: string[] = [];
    out.push(
      `  <testsuite name="${escapeAttr(s.name)}" id="${id}" package="baton" hostname="${escapeAttr(os.hostname())}" timestamp="${antTimestamp(s.timestamp)}" ` +
        `tests="${s.cases.length}" failures="${f}" errors="${e}" skipped="${k}" time="${seconds(ms)}">\n`,
    );
    const props = Object.entries(s.properties ?? {});
    if (props.length) {
      out.push('    <properties>\n');
      for (const [k2, v] of props) out.push(`      <property name="${escapeAttr(k2)}" value="${escapeAttr(String(v))}"/>\n`);
      out.push('    </properties>\n');
    }
    for (const c of s.cases) {
      const open = `    <testcase classname="${escapeAttr(classnameFor(c.classname))}" name="${escapeAttr(names.get(c) ?? c.name)}" time="${seconds(c.timeMs)}"`;
      const inner: string[] = [];
      if (c.skipped !== undefined) inner.push(c.skipped ? `      <skipped message="${escapeAttr(c.skipped)}"/>\n` : '      <skipped/>\n');
      if (c.failure) inner.push(detail('failure', c.failure));
      if (c.error) inner.push(detail('error', c.error));
      if (c.systemOut) inner.push(`      <system-out>${escapeText(c.systemOut)}</system-out>\n`);
      out.push(inner.length ? `${open}>\n${inner.join('')}    </testcase>\n` : `${open}/>\n`);
    }
    out.push('  </testsuite>\n');
    body.push(out.join(''));
  });
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<testsuites name="${escapeAttr(name)}" tests="${tests}" failures="${failures}" errors="${errors}" time="${seconds(totalMs)}">\n` +
    body.join('') +
    '</testsuites>\n'
  );
}

export function writeJunit(file: string, suites: JunitSuite[], name?: string): void {
  writeFileAtomic(file, renderJunit(suites, name));
}

/**
 * The file of a run that stopped before any step (invalid input, a host unreachable, a lock
 * held): one suite with one test case in error, so a CI server shows why instead of "no tests"
 * or, worse, the previous run's file.
 */
export function renderStoppedJunit(suiteName: string, message: string, type: string, exitCode: number, now = Date.now()): string {
  return renderJunit(
    [
      {
        name: suiteName,
        timestamp: now,
        properties: { exit_code: exitCode },
        cases: [{ classname: suiteName, name: 'run', timeMs: 0, error: { message, type } }],
      },
    ],
    suiteName,
  );
}

export interface JunitCollectorOptions {
  redactor: Redactor;
  /** Put every play into one suite of this name (a drill: one suite per playbook); default one suite per play. */
  suiteName?: string;
  now?: () => number;
}

/**
 * Engine events → test cases: one per step instance and host (`classname` = play/host), and one
 * per revert during a rollback (`revert: NAME`), failing when the revert failed.
 */
export class JunitCollector {
  readonly suites: JunitSuite[] = [];
  private readonly byPlay = new Map<number, JunitSuite>();
  private readonly revertStarts = new Map<string, number>();
  /**
   * Play titles as play-start renders them: a StepRef's playName is the unrendered template
   * (`release the NFS service on {{ from }}`), see the engine.
   */
  private readonly titles = new Map<number, string>();
  private readonly now: () => number;

  constructor(private readonly o: JunitCollectorOptions) {
    this.now = o.now ?? Date.now;
  }

  private suiteFor(play: number, playName: string): JunitSuite {
    if (this.o.suiteName !== undefined) {
      if (!this.suites[0]) this.suites.push({ name: this.o.suiteName, timestamp: this.now(), cases: [] });
      return this.suites[0]!;
    }
    let s = this.byPlay.get(play);
    if (!s) {
      s = { name: playName, timestamp: this.now(), cases: [] };
      this.byPlay.set(play, s);
      this.suites.push(s);
    }
    return s;
  }

  private playTitle(ref: StepRef): string {
    return this.titles.get(ref.play) ?? ref.playName;
  }

  private classname(ref: StepRef): string {
    return `${this.playTitle(ref)}/${ref.host}`;
  }

  onEvent(e: EngineEvent): void {
    const r = (s: string) => this.o.redactor.redact(s);
    switch (e.type) {
      case 'play-start':
        this.titles.set(e.play, e.name);
        this.suiteFor(e.play, e.name);
        break;
      case 'step-end': {
        const c: JunitCase = { classname: this.classname(e.step), name: r(e.step.name), timeMs: e.durationMs };
        if (e.step.on) c.classname += `→${e.step.on}`;
        if (e.status === 'skipped') c.skipped = r(e.reason ?? '');
        else if (e.status === 'failed' && !e.ignored) c.failure = { message: r(e.error ?? 'failed'), type: 'StepFailed' };
        else if (e.status === 'failed') c.systemOut = `failed (ignored): ${r(e.error ?? '')}`;
        else c.systemOut = e.status;
        this.suiteFor(e.step.play, this.playTitle(e.step)).cases.push(c);
        break;
      }
      case 'revert-start':
        this.revertStarts.set(`${e.step.instance}@${e.step.host}`, this.now());
        break;
      case 'revert-end': {
        const c: JunitCase = { classname: this.classname(e.step), name: `revert: ${r(e.step.name)}`, timeMs: e.durationMs };
        if (!e.ok) c.failure = { message: r(e.error ?? 'revert failed'), type: 'RevertFailed' };
        else c.systemOut = e.note ? `reverted — ${r(e.note)}` : 'reverted';
        this.suiteFor(e.step.play, this.playTitle(e.step)).cases.push(c);
        break;
      }
      default:
        break;
    }
  }

  /** The run stopped before or outside any step (unreachable host, lock held, interrupted). */
  addError(suiteName: string, message: string, type = 'RunError'): void {
    const s = this.o.suiteName !== undefined ? this.suiteFor(0, suiteName) : this.suiteFor(-1, suiteName);
    s.cases.push({ classname: suiteName, name: 'run', timeMs: 0, error: { message: this.o.redactor.redact(message), type } });
  }
}
