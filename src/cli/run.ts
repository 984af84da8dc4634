import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { runSession, secretsOf, type RunHooks, type RunResult } from '../engine/session.js';
import { BatonError, ExitCode } from '../util/errors.js';
import type { TransportPool } from '../transport/index.js';
import { makeReporter } from '../report/make.js';
import { loadInputs, type CommonOptions, type Inputs } from './inputs.js';
import { renderPlan } from './plan.js';
import { withPlacementForRun } from './placement-inputs.js';

export interface RunOptions extends CommonOptions {
  /** `--coordinator`: etcd://… or embedded. */
  coordinator?: string;
  check?: boolean;
  diff?: boolean;
  detailedExitcode?: boolean;
  yes?: boolean;
  step?: boolean;
  force?: boolean;
  acceptNew?: boolean;
}

export { makeReporter };

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim().toLowerCase();
  } finally {
    rl.close();
  }
}

export { secretsOf };

export async function runCommand(playbookFile: string, o: RunOptions & { junit?: string }): Promise<number> {
  const t0 = Date.now();
  const { inputs, pool } = await withPlacementForRun(loadInputs(playbookFile, o), { acceptNew: o.acceptNew, coordinator: o.coordinator });
  try {
    return await runLoaded(inputs, o, t0, pool);
  } finally {
    // The session closed them if it ran; a run that stopped before it (not confirmed) did not.
    await pool?.closeAll();
  }
}

async function runLoaded(inputs: Inputs, o: RunOptions & { junit?: string }, t0: number, pool: TransportPool | undefined): Promise<number> {
  await inputs.registry.ensureLoaded();
  const check = Boolean(o.check);
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);

  if (!check && !o.yes) {
    if (!interactive) {
      throw new BatonError(
        'refusing to change anything without --yes when not on a terminal (nothing was touched). ' +
          'Look first with `baton plan` or `baton run --check`, then add --yes.',
        ExitCode.INVALID,
      );
    }
    process.stdout.write(renderPlan(inputs, o) + '\n');
    const answer = await ask('Apply these changes? Type "yes" to go on: ');
    if (answer !== 'yes') {
      process.stderr.write('Nothing was changed.\n');
      return ExitCode.OK;
    }
  }
  if (o.step && !interactive) throw new BatonError('--step needs a terminal to ask on', ExitCode.INVALID);

  const redactor = secretsOf(inputs);
  const reporter = await makeReporter({ ...o, redact: (s) => redactor.redact(s) });
  const junit = o.junit ? new (await import('../report/junit.js')).JunitCollector({ redactor }) : undefined;
  try {
    const r = await runPlaybook(inputs, o, { t0, pool, reporter, redactor, onEvent: junit && ((e) => junit.onEvent(e)), confirm: o.step ? (q) => (reporter.ask ? reporter.ask(q) : ask(q)) : undefined });
    return r.exitCode;
  } catch (e) {
    junit?.addError(path.basename(inputs.playbookFile), (e as Error).message, (e as Error).name);
    throw e;
  } finally {
    if (junit && o.junit) (await import('../report/junit.js')).writeJunit(o.junit, junit.suites, path.basename(inputs.playbookFile));
  }
}

export type { RunHooks, RunResult as RunPlaybookResult } from '../engine/session.js';

/** `baton run` once it may go ahead: the engine's session (src/engine/session.ts). */
export function runPlaybook(inputs: Inputs, o: RunOptions, hooks: RunHooks): Promise<RunResult> {
  return runSession(inputs, o, hooks);
}
