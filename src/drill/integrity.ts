import type { ProbeSample } from './probe.js';

/**
 * Did the client read the same bytes throughout? The reference is the last good read before the
 * first playbook started; the last good read after the last playbook ended must match it, and so
 * must every good read in between (a failover that serves a stale or torn copy is worse than an
 * outage).
 */
export interface IntegrityResult {
  ok: boolean;
  before?: string;
  after?: string;
  /** Good reads whose bytes differ from `before`. */
  mismatches: number;
  firstMismatchAt?: number;
  /** Why it is not ok, for the summary. */
  reason?: string;
}

export function checkIntegrity(samples: ProbeSample[], playbooksStart: number, playbooksEnd: number): IntegrityResult {
  const good = samples.filter((s) => s.ok && s.sha256);
  const before = good.filter((s) => s.t < playbooksStart).pop()?.sha256;
  const after = good.filter((s) => s.t >= playbooksEnd).pop()?.sha256;
  if (!before) return { ok: false, after, mismatches: 0, reason: 'no good read before the playbook started: nothing to compare with' };
  const bad = good.filter((s) => s.sha256 !== before);
  const r: IntegrityResult = { ok: true, before, after, mismatches: bad.length };
  if (bad.length) r.firstMismatchAt = bad[0]!.t;
  if (!after) return { ...r, ok: false, reason: 'no good read after the playbooks ended' };
  if (bad.length) return { ...r, ok: false, reason: `${bad.length} read(s) returned different bytes (first at ${bad[0]!.t})` };
  return r;
}
