import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { ChannelQueue } from '../../src/transport/channel-queue.js';
import { LocalTransport } from '../../src/transport/local.js';

describe('LocalTransport', () => {
  const t = new LocalTransport('localhost', { killGraceMs: 300 });

  test('argv, stdin, env, exit code', async () => {
    const r = await t.exec(['sh', '-c', 'cat; printf "%s" "$X" >&2; exit 4'], { stdin: 'in', env: { X: '$(nope)' } });
    expect(r).toMatchObject({ code: 4, stdout: 'in', stderr: '$(nope)', timedOut: false, signal: null });
  });

  test('a missing program is exit 127 with a reason, not a crash', async () => {
    const r = await t.exec(['/nonexistent/baton-nothing']);
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/ENOENT/);
  });

  test('a timeout kills the whole process group', async () => {
    const marker = `0.${Date.now()}${process.pid}1`;
    const r = await t.exec(['sh', '-c', 'sleep 300 "$1"; echo survived', 'sh', marker], { timeoutMs: 300 });
    expect(r.timedOut).toBe(true);
    expect(r.code).toBeNull();
    expect(r.stdout).toBe('');
    await new Promise((res) => setTimeout(res, 100));
    expect(() => execFileSync('pgrep', ['-f', marker])).toThrow();
  });

  test('a process ignoring TERM is KILLed after the grace', async () => {
    const started = Date.now();
    const r = await t.exec(['sh', '-c', 'trap "" TERM; sleep 30'], { timeoutMs: 200 });
    expect(r.timedOut).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('abort signal', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await t.exec(['sleep', '30'], { signal: ac.signal });
    expect(r.timedOut).toBe(true);
  });
});

describe('ChannelQueue', () => {
  test('never more than max at once, one slot kept for urgent work', async () => {
    const q = new ChannelQueue(3);
    const releases = await Promise.all([q.acquire(), q.acquire()]);
    let third = false;
    void q.acquire().then(() => (third = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(third).toBe(false);
    const urgent = await q.acquire(true);
    expect(q.active).toBe(3);
    urgent();
    releases[0]!();
    await new Promise((r) => setTimeout(r, 0));
    expect(third).toBe(true);
    expect(q.peakInUse).toBe(3);
  });
});
