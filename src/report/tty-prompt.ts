/**
 * Asking a question while a listr2 tree is live. listr2 takes over stdout and stderr while it
 * renders (what is written there is held back until the tree ends), so a question printed by
 * readline would show only after the step, one step late. Instead the question goes through
 * listr2's own prompt line, which it draws under the tree at every refresh, and the keys are
 * read from stdin in raw mode and echoed on that line.
 */
import { emitKeypressEvents } from 'node:readline';
import { createInterface } from 'node:readline/promises';
import { ListrPromptAdapter, type ListrTaskWrapper } from 'listr2';

/** Where a prompt is drawn from; typed as listr2 needs, not as it is used. */
type Wrapper = ListrTaskWrapper<unknown, any, any>;

/** A shown cursor: listr2 hides the terminal's while it draws. */
const CURSOR = '\u2588';

/**
 * The answer as the caller reads it: trimmed, lower-cased, and a "no" (`n`, `no`) read as
 * "skip" — an operator who types no at 3 a.m. must never see the step run.
 */
export function normalise(typed: string): string {
  const a = typed.trim().toLowerCase();
  return a === 'n' || a === 'no' ? 'skip' : a;
}

class LinePrompt extends ListrPromptAdapter {
  run<T = string>(question: string, input: NodeJS.ReadStream = process.stdin): Promise<T> {
    return this.ask(question, input) as Promise<T>;
  }

  private async ask(question: string, input: NodeJS.ReadStream): Promise<string> {
    this.reportStarted();
    let typed = '';
    // The renderer starts listening for the prompt text at its next refresh: draw again shortly.
    const show = () => {
      this.task.promptOutput$ = `${question}${typed}${CURSOR}`;
    };
    show();
    const redraw = setInterval(show, 100);
    try {
      return await new Promise<string>((resolve) => {
        const wasRaw = input.isRaw;
        emitKeypressEvents(input);
        input.setRawMode?.(true);
        input.resume();
        const done = (answer: string) => {
          input.off('keypress', onKey);
          input.off('end', onEnd);
          input.setRawMode?.(wasRaw ?? false);
          input.pause();
          resolve(answer);
        };
        const onEnd = () => done('skip');
        const onKey = (str: string | undefined, key: { name?: string; ctrl?: boolean } | undefined) => {
          if (key?.ctrl && key.name === 'c') {
            // Raw mode swallows the signal: answer "skip" (never "yes") and raise it ourselves.
            done('skip');
            process.kill(process.pid, 'SIGINT');
          } else if (key?.ctrl && key.name === 'd') done('skip');
          else if (key?.name === 'return' || key?.name === 'enter') done(normalise(typed));
          else if (key?.name === 'backspace') typed = typed.slice(0, -1);
          else if (str && !key?.ctrl && str >= ' ') typed += str;
          show();
        };
        input.on('keypress', onKey);
        input.on('end', onEnd);
      });
    } finally {
      clearInterval(redraw);
      this.reportCompleted();
    }
  }
}

/** Ask under the live tree, on the line of `wrapper`'s task; resolves with the answer, trimmed and lower-cased. */
export function askBelowTree(wrapper: Wrapper, question: string): Promise<string> {
  return new LinePrompt(wrapper.task, wrapper).run<string>(question);
}

/** No tree on screen: an ordinary question on stderr. */
export async function askOnStderr(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return normalise(await rl.question(question));
  } finally {
    rl.close();
  }
}
