/**
 * `baton undo` at its prompt on a real terminal (tmux) while the world moves on: another undo of
 * the same run ends, and a later run makes the same change again. The person then types "yes"
 * to a plan that is no longer true. Local transport, no root.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baton as batonIn } from '../helpers/nfs-service.js';
import { requireTmux, testTerminal } from '../helpers/tmux.js';

const CLI = path.resolve('dist/cli/main.js');
const SOCKET = `baton-undo-prompt-${process.pid}`;
const SESSION = 'undo';

let work: string;
let target: string;
let state: string;

const term = testTerminal(SOCKET, SESSION);

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
  await requireTmux();
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-undo-prompt-'));
  target = path.join(work, 'target');
  state = path.join(work, 'state');
  mkdirSync(target);
});

afterAll(async () => {
  await term.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('undo asked on a terminal, answered after the world moved on', () => {
  it('plans again once it holds the lock: what another undo put back and a later run redid stays', async () => {
    const inv = path.join(work, 'inv.yml');
    writeFileSync(inv, 'all:\n  hosts:\n    n1:\n      ansible_connection: local\n');
    const pb = path.join(work, 'two.yml');
    const step = (n: string) => `    - name: make ${n}\n      command: { argv: [touch, "${target}/${n}"], creates: "${target}/${n}", revert: [rm, -f, "${target}/${n}"] }\n`;
    writeFileSync(pb, `- name: two files\n  hosts: n1\n  lock: files\n  steps:\n${step('a')}${step('b')}`);
    const baton = (args: string[]) => batonIn(args, state);

    const first = await baton(['run', '--yes', '-i', inv, pb]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const runA = /undo:\s+baton undo (\S+)/.exec(first.stdout)![1]!;

    // Person 1 asks for the undo and is shown the plan.
    await term.start(`env -u CI BATON_STATE_DIR=${state} TERM=xterm-256color node ${CLI} undo ${runA}; echo "EXIT=$?"; sleep 600`);
    await term.waitForScreen(/Type "yes" to go on: /);

    // Meanwhile person 2 undoes it too, and the same playbook is run again (run C).
    const other = await baton(['undo', '--yes', runA]);
    expect(other.code, other.stdout + other.stderr).toBe(0);
    expect(readdirSync(target)).toEqual([]);
    const again = await baton(['run', '--yes', '-i', inv, pb]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(readdirSync(target).sort()).toEqual(['a', 'b']);

    // Person 1 says yes to the plan on the screen. Before: that plan, made before the other undo,
    // was carried out: run C's files were removed (no drift: they looked as run A left them).
    await term.type('yes', 'Enter');
    const s = await term.waitForScreen(/EXIT=\d+/);
    expect(s).toContain('EXIT=0');
    expect(s).toMatch(/nothing to undo any more/);
    expect(readdirSync(target).sort(), "run C's work is left alone").toEqual(['a', 'b']);
  }, 60_000);
});
