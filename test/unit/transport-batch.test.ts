/** Several commands in one exec: each command's own exit status, stdout and stderr come back. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { batchArgv, batchCommandsOf, commandsOfBatch, parseBatch, runBatch, type BatchCommand } from '../../src/transport/batch.js';
import { answerBatches } from '../helpers/fake-batch.js';
import { LocalTransport } from '../../src/transport/local.js';

const local = new LocalTransport('local');
const run = (argv: string[], opts?: { stdin?: string | Buffer }) => local.exec(argv, opts);

describe('runBatch', () => {
  it('gives each command its own exit status, stdout (byte for byte) and stderr; stdin goes to the one that asks', async () => {
    const cmds: BatchCommand[] = [
      { argv: ['sh', '-c', 'cat; echo err1 >&2', 'x'], stdin: true },
      { argv: ['printf', '%s', 'no newline'] },
      { argv: ['sh', '-c', 'printf "%s\\n\\n" "$1"; echo bad >&2; exit 3', 'x', "it's $(reboot) `id`"], mayFail: true },
    ];
    const r = await runBatch(run, cmds, { stdin: 'from stdin\n' });
    expect(r.map((x) => [x.code, x.stdout, x.stderr])).toEqual([
      [0, 'from stdin\n', 'err1\n'],
      [0, 'no newline', ''],
      // A value is data: quotes, $(…) and backquotes reach the command as written.
      [3, "it's $(reboot) `id`\n\n", 'bad\n'],
    ]);
  });

  it('stops after the first command that fails, unless it may fail', async () => {
    const r = await runBatch(run, [{ argv: ['true'] }, { argv: ['sh', '-c', 'echo no >&2; exit 4'] }, { argv: ['touch', '/nonexistent-dir/never'] }]);
    expect(r.map((x) => x.code)).toEqual([0, 4]);
    expect(r[1]!.stderr).toBe('no\n');
  });

  it('a command that is not there fails like one run alone (127), and nothing reads stdin that did not ask', async () => {
    const r = await runBatch(run, [{ argv: ['baton-no-such-command'], mayFail: true }, { argv: ['cat'] }], { stdin: 'secret\n' });
    expect(r[0]!.code).toBe(127);
    expect(r[1]).toMatchObject({ code: 0, stdout: '' });
  });
});

describe('a batch of one command', () => {
  it('is that command, run without a shell around it; its failure is still the caller\'s to judge', async () => {
    const seen: string[][] = [];
    // Like a step's ctx.run: a status outside okCodes throws.
    const strict = async (argv: string[], opts?: { okCodes?: readonly number[]; stdin?: string | Buffer }) => {
      seen.push(argv);
      const r = await local.exec(argv, opts);
      if (!(opts?.okCodes ?? [0]).includes(r.code!)) throw new Error(`exit ${r.code}`);
      return r;
    };
    const argv = ['sh', '-c', 'cat; echo err >&2; exit 5', 'x'];
    const [r] = await runBatch(strict, [{ argv, stdin: true, mayFail: true }], { stdin: 'in\n' });
    expect(seen).toEqual([argv]);
    expect(r).toMatchObject({ argv, code: 5, stdout: 'in\n', stderr: 'err\n' });
    const [absent] = await runBatch(strict, [{ argv: ['baton-no-such-command'], mayFail: true }]);
    expect(absent!.code).toBe(127);
  });
});

describe('commandsOfBatch and the tests\' fake (test/helpers/fake-batch.ts)', () => {
  it('recovers every argv, and the fake frames its answers exactly as the real script does', async () => {
    const cmds: BatchCommand[] = [{ argv: ['printf', '%s\\n', "a 'quoted' $(x)"] }, { argv: ['sh', '-c', 'echo e >&2;\nexit 2', 'it\'s'], mayFail: true }, { argv: ['false'] }, { argv: ['echo', 'never'] }];
    expect(commandsOfBatch(batchArgv(cmds))).toEqual(cmds.map((c) => c.argv));
    expect(batchCommandsOf(batchArgv(cmds))?.map((c) => Boolean(c.mayFail))).toEqual([false, true, false, false]);
    const real = await runBatch(run, cmds);
    const fake = answerBatches((argv) => {
      const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
      return { argv, code: r.status, signal: null, stdout: r.stdout, stderr: r.stderr, timedOut: false, durationMs: 1 };
    })(batchArgv(cmds));
    const strip = (rs: Array<{ code: number | null; stdout: string; stderr: string }>) => rs.map((r) => [r.code, r.stdout, r.stderr]);
    expect(strip(parseBatch(cmds, fake))).toEqual(strip(real));
    expect(real).toHaveLength(3);
  });
});
