import { describe, expect, it } from 'vitest';
import { recalled, remember } from '../../src/facts/remembered.js';
import { guardedPool } from '../../src/engine/locks/guard.js';
import { withBecomeKeyword } from '../../src/transport/become.js';
import type { Transport } from '../../src/transport/transport.js';

// What one step learned about a node (which arping it has) is there for the next step on the
// same connection: the views the engine hands steps (the locks' guard, become) must not hide it.
function fakeTransport(host: string): Transport & { ran: string[][] } {
  const ran: string[][] = [];
  return {
    host,
    kind: 'ssh',
    ran,
    connect: async () => {},
    close: async () => {},
    exec: async (argv) => {
      ran.push(argv);
      return { argv, code: 0, signal: null, stdout: '', stderr: '', timedOut: false, durationMs: 1 };
    },
  };
}

describe('facts remembered per connection', () => {
  it('survive from step to step through the lock guard, and run the guard before every command', async () => {
    const n1 = fakeTransport('n1');
    const n2 = fakeTransport('n2');
    let held = true;
    const pool = guardedPool({ get: async (h) => (h === 'n1' ? n1 : n2) }, () => {
      if (!held) throw new Error('lock lost');
    });
    const first = await pool.get('n1');
    remember(first, 'arping', 'iputils');
    // The next step gets its transport anew: the same connection, so the same fact.
    expect(recalled(await pool.get('n1'), 'arping')).toBe('iputils');
    expect(recalled(await pool.get('n2'), 'arping')).toBeUndefined();
    await (await pool.get('n1')).exec(['true']);
    held = false;
    await expect((await pool.get('n1')).exec(['false'])).rejects.toThrow('lock lost');
    expect(n1.ran).toEqual([['true']]);
  });

  it('survive through become, per user', async () => {
    const t = fakeTransport('n1');
    remember(withBecomeKeyword(t, { user: 'root' }), 'arping', 'habets');
    expect(recalled(withBecomeKeyword(t, { user: 'root' }), 'arping')).toBe('habets');
    expect(recalled(withBecomeKeyword(t, { user: 'nfs' }), 'arping')).toBeUndefined();
    expect(withBecomeKeyword(t, undefined)).toBe(t);
  });
});
