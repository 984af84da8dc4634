import { afterEach, describe, expect, it, vi } from 'vitest';

// The drill's iSCSI reader when logins are slower than its bound on an attempt (a target busy
// taking over): an attempt gives up, the next starts another login, and the first login ends
// later. A fake login stands in for the network: each ends after `loginMs`.
const fake = vi.hoisted(() => ({ loginMs: 0, sessions: [] as Array<{ closed: boolean; loggedOut: boolean }> }));
vi.mock('../../src/net/iscsi/session.js', () => ({
  iscsiLogin: async () => {
    await new Promise((r) => setTimeout(r, fake.loginMs));
    const s = {
      closed: false,
      loggedOut: false,
      readCapacity: async () => ({ blockSize: 512, blocks: 100 }),
      read: async (_lun: number, _lba: number, blocks: number, blockSize: number) => {
        if (blockSize !== 512) throw new Error(`read built with block size ${blockSize}`);
        return Buffer.alloc(blocks * blockSize, 7);
      },
      close: () => void (s.closed = true),
      logout: async () => void (s.loggedOut = true),
    };
    fake.sessions.push(s);
    return s;
  },
}));

const { IscsiBlockReader } = await import('../../src/drill/iscsi-probe.js');

afterEach(() => {
  fake.sessions.length = 0;
});

describe("the drill's iSCSI reader", () => {
  it('a login that ends after its attempt was given up is closed, not left logged in on the target', async () => {
    const reader = new IscsiBlockReader({ host: '198.18.0.210', port: 3260, iqn: 'iqn.2026-11.x:a', lun: 1, lba: 0, blocks: 1, readTimeoutMs: 100 });
    fake.loginMs = 250;
    expect((await reader.attempt()).ok).toBe(false);
    expect((await reader.attempt()).ok).toBe(false);
    fake.loginMs = 0;
    await new Promise((r) => setTimeout(r, 400));
    // Both slow logins ended meanwhile. Before: each set itself as the reader's session, the
    // second over the first, which stayed logged in for the rest of the drill.
    expect(fake.sessions).toHaveLength(2);
    const r = await reader.attempt();
    expect(r.ok).toBe(true);
    await reader.close();
    expect(fake.sessions.every((s) => s.closed || s.loggedOut), JSON.stringify(fake.sessions)).toBe(true);
  });
});
