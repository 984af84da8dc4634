/**
 * The randomized soak (`npm run soak -- --runs N --seed S`, through scripts/soak.mjs): N fault
 * cases on a lab of its own, each with a playbook, direction, step, fault and moment drawn from a
 * seeded PRNG, so a seed replays the same choices. Prints every run and the totals; exits 1 when
 * any invariant broke (split brain, export over an unmounted path, a silent failure, a service
 * broken with no way back, an unreadable journal), 2 on bad arguments, 3 when the lab could not be
 * built or reset.
 */
import { prng } from './prng.js';
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startLab, type Lab } from './lab.js';
import { clientWrite } from './nfs-service.js';
import { caseRecord, ensureServed, explain, newWorkDir, PLAYBOOKS, referenceSteps, runFaultCase, type CaseOutcome, type FaultEnv, type Playbook, type PlaybookStep } from './fault-case.js';
import { FAULTS, faultName, runBaton, type Fault } from './fault-run.js';
import { checkService, readTruth } from './invariants.js';
import { playbookPath } from './fault-case.js';

export interface SoakOptions {
  runs: number;
  seed: number;
  stallMs: number;
  /** Where one JSON line per run goes. */
  out: string;
  lab: string;
  subnet: string;
  /** Print the full explanation of every failed run. */
  verbose: boolean;
}


const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

const SPLIT = new Set(['vip-on-two-nodes', 'disk-attached-on-two-nodes', 'disk-mounted-on-two-nodes']);

export interface SoakTotals {
  runs: number;
  injected: number;
  byFault: Record<string, number>;
  clean: number;
  splitBrains: number;
  exportedUnmounted: number;
  silentFailures: number;
  firstRecoveryFailed: number;
  unrecoverable: number;
  unreadableJournals: number;
  tornJournals: number;
  hung: number;
  ms: number;
}

export async function soak(o: SoakOptions, log: (s: string) => void = (s) => process.stdout.write(s + '\n')): Promise<{ totals: SoakTotals; exitCode: number }> {
  const t0 = Date.now();
  const rnd = prng(o.seed);
  const totals: SoakTotals = {
    runs: 0, injected: 0, byFault: {}, clean: 0, splitBrains: 0, exportedUnmounted: 0, silentFailures: 0,
    firstRecoveryFailed: 0, unrecoverable: 0, unreadableJournals: 0, tornJournals: 0, hung: 0, ms: 0,
  };
  mkdirSync(path.dirname(o.out), { recursive: true });
  rmSync(o.out, { force: true });
  let lab: Lab | undefined;
  const workDir = newWorkDir('soak');
  const reset = path.join(workDir, 'reset');
  try {
    log(`soak: seed ${o.seed}, ${o.runs} runs, lab ${o.lab} on ${o.subnet}`);
    lab = await startLab({ name: o.lab, subnet: o.subnet, disks: 1, diskMiB: 16 });
    const env: FaultEnv = { lab, file: '/disk1/soak.bin', sha256: 'none yet', workDir, stallMs: o.stallMs };
    await ensureServed(env, reset).catch(() => undefined);
    env.sha256 = await clientWrite(lab, env.file, 1 << 20);
    const steps = new Map<Playbook, PlaybookStep[]>();
    for (const p of PLAYBOOKS) steps.set(p, await referenceSteps(env, p, reset));
    log(`soak: lab up, reference runs done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    let stop = false;
    // Ctrl-C: finish the run in flight, then tear the lab down and print what was seen.
    process.on('SIGINT', () => {
      stop = true;
      log('soak: interrupted: finishing the run in flight, then tearing the lab down');
    });
    for (let i = 1; i <= o.runs && !stop; i++) {
      // Every choice is drawn whether used or not, so a seed always means the same cases.
      const playbook = pick(rnd, PLAYBOOKS);
      const towardsSecond = rnd() < 0.5;
      const stepList = steps.get(playbook)!;
      const step = pick(rnd, stepList);
      let fault: Fault = pick(rnd, FAULTS);
      if (fault.type === 'kill' && fault.at === 'intent' && !step.changes) fault = { type: 'kill', at: 'start' };
      const delayMs = Math.floor(rnd() * 400);

      // The direction: move the service to the wanted source first (a clean switchover) if it is not there.
      const wantFrom = lab.nodes[towardsSecond ? 0 : 1]!.name;
      const holder = await ensureServed(env, reset);
      if (holder !== wantFrom) {
        const st = path.join(workDir, `prep-${i}`);
        const r = await runBaton({ lab, stateDir: st, args: ['run', '--yes', '-i', lab.inventoryPath, playbookPath('nfs-switchover'), '-e', `from=${holder}`, '-e', `to=${wantFrom}`] });
        const s = await checkService(lab, await readTruth(lab), { file: env.file, sha256: env.sha256, expectHolder: wantFrom });
        if (r.code !== 0 || s.problems.length) log(`  (run ${i}: could not move the service to ${wantFrom} first: exit ${r.code}; ${s.problems.join('; ')}; going on from where it is)`);
      }

      const out: CaseOutcome = await runFaultCase(env, playbook, step, fault, { resetStateDir: reset, delayMs });
      totals.runs++;
      if (out.faulted.injected) totals.injected++;
      totals.byFault[faultName(fault)] = (totals.byFault[faultName(fault)] ?? 0) + 1;
      const split = out.violations.filter((v) => SPLIT.has(v.invariant));
      if (split.length) totals.splitBrains++;
      if (out.violations.some((v) => v.invariant === 'exported-where-not-mounted')) totals.exportedUnmounted++;
      if (out.silentFailures.length) totals.silentFailures++;
      if (out.recoveryProblems.length || (out.recovery && out.recovery.code !== 0)) totals.firstRecoveryFailed++;
      if (out.unrecoverable) totals.unrecoverable++;
      if (out.violations.some((v) => v.invariant === 'journal-unreadable')) totals.unreadableJournals++;
      totals.tornJournals += out.tornJournals.length;
      if (out.failures.some((f) => f.includes('did not end by itself'))) totals.hung++;
      if (!out.failures.length) totals.clean++;
      appendFileSync(o.out, JSON.stringify({ run: i, seed: o.seed, delayMs, ...caseRecord(out) }) + '\n');
      log(`${String(i).padStart(4)} ${out.failures.length ? 'FAIL' : 'ok  '} ${out.label}${delayMs ? ` +${delayMs} ms` : ''} — ${outcomeLine(out)} (${(out.ms / 1000).toFixed(1)} s)`);
      if (out.failures.length) {
        if (o.verbose) log(explain(out).replace(/^/gm, '       '));
        else for (const f of out.failures) log(`       - ${f}`);
      }
    }
  } catch (e) {
    log(`soak: stopped: ${(e as Error).stack ?? e}`);
    totals.ms = Date.now() - t0;
    printTotals(totals, log);
    return { totals, exitCode: 3 };
  } finally {
    if (lab) {
      // down() tries twice and throws, naming what is left, when it could not remove everything.
      await lab.down().catch((e: Error) => log(`soak: the lab could not be torn down: ${e.message}; run \`baton lab down --name ${o.lab}\``));
    }
    rmSync(workDir, { recursive: true, force: true });
  }
  totals.ms = Date.now() - t0;
  printTotals(totals, log);
  const broke = totals.splitBrains + totals.exportedUnmounted + totals.silentFailures + totals.unrecoverable + totals.unreadableJournals + totals.hung;
  return { totals, exitCode: broke ? 1 : 0 };
}

function outcomeLine(o: CaseOutcome): string {
  const faulted = o.faulted.code === null ? 'killed' : `exit ${o.faulted.code}`;
  const rec = o.recovery ? `; ${o.recovery.what.startsWith('baton undo') ? 'undo' : 're-run'} exit ${o.recovery.code}` : '';
  const fb = o.fallback ? `; second re-run exit ${o.fallback.code}` : '';
  return `${o.faulted.injected ? '' : 'not injected; '}${faulted}${rec}${fb}`;
}

function printTotals(t: SoakTotals, log: (s: string) => void): void {
  log('');
  log(`runs                          ${t.runs} (${t.injected} with the fault injected) in ${(t.ms / 1000).toFixed(0)} s`);
  log(`faults                        ${Object.entries(t.byFault).map(([k, v]) => `${k}: ${v}`).join(', ') || '-'}`);
  log(`clean outcomes                ${t.clean}`);
  log(`split brains                  ${t.splitBrains}`);
  log(`exported over nothing mounted ${t.exportedUnmounted}`);
  log(`silent failures (exit 0/1 over a broken service) ${t.silentFailures}`);
  log(`first recovery failed         ${t.firstRecoveryFailed}`);
  log(`broken with no way back       ${t.unrecoverable}`);
  log(`unreadable journals           ${t.unreadableJournals} (torn last lines, allowed: ${t.tornJournals})`);
  log(`runs that hung                ${t.hung}`);
}
