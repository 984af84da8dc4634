import { batchSegments, commandsOfBatch } from '../../src/transport/batch.js';
import type { ExecResult } from '../../src/transport/transport.js';

/**
 * For fake transports that answer one argv at a time: answer a runBatch exec by answering each
 * of its commands in turn, stopping as the real script does, and framing the answers as it would.
 */
export function answerBatches(answer: (argv: string[]) => ExecResult): (argv: string[]) => ExecResult {
  return (argv) => {
    const cmds = commandsOfBatch(argv);
    if (!cmds) return answer(argv);
    const mayFail = batchSegments(argv[2]!).map((line) => !line.endsWith('|| exit 0;'));
    let stdout = '';
    let stderr = '';
    for (const [i, c] of cmds.entries()) {
      const r = answer(c);
      stdout += `\n--baton-batch-out-${i}--\n${r.stdout}\n--baton-batch-rc-${i}-- ${r.code ?? 1}\n`;
      stderr += `\n--baton-batch-err-${i}--\n${r.stderr}`;
      if (r.code !== 0 && !mayFail[i]) break;
    }
    return { argv, code: 0, signal: null, stdout, stderr, timedOut: false, durationMs: 1 };
  };
}
