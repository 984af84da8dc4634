import type { Problem } from '../util/errors.js';
import type { Play, StepSpec } from './model.js';

export interface KindRoles {
  /** The kind's safety role (StepRegistry.roleOf), known without loading the kind. */
  roleOf(kind: string): 'takeover' | 'release' | 'fence' | 'neutral' | undefined;
}

/**
 * With requires_fence, taking a resource over before the peer was fenced or has released it
 * risks two nodes serving the same data (split brain). Order is checked as written: a
 * takeover step must come after some fence or release step, in the same play or an earlier
 * one (a switchover releases on the old node in one play and takes over in the next).
 */
export function checkFenceOrder(play: Play, kinds: KindRoles, guardedByEarlierPlay = false): Problem[] {
  if (guardedByEarlierPlay) return [];
  const roleOf = (s: StepSpec) => kinds.roleOf(s.kind) ?? 'neutral';
  const firstGuard = play.steps.find((s) => roleOf(s) === 'fence' || roleOf(s) === 'release');
  const problems: Problem[] = [];
  for (const step of play.steps) {
    if (step === firstGuard) break;
    if (roleOf(step) !== 'takeover') continue;
    const after = firstGuard
      ? `; the first fence/release step, ${describe(firstGuard)} at line ${firstGuard.loc.line}, comes after it: move it before`
      : '; neither this play nor an earlier one has a fence or release step';
    problems.push({
      loc: step.loc,
      message: `unsafe order: takeover step ${describe(step)} runs before any fence or release step, and play "${play.name}" requires_fence${after}`,
    });
  }
  return problems;
}

function describe(s: StepSpec): string {
  return s.name ? `"${s.name}" (${s.kind})` : `"${s.kind}" (${s.id})`;
}

/** Does the play fence or release anything (so later plays may take over)? */
export function guardsTakeover(play: Play, kinds: KindRoles): boolean {
  return play.steps.some((s) => {
    const role = kinds.roleOf(s.kind);
    return role === 'fence' || role === 'release';
  });
}
