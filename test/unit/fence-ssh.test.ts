import { describe, expect, it, vi } from 'vitest';
import type { StepContext } from '../../src/steps/contract.js';
import { sshDriver } from '../../src/steps/fence/ssh.js';
import { UnreachableError, type ExecResult, type Transport } from '../../src/transport/transport.js';

// The ssh provider's only proof of "off" is a node that no longer answers SSH. A node that
// answers — whatever its exit status — is on; one that took the connection and then did not
// finish `true` in time is on-or-slow before baton sent the power-off, and off only after it.
// What was sent is remembered per target for the process (one run): each test fences its own.

function ctxAnswering(answer: Partial<ExecResult> | 'unreachable'): { ctx: StepContext; ran: string[][] } {
  const ran: string[][] = [];
  const transport = {
    host: 'n1',
    exec: async (argv: string[]): Promise<ExecResult> => {
      ran.push(argv);
      if (answer === 'unreachable') throw new UnreachableError('n1', 'connection lost');
      if (argv[0] !== 'true') return { argv, code: null, signal: null, stdout: '', stderr: '', timedOut: true, durationMs: 10_000 };
      return { argv, code: 0, signal: null, stdout: '', stderr: '', timedOut: false, durationMs: 1, ...answer };
    },
  } as unknown as Transport;
  const ctx = { transportFor: async () => transport } as unknown as StepContext;
  return { ctx, ran };
}

describe('fence provider ssh: reading the power', () => {
  it('a node that answers is on, whatever `true` exits with (sudo -n refusing it, say)', async () => {
    expect(await sshDriver('n1').status(ctxAnswering({ code: 0 }).ctx, 5000)).toBe('on');
    expect(await sshDriver('n1').status(ctxAnswering({ code: 1, stderr: 'sudo: a password is required' }).ctx, 5000)).toBe('on');
  });

  it('a node that took the connection but is too slow to run `true` is never read as off before the power-off', async () => {
    await expect(sshDriver('n1').status(ctxAnswering({ code: null, timedOut: true }).ctx, 5000)).rejects.toThrow(/cannot be read as off/);
  });

  it('after this driver sent the power-off, a connection that stops answering is the node gone, once the silence lasts', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const { ctx, ran } = ctxAnswering({ code: null, timedOut: true });
      const driver = sshDriver('n3');
      await driver.set(ctx, 'off', 5000);
      expect(ran[0]).toEqual(['sh', '-c', 'echo o > /proc/sysrq-trigger']);
      // Before: one slow answer was "off", and an overloaded node was taken for fenced.
      await expect(driver.status(ctx, 5000)).rejects.toThrow(/n3 has not answered since the power-off was sent .*off once that lasts 5 s/);
      vi.setSystemTime(Date.now() + 5000);
      expect(await driver.status(ctx, 5000)).toBe('off');
      // The fence's own check after its apply uses a driver of its own: it knows the power-off was sent.
      expect(await sshDriver('n3').status(ctx, 5000)).toBe('off');
    } finally {
      vi.useRealTimers();
    }
  });

  it('a node that cannot be reached before the power-off is not off: a partition looks the same', async () => {
    // Before: "off" at once, nothing sent, and the engine excused the node as fenced while it
    // may still have served behind the partition.
    await expect(sshDriver('n1').status(ctxAnswering('unreachable').ctx, 5000)).rejects.toThrow(/n1 cannot be reached over SSH .*partition/);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const { ctx } = ctxAnswering('unreachable');
      const driver = sshDriver('n4');
      await driver.set(ctx, 'off', 5000);
      await expect(driver.status(ctx, 5000)).rejects.toThrow(/cannot be reached since the power-off/);
      vi.setSystemTime(Date.now() + 5000);
      expect(await driver.status(ctx, 5000)).toBe('off');
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('fence provider ssh: a connection slow to open', () => {
  it('before the power-off, waits for the connection: a node that answers late is on, never off for being slow', async () => {
    const transport = { host: 'n1', exec: async (argv: string[]) => ({ argv, code: 0, signal: null, stdout: '', stderr: '', timedOut: false, durationMs: 1 }) } as unknown as Transport;
    const ctx = { transportFor: () => new Promise<Transport>((r) => setTimeout(() => r(transport), 300)) } as unknown as StepContext;
    expect(await sshDriver('n1').status(ctx, 200)).toBe('on');
  });
});
