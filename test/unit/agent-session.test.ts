/**
 * The client half of the node's command agent (transport/ssh-agent-mux.ts) against a fake
 * channel: what it writes, and how it routes the frames it reads. The agent itself runs for real
 * in test/integration/ssh-transport.test.ts.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, test } from 'vitest';
import { AgentSession, type AgentChannel } from '../../src/transport/ssh-agent-mux.js';

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
    s.kill(a.id, 5);
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

  test('a channel that closes before the turn is over: the commands fail, nothing is written', async () => {
    const { ch, s } = await started();
    const a = s.run(['true']);
    ch.close();
    await expect(a.done).rejects.toThrow(/channel closed/);
    await turn();
    expect(ch.writes).toEqual([]);
  });
});
