/**
 * What each command's exit code means, printed at the end of its `--help` and in the man page:
 * a script (or a person at 3 a.m.) should not need the README to read `$?`.
 */
import type { Command } from 'commander';

type Table = [code: number, meaning: string][];

const RUN: Table = [
  [0, 'succeeded (changed or not); with --check: nothing would fail'],
  [1, 'a step failed; every change was rolled back: the nodes are as before the run'],
  [2, 'invalid input (playbook, inventory, vars, options, or no --yes without a terminal); nothing was touched'],
  [3, 'a step failed and changes are still in place: the journal says what; baton undo RUN'],
  [4, 'a host was unreachable before any change; nothing was touched'],
  [5, 'the lock is held by another run (its id, controller and pid are printed)'],
  [6, '--check --detailed-exitcode: changes would be made'],
];

const INPUT_ONLY: Table = [
  [0, 'valid'],
  [2, 'invalid input (every problem is printed as file:line:col)'],
];

export const EXIT_CODES: Record<string, Table> = {
  run: RUN,
  plan: [
    [0, 'the plan was printed'],
    [2, 'invalid input (every problem is printed as file:line:col)'],
  ],
  validate: INPUT_ONLY,
  check: [
    [0, 'OK'],
    [1, 'WARNING'],
    [2, 'CRITICAL'],
    [3, 'UNKNOWN: could not tell (unreachable host, invalid input, bad option)'],
  ],
  status: [
    [0, 'every service group runs whole on one node, and every node was read'],
    [1, 'degraded: a group stopped, partial or unknown, or a node unreachable'],
    [2, 'split brain: a group seen on two or more nodes (named)'],
    [3, 'could not tell: invalid inventory, no service group, a bad option; no node was contacted'],
  ],
  undo: [
    [0, 'reverted (or nothing left to revert, or not confirmed)'],
    [2, 'invalid input: no such run, an ambiguous prefix, a damaged journal, no --yes without a terminal'],
    [3, 'some changes could not be reverted: they are still in place (the output names them)'],
    [4, 'a host was unreachable; nothing was touched'],
    [5, 'the lock is held by another run'],
  ],
  runs: [
    [0, 'listed'],
    [2, 'invalid option'],
  ],
  show: [
    [0, 'shown'],
    [2, 'no such run, or an ambiguous prefix'],
  ],
  drill: [
    [0, 'passed'],
    [1, 'a limit was broken (outage over --max-outage, data differed) or a playbook failed and was rolled back'],
    [2, 'invalid input (nothing was touched)'],
    [3, 'a playbook failed and left changes in place (see its journal; baton undo RUN)'],
    [4, 'a host could not be reached'],
    [5, 'the lock is held by another run'],
  ],
  lab: [
    [0, 'done'],
    [2, 'invalid input (a subnet or name clash, a bad option)'],
    [3, 'the lab could not be built or removed completely (the output says what is left)'],
  ],
  keeper: [
    [0, 'a keeper runs (status) or was stopped (stop)'],
    [1, 'no keeper runs, or it could not be stopped'],
  ],
  completion: [
    [0, 'the script was printed'],
    [2, 'an unknown shell'],
  ],
  man: [[0, 'the page was printed']],
};

/** The exit codes of a top-level command, as the block `--help` ends with. */
export function exitCodesHelp(name: string): string | undefined {
  const table = EXIT_CODES[name];
  if (!table) return undefined;
  return '\nExit codes:\n' + table.map(([code, what]) => `  ${code}  ${what}`).join('\n');
}

/** Append the exit codes to the help of every top-level command that has a table. */
export function addExitCodeHelp(program: Command): void {
  program.addHelpText(
    'after',
    '\nA playbook is a file, or the name of a shipped one (nfs-switchover, nfs-failover, nfs-health, ...).\n' +
      "Each command's --help ends with its exit codes; `baton man | man -l -` shows the whole manual.",
  );
  for (const cmd of program.commands) {
    const help = exitCodesHelp(cmd.name());
    if (help) cmd.addHelpText('after', help);
  }
}
