/**
 * One fault case, as the fault suite and the soak run it: bring the lab to a served state, run a
 * shipped playbook with one fault injected at one step, check the real state of every node, recover
 * as an operator would, check again. The outcome is data (nothing here asserts): the suite turns
 * it into test failures, the soak into counts.
 *
 * The recovery rule (also in test/faults/README.md):
 *   - the faulted run exited 0: no recovery; the service must be on the target node, whole;
 *   - the controller was killed right after a step's intent was journaled (switchover,
 *     failback): `baton undo RUN --yes`; the service must be back on the source node;
 *   - any other fault that left the run failed or killed, and every failover: the operator
 *     repairs what the fault broke (powers the node on; links and daemons come back by
 *     themselves), then re-runs the same playbook; the service must be on the target node.
 * A recovery that does not bring the service back gets one more chance (a re-run of the same
 * playbook): if that fails too, the case is "broken with no way back".
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Lab } from './lab.js';
import { checkService, describeTruth, journalViolations, readTruth, safetyViolations, statdStateOn, type ClusterTruth, type Violation } from './invariants.js';
import { heal, teardownService } from './fault-lab.js';
import { activeSteps, faultName, finishedBeforePowerOff, runBaton, summaryOf, type Fault, type FaultedRun, type StepTarget } from './fault-run.js';

export type Playbook = 'nfs-switchover' | 'nfs-failover' | 'nfs-failback';
export const PLAYBOOKS: Playbook[] = ['nfs-switchover', 'nfs-failover', 'nfs-failback'];

export const playbookPath = (p: Playbook | 'nfs-start'): string => path.resolve('playbooks', `${p}.yml`);

/** A step of a shipped playbook, independent of the direction of the move. */
export interface PlaybookStep {
  instance: string;
  kind: string;
  name: string;
  /** Which node it runs on: the one the service leaves, or the one it goes to. */
  side: 'from' | 'to';
  /** It changes something in a clean run (so it journals an intent). */
  changes: boolean;
}

export interface FaultEnv {
  lab: Lab;
  /** The file the client reads through the VIP, and its sha256 as written. */
  file: string;
  sha256: string;
  /** Where the state dirs of the cases go (one fresh dir per case). */
  workDir: string;
  /** How long a stall keeps its daemon stopped at most. */
  stallMs?: number;
}

export interface Phase {
  what: string;
  code: number | null;
  note?: string;
  ms: number;
}

export interface CaseOutcome {
  label: string;
  playbook: Playbook;
  from: string;
  to: string;
  step: StepTarget;
  fault: Fault;
  faulted: Phase & { injected: boolean; outcome?: string; failures?: string[] };
  recovery?: Phase & { expect: string };
  fallback?: Phase;
  /** Safety violations seen after the faulted run and after the recovery. */
  violations: Array<Violation & { when: string }>;
  /** The service was reported fine (exit 0, or exit 1 "rolled back") while it was not. */
  silentFailures: string[];
  /** Neither the recovery nor the second chance brought the service back. */
  unrecoverable: boolean;
  /** What was wrong after the recovery (before the second chance). */
  recoveryProblems: string[];
  tornJournals: string[];
  truthAfterFault: string;
  truthAtEnd: string;
  ms: number;
  /** Every reason this case counts as failed; empty when it passed. */
  failures: string[];
}

const others = (lab: Lab, node: string) => lab.nodes.map((n) => n.name).filter((n) => n !== node);

/**
 * A served lab: every node on, the service whole on exactly one node. Left as it is when it
 * already is (the case before left it so); otherwise torn down and started on the first node.
 */
export async function ensureServed(env: FaultEnv, resetStateDir: string): Promise<string> {
  await heal(env.lab);
  const t = await readTruth(env.lab);
  const s = await checkService(env.lab, t, { file: env.file, sha256: env.sha256 });
  if (!s.problems.length && s.holder && t.nodes.every((n) => n.on)) return s.holder;
  await teardownService(env.lab);
  const home = env.lab.nodes[0]!.name;
  const r = await runBaton({ lab: env.lab, stateDir: resetStateDir, args: ['run', '--yes', '-i', env.lab.inventoryPath, playbookPath('nfs-start'), '-e', `on=${home}`] });
  const t2 = await readTruth(env.lab);
  const s2 = await checkService(env.lab, t2, { file: env.file, sha256: env.sha256, expectHolder: home });
  if (r.code !== 0 || s2.problems.length) {
    throw new Error(
      `lab ${env.lab.name}: could not reset the NFS service on ${home} (nfs-start exited ${r.code}${r.signal ? ` by ${r.signal}` : ''}): ${s2.problems.join('; ')}\n` +
        `${describeTruth(t2)}\n${r.stderr.slice(-2000)}${summaryOf(r.events)?.failures?.join('\n') ?? ''}`,
    );
  }
  return home;
}

function phaseOf(what: string, r: FaultedRun): Phase {
  const s = summaryOf(r.events);
  // What went wrong, in baton's words: failed steps and reverts first, then its summary or stderr.
  const errors = r.events
    .filter((e) => (e.type === 'step-end' && e.status === 'failed') || (e.type === 'revert-end' && e.ok === false))
    .map((e) => `${e.type === 'revert-end' ? 'revert of ' : ''}${e.step?.kind} on ${e.step?.host}: ${String(e.error ?? '').split('\n')[0]}`);
  const tail = s?.failures?.length ? s.failures.join(' | ') : r.stderr.trim().split('\n').slice(-3).join(' | ');
  const why = [...new Set([...errors, tail].filter(Boolean))].join(' | ').slice(0, 900);
  return { what, code: r.signal ? null : r.code, note: r.code === 0 ? undefined : why || undefined, ms: r.ms };
}

/** Run one case. Throws only when the lab itself cannot be brought to a served state. */
export async function runFaultCase(env: FaultEnv, playbook: Playbook, step: PlaybookStep, fault: Fault, o: { resetStateDir: string; delayMs?: number }): Promise<CaseOutcome> {
  const t0 = Date.now();
  const lab = env.lab;
  const holder = await ensureServed(env, o.resetStateDir);
  const from = holder;
  const to = others(lab, from)[0]!;
  const stateDir = mkdtempSync(path.join(env.workDir, 'case-'));
  const node = step.side === 'from' ? from : to;
  const target: StepTarget = { instance: step.instance, host: node, on: node, kind: step.kind, name: step.name, fenceTarget: step.kind === 'fence' ? from : undefined };
  const label = `${playbook} ${from}→${to}, step ${step.kind} (${step.instance}) on ${node}: ${faultName(fault)}`;
  const args = ['run', '--yes', '-i', lab.inventoryPath, playbookPath(playbook), '-e', `from=${from}`, '-e', `to=${to}`];
  const out: CaseOutcome = {
    label,
    playbook,
    from,
    to,
    step: target,
    fault,
    faulted: { what: 'faulted run', code: null, ms: 0, injected: false },
    violations: [],
    silentFailures: [],
    unrecoverable: false,
    recoveryProblems: [],
    tornJournals: [],
    truthAfterFault: '',
    truthAtEnd: '',
    ms: 0,
    failures: [],
  };
  const service = (t: ClusterTruth, expectHolder: string) => checkService(lab, t, { file: env.file, sha256: env.sha256, expectHolder });

  // The NSM state before the move: a completed move must leave a larger one (clients notified).
  const nsmBefore = statdStateOn(lab, holder) ?? 0;
  const notified = (node: string): string[] => {
    const now = statdStateOn(lab, node);
    return now !== undefined && now > nsmBefore ? [] : [`lock holders were not notified: the NSM state on the disk is ${now ?? 'missing'} (was ${nsmBefore} before the move)`];
  };

  // 1. The faulted run.
  const r = await runBaton({ lab, stateDir, args, target, fault, stallMs: env.stallMs, delayMs: o.delayMs });
  const s = summaryOf(r.events);
  out.faulted = { ...phaseOf('faulted run', r), injected: r.injected, note: r.note + (r.code ? `; ${phaseOf('', r).note ?? ''}` : ''), outcome: s?.outcome, failures: s?.failures };
  if (r.hung) out.failures.push(`the faulted run did not end by itself (${r.note})`);

  // 2. What the fault and baton left, before anyone repairs anything.
  const t1 = await readTruth(lab);
  out.truthAfterFault = describeTruth(t1);
  out.violations.push(...safetyViolations(t1).map((v) => ({ ...v, when: 'after the faulted run' })));

  let expect = to;
  let how: 'none' | 'undo' | 're-run' = 're-run';
  if (r.code === 0 && !r.signal && finishedBeforePowerOff(r.events)) {
    // The run was over (every step ended) when the node finished dying: the service it left was
    // whole and then lost with the node. The repair powers the node back on; a re-run moves the
    // service onto it again, as an operator would after a node failure.
    out.faulted.note += '; every step had ended before the node was off: the node failed after the run';
  } else if (r.code === 0 && !r.signal) {
    how = 'none';
    const sv = await service(t1, to);
    sv.problems.push(...notified(to));
    if (sv.problems.length) out.silentFailures.push(`the faulted run exited 0 but: ${sv.problems.join('; ')}`);
  } else if (r.code === 1 && playbook !== 'nfs-failover') {
    // "a step failed; rollback completed": the service must be back where it was.
    const sv = await service(t1, from);
    // A source node that lost its power cannot serve whatever baton does: the rollback put back
    // all baton changed, and the run must say the node is unreachable (the operator's cue for a
    // failover). Saying nothing about it would be the silent failure.
    const sourceDied = fault.type === 'power' && node === from && new RegExp(`${from} unreachable`).test(out.faulted.note ?? '');
    if (sv.problems.length && sourceDied) out.faulted.note += `; the source ${from} died, and the run said it is unreachable`;
    else if (sv.problems.length) out.silentFailures.push(`the faulted run exited 1 (rolled back) but: ${sv.problems.join('; ')}`);
  }
  if (how !== 'none' && fault.type === 'kill' && fault.at === 'intent' && playbook !== 'nfs-failover' && r.runId) {
    how = 'undo';
    expect = from;
  }

  // 3. The operator's repair (a fenced source of a failover stays off), then the recovery.
  await heal(lab, { keepOff: playbook === 'nfs-failover' ? [from] : [] });
  if (how !== 'none') {
    const rec = how === 'undo' ? await runBaton({ lab, stateDir, args: ['undo', '--yes', r.runId!] }) : await runBaton({ lab, stateDir, args });
    out.recovery = { ...phaseOf(how === 'undo' ? `baton undo ${r.runId}` : 're-run', rec), expect };
    const t2 = await readTruth(lab);
    out.violations.push(...safetyViolations(t2).map((v) => ({ ...v, when: `after the recovery (${how})` })));
    const sv = await service(t2, expect);
    if (expect === to) sv.problems.push(...notified(to));
    out.recoveryProblems = sv.problems;
    if (rec.code === 0 && !rec.signal && sv.problems.length) out.silentFailures.push(`the recovery (${how}) exited 0 but: ${sv.problems.join('; ')}`);
    else if (rec.code !== 0) {
      out.failures.push(`the recovery (${how}) exited ${rec.code ?? rec.signal}${out.recovery.note ? ` (${out.recovery.note})` : ''}; the service ${sv.problems.length ? `is broken: ${sv.problems.join('; ')}` : 'is whole nevertheless'}`);
    }
    if (rec.code !== 0 || sv.problems.length) {
      // The second chance: re-run the same playbook (a repair first: the recovery may have powered off a node).
      await heal(lab, { keepOff: playbook === 'nfs-failover' ? [from] : [] });
      const fb = await runBaton({ lab, stateDir, args });
      out.fallback = phaseOf('second re-run', fb);
      const t3 = await readTruth(lab);
      out.violations.push(...safetyViolations(t3).map((v) => ({ ...v, when: 'after the second re-run' })));
      const sv3 = await service(t3, to);
      sv3.problems.push(...notified(to));
      if (fb.code !== 0 || sv3.problems.length) {
        out.unrecoverable = true;
        out.fallback.note = `${fb.code === 0 ? 'exited 0' : `exited ${fb.code ?? fb.signal}`}: ${sv3.problems.join('; ') || 'service whole'}${out.fallback.note ? ` (${out.fallback.note})` : ''}`;
      }
    }
  }
  const tEnd = await readTruth(lab);
  out.truthAtEnd = describeTruth(tEnd);

  // 4. Every journal reads back.
  const j = journalViolations(stateDir);
  out.tornJournals = j.torn;
  out.violations.push(...j.violations.map((v) => ({ ...v, when: 'at the end' })));

  for (const v of out.violations) out.failures.push(`${v.invariant} ${v.when}: ${v.detail}`);
  for (const sf of out.silentFailures) out.failures.push(`silent failure: ${sf}`);
  if (out.unrecoverable) out.failures.push(`broken with no way back: the second re-run did not bring the service back either (${out.fallback?.note})`);
  out.ms = Date.now() - t0;
  return out;
}

/**
 * The steps a clean run of the playbook really runs (skipped ones left out), from a run of it on
 * the served lab; the lab is left served on the other node.
 */
export async function referenceSteps(env: FaultEnv, playbook: Playbook, resetStateDir: string): Promise<PlaybookStep[]> {
  const from = await ensureServed(env, resetStateDir);
  const to = others(env.lab, from)[0]!;
  const stateDir = mkdtempSync(path.join(env.workDir, 'reference-'));
  const r = await runBaton({ lab: env.lab, stateDir, args: ['run', '--yes', '-i', env.lab.inventoryPath, playbookPath(playbook), '-e', `from=${from}`, '-e', `to=${to}`] });
  const t = await readTruth(env.lab);
  const s = await checkService(env.lab, t, { file: env.file, sha256: env.sha256, expectHolder: to });
  if (r.code !== 0 || s.problems.length) {
    throw new Error(`a clean ${playbook} ${from}→${to} (no fault) exited ${r.code}: ${s.problems.join('; ')}\n${describeTruth(t)}\n${r.stderr.slice(-2000)}`);
  }
  return activeSteps(r.events).map((a) => ({ instance: a.instance, kind: a.kind, name: a.name, side: a.host === from ? 'from' : 'to', changes: a.status === 'changed' }));
}

/** A failure message for a person: the case, what each phase did, what the nodes looked like. */
export function explain(o: CaseOutcome): string {
  const lines = [
    o.label,
    `  faulted run: ${o.faulted.code === null ? 'killed' : `exit ${o.faulted.code}`} (${o.faulted.outcome ?? 'no summary'}) in ${o.faulted.ms} ms — ${o.faulted.note}`,
  ];
  if (o.recovery) lines.push(`  recovery ${o.recovery.what}: exit ${o.recovery.code} in ${o.recovery.ms} ms, expected on ${o.recovery.expect}${o.recovery.note ? ` — ${o.recovery.note}` : ''}`);
  if (o.fallback) lines.push(`  second chance (${o.fallback.what}): exit ${o.fallback.code}${o.fallback.note ? ` — ${o.fallback.note}` : ''}`);
  lines.push('  after the faulted run:', o.truthAfterFault, '  at the end:', o.truthAtEnd);
  if (o.failures.length) lines.push('  failures:', ...o.failures.map((f) => `    - ${f}`));
  return lines.join('\n');
}

/** One JSON line per case for the suite's log (and the soak's), short enough to read. */
export function caseRecord(o: CaseOutcome): Record<string, unknown> {
  return {
    case: o.label,
    faulted: o.faulted.code,
    faultedMs: o.faulted.ms,
    injected: o.faulted.injected,
    note: o.faulted.note,
    recovery: o.recovery ? `${o.recovery.what.split(' ')[0] === 'baton' ? 'undo' : 're-run'}:${o.recovery.code}` : 'none',
    recoveryMs: o.recovery?.ms,
    fallback: o.fallback?.code,
    ms: o.ms,
    failures: o.failures,
  };
}

/** Clean up a case work dir tree (state dirs are removed per case already). */
export function newWorkDir(tag: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `baton-faults-${tag}-`));
}
