/**
 * `--diff` output: what changed on a node as a unified-style diff of the probed states, secrets
 * masked; in check mode the state now and the commands that would change it.
 */
import { describe, expect, it } from 'vitest';
import { diffLines, renderStepDiff, stateLines, unifiedDiff } from '../../src/report/diff.js';
import { LineReporter } from '../../src/report/lines.js';
import { Redactor } from '../../src/engine/redact.js';
import type { EngineEvent, StepRef } from '../../src/engine/events.js';

const ref = (host: string, name: string, kind: string): StepRef => ({ play: 0, playName: 'p', stepId: 's0', instance: 's0', name, kind, host, tags: [] });

describe('unified diff of probed states', () => {
  it('a VIP raised: absent before, present with its prefix after', () => {
    expect(renderStepDiff({ host: 'n2', status: 'changed', before: { present: false }, after: { present: true, prefix: 24 } })).toEqual([
      '--- n2 before',
      '+++ n2 after',
      '@@ -1,1 +1,2 @@',
      '-present: false',
      '+prefix: 24',
      '+present: true',
    ]);
  });

  it('an export changed: only the differing field is marked, the rest is context; keys sorted so order does not matter', () => {
    const before = { provider: 'ganesha', exportId: 101, activePath: null };
    const after = { exportId: 101, activePath: '/srv/disk1', provider: 'ganesha' };
    expect(renderStepDiff({ host: 'n2', status: 'changed', before, after })).toEqual([
      '--- n2 before',
      '+++ n2 after',
      '@@ -1,3 +1,3 @@',
      '-activePath: null',
      '+activePath: /srv/disk1',
      ' exportId: 101',
      ' provider: ganesha',
    ]);
  });

  it('kernel export options per client: nested state, the changed client only', () => {
    const before = { provider: 'kernel', path: '/srv/a', clients: { '198.18.0.0/15': ['rw', 'sync'], 'c1': ['ro'] } };
    const after = { provider: 'kernel', path: '/srv/a', clients: { '198.18.0.0/15': ['rw', 'sync'], 'c1': ['rw'] } };
    const d = renderStepDiff({ host: 'n1', status: 'changed', before, after });
    expect(d.filter((l) => /^[-+][^-+]/.test(l))).toEqual(['-    - ro', '+    - rw']);
  });

  it('far-apart changes make separate hunks with 3 lines of context', () => {
    const a = Array.from({ length: 20 }, (_, i) => `l${i}`);
    const b = a.map((l, i) => (i === 2 || i === 17 ? `${l}x` : l));
    const d = unifiedDiff(a, b, { from: 'a', to: 'b' });
    expect(d.filter((l) => l.startsWith('@@'))).toEqual(['@@ -1,6 +1,6 @@', '@@ -15,6 +15,6 @@']);
    expect(unifiedDiff(a, a, { from: 'a', to: 'b' })).toEqual([]);
    expect(diffLines(['x'], []).map((o) => o.op + o.line)).toEqual(['-x']);
  });

  it('secrets: secret-named fields and known secret values are masked', () => {
    const r = new Redactor();
    r.add('hunter2-value');
    const d = renderStepDiff(
      { host: 'n1', status: 'changed', before: { power: 'on', password: 'p4ss', note: 'uses hunter2-value' }, after: { power: 'off', password: 'p4ss', note: 'uses hunter2-value' } },
      (s) => r.redact(s),
    );
    expect(d.join('\n')).not.toMatch(/p4ss|hunter2/);
    expect(d).toContain(' password: \'********\'');
    expect(stateLines({})).toEqual(['(nothing)']);
  });

  it('check mode: the state now and the commands that would change it', () => {
    const d = renderStepDiff({ host: 'n2', status: 'would-change', before: { present: false }, commands: [['ip', 'addr', 'add', '198.18.131.200/24', 'dev', 'eth0']] });
    expect(d).toEqual(['--- n2 now', ' present: false', '+++ would run on n2', '+$ ip addr add 198.18.131.200/24 dev eth0']);
  });

  it('the line reporter prints the diff under the step, not the raw JSON, and nothing for an ok step', () => {
    const out: string[] = [];
    const rep = new LineReporter((l) => out.push(l), true);
    const vip = ref('n2', 'raise the VIP', 'raise_vip');
    const ev: EngineEvent[] = [
      { type: 'step-end', step: vip, status: 'changed', durationMs: 5, before: { present: false }, after: { present: true, prefix: 24 } },
      { type: 'step-end', step: ref('n2', 'mount', 'mount'), status: 'ok', durationMs: 1, before: { mounted: true } },
    ];
    ev.forEach((e) => rep.onEvent(e));
    expect(out[0]).toContain('raise the VIP');
    expect(out[0]).toContain('\n      -present: false\n      +prefix: 24\n      +present: true');
    expect(out[0]).not.toContain('{"present"');
    expect(out[1]!.split('\n')).toHaveLength(1);
  });
});
