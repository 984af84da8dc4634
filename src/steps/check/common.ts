import type { StepContext, StepKind } from '../contract.js';
import { StepRefusedError } from '../contract.js';

/**
 * What the check-only kinds share. A check kind is a read-only step whose probe gathers the
 * facts and whose `problem()` says, in words for the operator, why they are not healthy.
 * `baton check` reports that text with the check's severity; in a `baton run` the kind acts as
 * an `assert` (a refusal naming the problem), so a health check can also guard a failover.
 */
export type Severity = 'warning' | 'critical';

export interface SeverityArg {
  /** How bad "not satisfied" is for `baton check` (default critical). */
  severity?: Severity;
}

export interface CheckKind<A extends SeverityArg = SeverityArg, O = unknown> extends StepKind<A, O> {
  /** Why the observed state is unhealthy; undefined when healthy. */
  problem(observed: O, args: A): string | undefined;
  /** One line describing a healthy observation, for -v output. */
  healthy(observed: O, args: A): string;
  /** The severity of this observation's problem (default: the `severity` argument). */
  severityOf?(observed: O, args: A): Severity;
}

export function isCheckKind(k: StepKind): k is CheckKind {
  return typeof (k as Partial<CheckKind>).problem === 'function';
}

export interface CheckSpec<A extends SeverityArg, O> {
  kind: string;
  secretArgs?: string[];
  /** See StepKind.fromController. */
  fromController?: boolean;
  probe(ctx: StepContext, args: A): Promise<O>;
  problem(observed: O, args: A): string | undefined;
  healthy(observed: O, args: A): string;
  severityOf?(observed: O, args: A): Severity;
  describe: StepKind<A, O>['describe'];
}

/** A StepKind from a check's probe and judgement: read-only, neutral, assert-like in a run. */
export function checkKind<A extends SeverityArg, O>(spec: CheckSpec<A, O>): CheckKind<A, O> {
  return {
    kind: spec.kind,
    role: 'neutral',
    readOnly: true,
    ...(spec.fromController ? { fromController: true } : {}),
    ...(spec.secretArgs ? { secretArgs: spec.secretArgs } : {}),
    probe: spec.probe,
    problem: spec.problem,
    healthy: spec.healthy,
    severityOf: spec.severityOf,
    satisfied: (seen, a) => spec.problem(seen, a) === undefined,
    async apply(ctx, a) {
      // The engine calls apply only when the probe was not satisfied; probe again so a state
      // that healed in between is not reported as a failure.
      const problem = spec.problem(await spec.probe(ctx, a), a);
      if (problem !== undefined) throw new StepRefusedError(`${spec.kind} on ${ctx.transport.host}: ${problem}`);
    },
    async revert() {
      // A check changed nothing: there is nothing to put back.
    },
    describe: spec.describe,
  };
}

/** "n1", "n1 and n2", "n1, n2 and n3". */
export function listNames(names: string[]): string {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}
