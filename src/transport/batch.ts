/**
 * Several commands in one exec. Each round trip to a node is time the clients of a failover
 * wait (10–20 ms over SSH on a loaded lab node, against 1–3 ms for the command itself), so a
 * step that must run three commands in a row sends them as one `sh -c` script and gets each
 * command's exit status, stdout and stderr back, as if it had run them one by one.
 *
 * Every argument is single-quoted (quote.ts): values are data, never shell code. The commands
 * run in order; the batch stops after the first one that fails unless that one is marked
 * `mayFail` (its result is then the caller's to judge). Commands after a stop have no result.
 * One command may take the batch's stdin (`stdin: true`); the others read /dev/null.
 */
import { quoteArgv } from './quote.js';
import { ANY_EXIT_STATUS, type ExecOptions, type ExecResult } from './transport.js';

export interface BatchCommand {
  argv: string[];
  /** The batch goes on when this one fails (the caller reads its exit status). */
  mayFail?: boolean;
  /** This command reads the batch's stdin. */
  stdin?: boolean;
}

const mark = (what: string, i: number) => `--baton-batch-${what}-${i}--`;

/** The `sh -c` script for the commands, and its argv. */
export function batchArgv(commands: BatchCommand[]): string[] {
  const lines = commands.map((c, i) => {
    const run = `${quoteArgv(c.argv)}${c.stdin ? '' : ' </dev/null'}`;
    const stop = c.mayFail ? '' : ' [ "$rc" -eq 0 ] || exit 0;';
    return `printf '\\n%s\\n' '${mark('out', i)}'; printf '\\n%s\\n' '${mark('err', i)}' >&2; ${run}; rc=$?; printf '\\n%s %s\\n' '${mark('rc', i)}' "$rc";${stop}`;
  });
  return ['sh', '-c', lines.join('\n'), 'baton-batch'];
}

/** Split one stream by the batch's markers: the text each command wrote, by index. */
function sections(text: string, what: 'out' | 'err', n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const start = text.indexOf(`\n${mark(what, i)}\n`);
    if (start < 0) break;
    const from = start + mark(what, i).length + 2;
    const next = text.indexOf(`\n${mark(what, i + 1)}\n`, from);
    // Strip the newline the marker that follows put before itself.
    out.push(next < 0 ? text.slice(from) : text.slice(from, next));
  }
  return out;
}

/**
 * The result of each command that ran, in order. A command that did not run (an earlier one
 * failed) has no entry; a batch cut short (connection lost) ends at the last complete one.
 */
export function parseBatch(commands: BatchCommand[], r: ExecResult): ExecResult[] {
  const outs = sections(r.stdout, 'out', commands.length);
  const errs = sections(r.stderr, 'err', commands.length);
  const results: ExecResult[] = [];
  for (let i = 0; i < outs.length; i++) {
    let out = outs[i]!;
    const rc = new RegExp(`\\n${mark('rc', i)} (\\d+)\\n?$`).exec(out);
    if (!rc) break;
    out = out.slice(0, rc.index);
    results.push({
      argv: commands[i]!.argv,
      code: Number(rc[1]),
      signal: null,
      stdout: out,
      stderr: errs[i] ?? '',
      timedOut: false,
      durationMs: r.durationMs,
    });
  }
  return results;
}


/** Run the commands as one exec through `run` (a step's ctx.run); one result per command that ran. */
export async function runBatch(
  run: (argv: string[], opts?: ExecOptions & { okCodes?: readonly number[] }) => Promise<ExecResult>,
  commands: BatchCommand[],
  opts: { stdin?: string | Buffer } = {},
): Promise<ExecResult[]> {
  const only = commands.length === 1 ? commands[0]! : undefined;
  if (only && (opts.stdin === undefined || only.stdin)) {
    // A batch of one is that command, without a shell around it: one process fewer on the node.
    const r = await run(only.argv, { okCodes: ANY_EXIT_STATUS, ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}) });
    return [{ ...r, argv: only.argv }];
  }
  const r = await run(batchArgv(commands), opts.stdin !== undefined ? { stdin: opts.stdin } : {});
  return parseBatch(commands, r);
}

/**
 * The commands of a batch's argv, with their mayFail (for transports that answer commands one by
 * one, like tests' fakes). Reads the single-quoted words batchArgv wrote; a word may span lines.
 */
export function batchCommandsOf(argv: readonly string[]): BatchCommand[] | undefined {
  if (argv[0] !== 'sh' || argv[1] !== '-c' || argv[3] !== 'baton-batch') return undefined;
  const script = argv[2]!;
  const out: BatchCommand[] = [];
  for (let i = 0; ; i++) {
    const start = script.indexOf(`'${mark('err', i)}' >&2; `);
    if (start < 0) return out;
    let at = start + `'${mark('err', i)}' >&2; `.length;
    const words: string[] = [];
    while (script[at] === "'") {
      let word = '';
      for (;;) {
        const close = script.indexOf("'", at + 1);
        word += script.slice(at + 1, close);
        at = close + 1;
        if (!script.startsWith("\\''", at)) break;
        word += "'";
        at += 2; // at the opening quote of the rest of the word
      }
      words.push(word);
      if (script[at] === ' ' && script[at + 1] === "'") at++;
    }
    const stdin = !script.startsWith(' </dev/null', at);
    const lineEnd = script.indexOf('\n', script.indexOf(`'${mark('rc', i)}'`));
    const rest = script.slice(at, lineEnd < 0 ? undefined : lineEnd);
    out.push({ argv: words, ...(rest.includes('|| exit 0;') ? {} : { mayFail: true }), ...(stdin ? { stdin: true } : {}) });
  }
}

/** The argv of each command of a batch's argv. */
export function commandsOfBatch(argv: readonly string[]): string[][] | undefined {
  return batchCommandsOf(argv)?.map((c) => c.argv);
}
