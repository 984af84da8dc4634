/**
 * A terminal for tests that need a real one (the live tree, a prompt typed at): one tmux server
 * of the test's own (`-L SOCKET`), one session on it, its screen read back.
 */
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface TestTerminal {
  tmux(...args: string[]): Promise<{ stdout: string }>;
  /** Start `command` in the session (160×50); the pane stays after it ends. */
  start(command: string): Promise<void>;
  screen(): Promise<string>;
  /** Wait until the screen matches; the screen as it was when it did (or a failure showing it). */
  waitForScreen(re: RegExp, timeoutMs?: number): Promise<string>;
  type(...keys: string[]): Promise<void>;
  /** The server killed and its socket file removed. */
  close(): Promise<void>;
}

/** Fails (saying what to install) when tmux is missing. */
export async function requireTmux(): Promise<void> {
  await execFileP('tmux', ['-V']).catch(() => {
    throw new Error('tmux is missing: run scripts/install-test-deps.sh');
  });
}

export function testTerminal(socket: string, session: string): TestTerminal {
  const tmux = (...args: string[]) => execFileP('tmux', ['-L', socket, ...args]);
  const screen = async () => (await tmux('capture-pane', '-p', '-J', '-t', session, '-S', '-200')).stdout;
  return {
    tmux,
    start: async (command) => void (await tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '50', command)),
    screen,
    async waitForScreen(re, timeoutMs = 15_000) {
      const until = Date.now() + timeoutMs;
      let last = '';
      while (Date.now() < until) {
        last = await screen();
        if (re.test(last)) return last;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`the terminal never showed ${re} within ${timeoutMs} ms; it shows:\n${last}`);
    },
    type: async (...keys) => void (await tmux('send-keys', '-t', session, ...keys)),
    async close() {
      await tmux('kill-server').catch(() => undefined);
      // A killed server leaves its socket file behind.
      rmSync(path.join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, socket), { force: true });
    },
  };
}
