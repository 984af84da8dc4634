import { describe, expect, it } from 'vitest';
import { catalog } from '../../src/steps/catalog.js';
import { allKinds } from '../../src/steps/index.js';
import { defaultRegistry } from '../../src/steps/registry.js';

describe('the step catalog', () => {
  it('lists exactly the kinds steps/index.ts ships, with the role each kind declares', async () => {
    const declared = Object.fromEntries(allKinds.map((k) => [k.kind, k.role ?? 'neutral']));
    expect(Object.fromEntries(catalog.map((e) => [e.kind, e.role]))).toEqual(declared);
    for (const e of catalog) expect((await e.load()).kind).toBe(e.kind);
  });

  it('the default registry knows every kind before loading any, and hands them out once loaded', async () => {
    const r = defaultRegistry();
    expect(r.kinds()).toEqual(catalog.map((e) => e.kind).sort());
    expect(r.roleOf('raise_vip')).toBe('takeover');
    await r.ensureLoaded();
    expect(r.get('raise_vip')?.kind).toBe('raise_vip');
    expect(r.get('no_such_kind')).toBeUndefined();
  });
});
