/**
 * The node half of the command agent (transport/ssh-agent-script.ts), both of them, run here by
 * the local python3 and perl with pipes standing in for the SSH channel (no root, no sshd). Over SSH it is run in
 * test/integration/ssh-transport.test.ts.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { AgentParser, killLine, runLine, type AgentFrame } from '../../src/transport/ssh-agent-mux.js';
import { batchArgv, parseBatch, type BatchCommand } from '../../src/transport/batch.js';
import { AGENT_PYTHON, AGENT_SCRIPT } from '../../src/transport/ssh-agent-script.js';

const B = '--baton-agent-unit--';

describe.each([
  ['Python', '/usr/bin/python3', ['-I', '-S', '-c', AGENT_PYTHON, 'perl', AGENT_SCRIPT, B]],
  ['Perl', 'perl', ['-e', AGENT_SCRIPT, '--', B]],
])('the %s node agent', (_name, interpreter, args) => {
  test('a reader that falls behind (a busy sshd) while commands end around it: the agent waits, loses nothing and stays up', async () => {
    const agent = spawn(interpreter, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      const frames: AgentFrame[] = [];
      let ready = false;
      const parser = new AgentParser(B, () => (ready = true), (f) => frames.push(f));
      // Nobody reads the agent's stdout for a while: its write of a 300 kB result blocks on the
      // full pipe, and the 59 commands ending meanwhile each send it a SIGCHLD. Before, the first
      // one interrupted the write (EINTR), and the agent took that for a closed channel and exited:
      // every command in flight on the node was then reported lost, and the run rolled back.
      agent.stdout.pause();
      const lines = [runLine(1, ['sh', '-c', 'head -c 300000 /dev/zero | tr "\\0" a'])];
      for (let i = 2; i < 61; i++) lines.push(runLine(i, ['sh', '-c', `sleep 0.0${i % 10}; echo ${i}`]));
      agent.stdin.write(lines.join(''));
      await new Promise((r) => setTimeout(r, 1500));
      agent.stdout.on('data', (b: Buffer) => parser.push(b));
      agent.stdout.resume();
      for (let i = 0; i < 100 && frames.length < 60; i++) await new Promise((r) => setTimeout(r, 50));
      expect(agent.exitCode, 'the agent is still up').toBeNull();
      expect(ready).toBe(true);
      expect(frames).toHaveLength(60);
      const big = frames.find((f) => f.id === 1)!;
      expect([big.code, big.stdout.length]).toEqual([0, 300_000]);
      for (const f of frames.filter((x) => x.id !== 1)) expect(f.stdout.toString().trim()).toBe(String(f.id));
      // And it still takes commands.
      agent.stdin.write(runLine(99, ['echo', 'after']));
      for (let i = 0; i < 100 && !frames.some((f) => f.id === 99); i++) await new Promise((r) => setTimeout(r, 20));
      expect(frames.find((f) => f.id === 99)?.stdout.toString()).toBe('after\n');
    } finally {
      agent.kill('SIGKILL');
    }
  }, 20_000);

  /** Starts the agent, sends the lines, and collects frames until `want` ids have answered. */
  async function frames(lines: string[], want: number[]): Promise<{ frames: AgentFrame[]; alive: boolean }> {
    const agent = spawn(interpreter, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      const got: AgentFrame[] = [];
      const parser = new AgentParser(B, () => undefined, (f) => got.push(f));
      agent.stdout.on('data', (b: Buffer) => parser.push(b));
      agent.stdin.write(lines.join(''));
      for (let i = 0; i < 200 && !want.every((id) => got.some((f) => f.id === id)); i++) await new Promise((r) => setTimeout(r, 20));
      return { frames: got, alive: agent.exitCode === null };
    } finally {
      agent.kill('SIGKILL');
    }
  }

  test('a script without #! runs with /bin/sh, as execvp runs it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-agent-'));
    try {
      const script = path.join(dir, 'no-shebang');
      writeFileSync(script, 'echo "ran as a shell script: $1"\n', { mode: 0o755 });
      const { frames: got } = await frames([runLine(1, [script, 'yes'])], [1]);
      expect(got.map((f) => [f.code, f.stdout.toString()])).toEqual([[0, 'ran as a shell script: yes\n']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an argument the kernel cannot take (a NUL byte) fails that command only: the agent answers the next', async () => {
    const { frames: got, alive } = await frames([runLine(1, ['printf', 'a\0b']), runLine(2, ['echo', 'next'])], [1, 2]);
    expect(alive).toBe(true);
    expect(got.find((f) => f.id === 2)?.stdout.toString()).toBe('next\n');
    expect(got.some((f) => f.id === 1)).toBe(true);
  });

  test('a batch is run by the agent itself, command by command, and reads back as its sh script would', async () => {
    const cases: BatchCommand[][] = [
      [{ argv: ['echo', 'one'] }, { argv: ['sh', '-c', 'printf "two\\n"; echo oops >&2; exit 3'], mayFail: true }, { argv: ['sh', '-c', 'echo three; exit 4'] }, { argv: ['echo', 'never'] }],
      [{ argv: ['printf', "it's \\n '%s'", 'a b'] }, { argv: ['no-such-command-here'] }, { argv: ['echo', 'never'] }],
      [{ argv: ['sh', '-c', 'kill -TERM $$'], mayFail: true }, { argv: ['sh', '-c', 'cat; echo "$X"'], stdin: true }],
    ];
    const env = { X: 'from the env' };
    // The second of each pair as the sh script itself: what every batch was before.
    const asScript = cases.map((c, i) => `R ${20 + i} ${[...Object.entries(env).map(([k, v]) => `${k}=${v}`), '--', ...batchArgv(c)].map((w) => Buffer.from(w).toString('hex')).join(' ')}\n`);
    expect(runLine(10, batchArgv(cases[0]!), env).startsWith('Q 10 '), 'a batch goes as Q').toBe(true);
    const { frames: got } = await frames([...cases.map((c, i) => runLine(10 + i, batchArgv(c), env)), ...asScript], [10, 11, 12, 20, 21, 22]);
    const read = (id: number, c: BatchCommand[]) => {
      const f = got.find((x) => x.id === id)!;
      return { code: f.code, results: parseBatch(c, { argv: [], code: f.code, signal: null, stdout: f.stdout.toString(), stderr: f.stderr.toString(), timedOut: false, durationMs: 0 }).map((r) => ({ code: r.code, stdout: r.stdout, stderr: r.stderr.replace(/^.*not found\n$|^.*No such file or directory\n$/, 'NOT FOUND').replace(/^Terminated\n$/, '') })) };
    // (dash also says "Terminated" of a child killed by a signal: the status says it already.)
    };
    cases.forEach((c, i) => expect(read(10 + i, c), `batch ${i}`).toEqual(read(20 + i, c)));
    expect(read(10, cases[0]!).results.map((r) => [r.code, r.stdout])).toEqual([[0, 'one\n'], [3, 'two\n'], [4, 'three\n']]);
    expect(read(11, cases[1]!).results.map((r) => r.code)).toEqual([0, 127]);
    expect(read(12, cases[2]!).results.map((r) => [r.code, r.stdout])).toEqual([[143, ''], [0, 'from the env\n']]);
  });

  test('a batch killed mid-way runs nothing after the command it killed', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-agent-'));
    const agent = spawn(interpreter, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      const got: AgentFrame[] = [];
      const parser = new AgentParser(B, () => undefined, (f) => got.push(f));
      agent.stdout.on('data', (b: Buffer) => parser.push(b));
      const after = path.join(dir, 'after');
      const cmds: BatchCommand[] = [{ argv: ['echo', 'first'] }, { argv: ['sh', '-c', 'trap "" TERM; echo started; sleep 5'] }, { argv: ['touch', after] }];
      agent.stdin.write(runLine(1, batchArgv(cmds)));
      await new Promise((r) => setTimeout(r, 300));
      agent.stdin.write(killLine(1, 5));
      for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200));
      expect(got.map((f) => [f.id, f.signal])).toEqual([[1, 'SIGTERM']]);
      expect(existsSync(after), 'the command after the killed one never ran').toBe(false);
      // As the batch's sh answered: a result for what ended before the kill, none for the killed
      // command (sh died before its status line), even one that ignores TERM and dies of KILL.
      const f = got[0]!;
      const results = parseBatch(cmds, { argv: [], code: f.code, signal: f.signal, stdout: f.stdout.toString(), stderr: f.stderr.toString(), timedOut: false, durationMs: 0 });
      expect(results.map((r) => [r.code, r.stdout])).toEqual([[0, 'first\n']]);
    } finally {
      agent.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
