/**
 * `--step` on a real terminal (tmux): the live tree is on screen and the question for each
 * change shows under it at once — before the step runs, not one step late — and the answer
 * typed decides: `y` runs the step, `n` or `s` skips it. Three reversible local steps (no root).
 *
 * The run is the real `baton run --step --yes` on the local transport, with the TtyReporter.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTmux, testTerminal } from '../helpers/tmux.js';

const CLI = path.resolve('dist/cli/main.js');
const SOCKET = `baton-oncall-step-${process.pid}`;
const SESSION = 'step';

let work: string;
let target: string;
/** The screen at the end of the run: the tree with each step's duration, the recap. */
let finalScreen = '';
/** How long step a's question waited for its answer, at least. */
const WAIT_MS = 1000;

/** The duration the tree shows for the host of step `name`. */
const shownMs = (screen: string, name: string) => {
  const m = new RegExp(`✔ ${name}\\s*\\n\\s*✔ localhost: changed \\((\\d+) ms\\)`).exec(screen);
  return m ? Number(m[1]) : undefined;
};

const term = testTerminal(SOCKET, SESSION);
const { tmux, waitForScreen } = term;

/** What the prompt line says for the step that makes file `f`: the host, what it would run, the choices. */
const QUESTION = (f: string) => new RegExp(`localhost: run touch \\S+/target/${f} \\(unless \\S+ exists\\) — run it\\? \\[y\\]es / \\[s\\]kip / \\[c\\]ontinue without asking: `);

beforeAll(async () => {
  if (!existsSync('dist/cli/run.js')) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
  await requireTmux();
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-step-'));
  target = path.join(work, 'target');
  mkdirSync(target);
  const step = (n: string) =>
    `    - name: make ${n}\n      command: { argv: [touch, "${target}/${n}"], creates: "${target}/${n}", revert: [rm, -f, "${target}/${n}"] }\n`;
  writeFileSync(path.join(work, 'pb.yml'), `- name: three files\n  hosts: localhost\n  steps:\n${step('a')}${step('b')}${step('c')}`);
  writeFileSync(path.join(work, 'inv.yml'), 'all:\n  hosts:\n    localhost:\n      ansible_connection: local\n');
  const env = `env -u CI BATON_STATE_DIR=${path.join(work, 'state')} TERM=xterm-256color`;
  // The pane stays after the run ends, so its last screen (the recap) can be read.
  await tmux('new-session', '-d', '-s', SESSION, '-x', '160', '-y', '50', `${env} node ${CLI} run --step --yes -i ${path.join(work, 'inv.yml')} ${path.join(work, 'pb.yml')}; echo "EXIT=$?"; sleep 600`);
});

afterAll(async () => {
  await term.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('--step on a terminal with the live tree', () => {
  it('each question is on screen before its step runs; y runs it, n and s skip it', async () => {
    // The first question shows while nothing ran yet: under the tree, with the step's line above it.
    let s = await waitForScreen(QUESTION('a'));
    expect(existsSync(path.join(target, 'a')), 'step a ran before it was answered').toBe(false);
    expect(s.indexOf('make a')).toBeLessThan(s.search(QUESTION('a')));
    // Nothing runs while the question waits.
    await new Promise((r) => setTimeout(r, WAIT_MS));
    expect(existsSync(path.join(target, 'a'))).toBe(false);

    await tmux('send-keys', '-t', SESSION, 'y', 'Enter');
    s = await waitForScreen(QUESTION('b'));
    expect(existsSync(path.join(target, 'a')), 'answered y: step a ran').toBe(true);
    expect(existsSync(path.join(target, 'b')), 'step b ran before it was answered').toBe(false);

    // The answer is echoed on the prompt line as it is typed.
    await tmux('send-keys', '-t', SESSION, 'n');
    await waitForScreen(/\[c\]ontinue without asking: n/);
    await tmux('send-keys', '-t', SESSION, 'Enter');
    s = await waitForScreen(QUESTION('c'));
    expect(existsSync(path.join(target, 'b')), 'answered n: step b was skipped').toBe(false);

    await tmux('send-keys', '-t', SESSION, 's', 'Enter');
    s = await waitForScreen(/EXIT=\d+/);
    expect(s).toContain('EXIT=0');
    expect(existsSync(path.join(target, 'a'))).toBe(true);
    expect(existsSync(path.join(target, 'b')), 'answered n: step b was skipped').toBe(false);
    expect(existsSync(path.join(target, 'c')), 'answered s: step c was skipped').toBe(false);
    expect(s).toMatch(/localhost\s+ok=0\s+changed=1\s+failed=0\s+skipped=2/);
    // No question is left over on the screen after its answer, and none appears late.
    expect(s.match(/run it\? \[y\]es/g) ?? []).toHaveLength(0);
    expect(shownMs(s, 'make a'), s).toBeTypeOf('number');
    finalScreen = s;
  });

  // The time the question waits does not count in the step's duration.
  it('the duration shown for a step leaves out the time its question waited', () => {
    expect(finalScreen).not.toBe('');
    expect(shownMs(finalScreen, 'make a')).toBeLessThan(WAIT_MS);
  });
});
