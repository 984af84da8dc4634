/**
 * The client half of the node's command agent (transport/ssh-agent-mux.ts) against a fake
 * channel: what it writes, and how it routes the frames it reads. The agent itself runs for real
 * in test/integration/ssh-transport.test.ts.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, test } from 'vitest';
import { readAddresses } from '../../src/facts/net.js';
import { readGaneshaExports, readGaneshaScope } from '../../src/facts/nfs.js';
import { readStorageView, runnerOf } from '../../src/facts/storage.js';
import type { StepContext } from '../../src/steps/contract.js';
import { vipHeldBy } from '../../src/steps/raise-vip.js';
import { AgentSession, type AgentChannel } from '../../src/transport/ssh-agent-mux.js';
import type { ExecOptions } from '../../src/transport/transport.js';

const B = '--baton-agent-test--';

class FakeChannel extends EventEmitter implements AgentChannel {
  writes: string[] = [];
  stderr = new EventEmitter();
  write(data: string): boolean {
    this.writes.push(data);
    return true;
  }
  end(): void {}
  close(): void {
    this.emit('close');
  }
}

const frame = (id: number, code: number, out: string, err = '') => `\n${B} ${id} c ${code}\n${out}\n${B} e\n${err}\n${B} .\n`;
const turn = () => new Promise((r) => setImmediate(r));

async function started(): Promise<{ ch: FakeChannel; s: AgentSession }> {
  const ch = new FakeChannel();
  const p = AgentSession.start(ch, B, () => undefined);
  ch.emit('data', Buffer.from(`${B} ready\n`));
  return { ch, s: await p };
}

describe('agent session', () => {
  test('commands asked for in one turn of the event loop leave in one write, in order, a kill after its command', async () => {
    const { ch, s } = await started();
    const a = s.run(['ip', '-o', 'addr', 'show']);
    const b = s.run(['findmnt', '-J']);
    s.kill(a, 5);
    expect(ch.writes, 'nothing is written before the turn is over').toEqual([]);
    await turn();
    expect(ch.writes).toHaveLength(1);
    const lines = ch.writes[0]!.split('\n').filter(Boolean);
    expect(lines.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([`R ${a.id}`, `R ${b.id}`, `K ${a.id}`]);
    // A later command is a write of its own.
    s.run(['true']);
    await turn();
    expect(ch.writes).toHaveLength(2);
    // Two results in one read each reach their own caller.
    ch.emit('data', Buffer.from(frame(b.id, 0, '[]') + frame(a.id, 1, '', 'no')));
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect([ra.code, ra.stderr.toString()]).toEqual([1, 'no']);
    expect([rb.code, rb.stdout.toString()]).toEqual([0, '[]']);
  });

  test('a read asked again in the same turn runs once and answers both; asked in a later turn, or changing something, it runs again', async () => {
    const { ch, s } = await started();
    const view = ['sh', '-c', 'cat /proc/self/mountinfo', 'baton-storage-view'];
    const a = s.run(view, {}, true);
    const b = s.run(view, {}, true);
    const other = s.run(view, { LC_ALL: 'C' }, true);
    const change = s.run(['umount', '/srv/a']);
    const again = s.run(['umount', '/srv/a']);
    await turn();
    const ids = ch.writes[0]!.split('\n').filter(Boolean).map((l) => Number(l.split(' ')[1]));
    expect(ids).toEqual([a.id, other.id, change.id, again.id]);
    expect(b.id).toBe(a.id);
    ch.emit('data', Buffer.from(frame(a.id, 0, 'mounts')));
    expect([(await a.done).stdout.toString(), (await b.done).stdout.toString()]).toEqual(['mounts', 'mounts']);
    // The same read a turn later is a new command: it must see what happened since.
    const later = s.run(view, {}, true);
    await turn();
    expect(later.id).not.toBe(a.id);
    expect(ch.writes[1]).toMatch(new RegExp(`^R ${later.id} `));
  });

  test('a shared read is killed only once every caller gave up on it', async () => {
    const { ch, s } = await started();
    const a = s.run(['ip', '-o', 'addr', 'show'], {}, true);
    const b = s.run(['ip', '-o', 'addr', 'show'], {}, true);
    await turn();
    s.kill(a, 5);
    s.forget(a);
    await turn();
    expect(ch.writes, 'the other caller still waits for it').toHaveLength(1);
    s.kill(b, 5);
    await turn();
    expect(ch.writes[1]).toBe(`K ${a.id} 5\n`);
  });

  test('a channel that closes before the turn is over: the commands fail, nothing is written', async () => {
    const { ch, s } = await started();
    const a = s.run(['true']);
    ch.close();
    await expect(a.done).rejects.toThrow(/channel closed/);
    await turn();
    expect(ch.writes).toEqual([]);
  });

  test('the facts a group move asks of a node many times over ask to share; changes never do', async () => {
    const asked: Array<[string, ExecOptions | undefined]> = [];
    const ctx = {
      run: async (argv: string[], opts?: ExecOptions) => {
        asked.push([argv[0] === 'sh' ? argv[3]! : argv.slice(0, 2).join(' '), opts]);
        return { argv, code: 0, signal: null, stdout: '', stderr: '', timedOut: false, durationMs: 1 };
      },
    } as unknown as StepContext;
    await readStorageView(runnerOf(ctx));
    await readAddresses(ctx, 'eth0');
    await vipHeldBy(ctx, { address: '198.18.0.200' });
    await readGaneshaExports(ctx);
    await readGaneshaScope(ctx);
    expect(asked.map(([what, o]) => [what, o?.shared])).toEqual([
      ['baton-storage-view', true],
      ['ip -o', true],
      ['ip -o', true],
      ['dbus-send --system', true],
      ['baton-ganesha-conf', true],
    ]);
  });
});
