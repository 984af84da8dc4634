/**
 * The fault suite's shape: for every step k each playbook really runs, each fault of FAULTS,
 * then recovery, then the invariant checker. A file owns a pool of labs and runs as many cases
 * at once as it has labs, one per lab: vitest runs files one at a time on a 2-core machine, so
 * the concurrency that keeps the suite short lives inside the file. See README.md.
 */
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { clientWrite } from '../helpers/nfs-service.js';
import { caseRecord, ensureServed, explain, newWorkDir, referenceSteps, runFaultCase, type CaseOutcome, type FaultEnv, type Playbook, type PlaybookStep } from '../helpers/fault-case.js';
import { FAULTS, faultName, type Fault } from '../helpers/fault-run.js';
import { exportAnyway, makeSplitBrain, teardownService } from '../helpers/fault-lab.js';
import { checkService, journalViolations, readTruth, safetyViolations } from '../helpers/invariants.js';

export interface PlaybookCases {
  playbook: Playbook;
  /**
   * The step kinds a clean run of the playbook runs, in order (skipped steps left out). Checked
   * against a real clean run first: when the playbook changes, this list must follow.
   */
  kinds: string[];
}

export interface SuiteOptions {
  /** The labs of this file: names and /24s of its own; one case runs on each at a time. */
  labs: Array<{ name: string; subnet: string }>;
  playbooks: PlaybookCases[];
}

/** Steps that change nothing in a clean run never journal an intent: no "killed at intent" case. */
const NEVER_CHANGES = new Set(['assert']);

const FILE = '/disk1/payload.bin';

/** How long a stall keeps the step's daemon stopped, at most (FAULT_STALL_MS to change it). */
const STALL_MS = Number(process.env.FAULT_STALL_MS ?? 4000);

class LabPool {
  private free: FaultEnv[] = [];
  private waiting: Array<(e: FaultEnv) => void> = [];
  add(e: FaultEnv): void {
    const w = this.waiting.shift();
    if (w) w(e);
    else this.free.push(e);
  }
  take(): Promise<FaultEnv> {
    const e = this.free.shift();
    return e ? Promise.resolve(e) : new Promise((r) => this.waiting.push(r));
  }
}

export function faultSuite(o: SuiteOptions): void {
  const labs: Lab[] = [];
  const pool = new LabPool();
  const resetDirs = new Map<string, string>();
  let workDir: string | undefined;
  const steps = new Map<Playbook, PlaybookStep[]>();
  const outcomes: CaseOutcome[] = [];
  const resultsOf = (p: Playbook) => path.resolve('test-results', 'faults', `${p}.jsonl`);

  beforeAll(async () => {
    requireRoot();
    workDir = newWorkDir('suite');
    mkdirSync(path.resolve('test-results', 'faults'), { recursive: true });
    for (const p of o.playbooks) rmSync(resultsOf(p.playbook), { force: true });
    // The labs come up one after the other (up is quick), then each is served and written to at once.
    for (const spec of o.labs) labs.push(await startLab({ name: spec.name, subnet: spec.subnet, disks: 1, diskMiB: 16 }));
    const envs = await Promise.all(
      labs.map(async (lab) => {
        const env: FaultEnv = { lab, file: FILE, sha256: '', workDir: workDir!, stallMs: STALL_MS };
        const reset = path.join(workDir!, `reset-${lab.name}`);
        resetDirs.set(lab.name, reset);
        // Served on its first node, then the client's file, written once through the VIP.
        await ensureServed({ ...env, sha256: 'none yet' }, reset).catch(() => undefined);
        env.sha256 = await clientWrite(lab, FILE, 1 << 20);
        return env;
      }),
    );
    // A clean run of each playbook (no fault) on its own lab: the steps it really runs.
    await Promise.all(
      o.playbooks.map(async (p, i) => {
        const env = envs[i % envs.length]!;
        steps.set(p.playbook, await referenceSteps(env, p.playbook, resetDirs.get(env.lab.name)!));
      }),
    );
    for (const p of o.playbooks) {
      expect(steps.get(p.playbook)!.map((s) => s.kind), `the steps a clean ${p.playbook} runs (update the suite's list when the playbook changes)`).toEqual(p.kinds);
    }
    for (const e of envs) pool.add(e);
  });

  afterAll(async () => {
    for (const lab of labs) {
      // down() tries twice (a loop device may stay busy a moment after its node died) and
      // throws, naming what is left, if the second try fails too.
      await lab.down();
      expect(existsSync(lab.dir), `lab ${lab.name} left ${lab.dir} behind`).toBe(false);
    }
    if (workDir) rmSync(workDir, { recursive: true, force: true });
    for (const p of o.playbooks) {
      const mine = outcomes.filter((x) => x.playbook === p.playbook);
      const failed = mine.filter((x) => x.failures.length);
      console.log(`[faults] ${p.playbook}: ${mine.length} cases, ${failed.length} failed, ${mine.filter((x) => !x.faulted.injected).length} not injected; ${path.relative(process.cwd(), resultsOf(p.playbook))}`);
    }
  });

  // A checker that cannot see a split brain would pass every case: show it sees each kind.
  describe('the invariant checker', () => {
    it('sees the VIP, the disk and an export on a second node, and a damaged journal', async () => {
      const env = await pool.take();
      const lab = env.lab;
      try {
        const holder = await ensureServed(env, resetDirs.get(lab.name)!);
        const other = lab.nodes.find((n) => n.name !== holder)!.name;
        expect(safetyViolations(await readTruth(lab))).toEqual([]);
        await makeSplitBrain(lab, other);
        await exportAnyway(lab, other, '/var/lib/nfs');
        const t = await readTruth(lab);
        expect(safetyViolations(t).map((v) => v.invariant).sort()).toEqual([
          'disk-attached-on-two-nodes',
          'disk-mounted-on-two-nodes',
          'exported-where-not-mounted',
          'vip-on-two-nodes',
        ]);
        expect((await checkService(lab, t, { file: env.file, sha256: env.sha256, expectHolder: holder })).problems.length).toBeGreaterThan(0);

        const state = mkdtempSync(path.join(workDir!, 'journals-'));
        mkdirSync(path.join(state, 'runs'));
        const rec = (r: object) => JSON.stringify(r) + '\n';
        writeFileSync(path.join(state, 'runs', 'torn.jsonl'), rec({ t: 'run' }) + rec({ t: 'intent', seq: 1 }) + '{"t":"do');
        writeFileSync(path.join(state, 'runs', 'cut.jsonl'), rec({ t: 'run' }) + '{"t":"inte\n' + rec({ t: 'end' }));
        const j = journalViolations(state);
        expect(j.torn).toEqual(['torn.jsonl:3']);
        expect(j.violations.map((v) => v.detail)).toEqual([expect.stringMatching(/^cut\.jsonl line 2 /)]);
      } finally {
        await teardownService(lab);
        pool.add(env);
      }
    });
  });

  for (const p of o.playbooks) {
    const cases: Array<{ k: number; kind: string; fault: Fault }> = [];
    p.kinds.forEach((kind, k) => {
      for (const fault of FAULTS) {
        if (fault.type === 'kill' && fault.at === 'intent' && NEVER_CHANGES.has(kind)) continue;
        cases.push({ k, kind, fault });
      }
    });

    describe.concurrent(p.playbook, () => {
      for (const c of cases) {
        it(`step ${c.k} ${c.kind}: ${faultName(c.fault)}`, async () => {
          const step = steps.get(p.playbook)?.[c.k];
          if (!step) throw new Error(`no step ${c.k} in the reference run of ${p.playbook} (see beforeAll)`);
          const env = await pool.take();
          let out: CaseOutcome;
          try {
            out = await runFaultCase(env, p.playbook, step, c.fault, { resetStateDir: resetDirs.get(env.lab.name)! });
          } finally {
            pool.add(env);
          }
          outcomes.push(out);
          appendFileSync(resultsOf(p.playbook), JSON.stringify({ ...caseRecord(out), lab: env.lab.name }) + '\n');
          console.log(`[fault] ${out.failures.length ? 'FAIL' : 'ok  '} ${out.label} (${out.ms} ms)`);
          expect(out.failures, explain(out)).toEqual([]);
        });
      }
    });
  }
}
