import { describe, expect, it } from 'vitest';
import { checkRenderedArgs } from '../../src/engine/args-check.js';
import { defaultRegistry } from '../../src/steps/registry.js';

// The run-time check of a step's arguments once rendered (src/engine/args-check.ts).

describe('rendered arguments', () => {
  it('a number given as a string (an -e value) is taken where an argument wants a number, as Ansible modules take it', async () => {
    // Before: node-failover -e fence_timeout=60 stopped at "/timeout must be number".
    const registry = defaultRegistry();
    await registry.ensureLoaded();
    const fenceArgs: Record<string, unknown> = { target: 'n1', provider: 'ipmi', timeout: '60' };
    expect(checkRenderedArgs(registry, 'fence', fenceArgs)).toBeUndefined();
    expect(fenceArgs.timeout).toBe(60);
    const garpArgs: Record<string, unknown> = { address: '198.18.0.10', interface: 'eth0', count: '3' };
    expect(checkRenderedArgs(registry, 'garp', garpArgs)).toBeUndefined();
    expect(garpArgs.count).toBe(3);
    // Not a number, or a fraction where an integer is wanted: still refused, as before.
    expect(checkRenderedArgs(registry, 'fence', { target: 'n1', timeout: 'sixty' })).toMatch(/timeout/);
    expect(checkRenderedArgs(registry, 'garp', { address: '198.18.0.10', interface: 'eth0', count: '2.5' })).toMatch(/count/);
  });

});
