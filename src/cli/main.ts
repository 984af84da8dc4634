#!/usr/bin/env node
/**
 * The `baton` command. Each subcommand lives in its own module and is imported only
 * when used, so `baton validate` and `baton check` start fast.
 */
import { Command } from 'commander';
import { registerLab } from './lab.js';

const program = new Command();
program
  .name('baton')
  .description('Fail storage services over between nodes with declarative, reversible YAML playbooks')
  .version('0.1.0')
  .showSuggestionAfterError(true);

registerLab(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as { message?: string; exitCode?: number };
  process.stderr.write(`baton: ${e.message ?? String(err)}\n`);
  process.exit(typeof e.exitCode === 'number' ? e.exitCode : 3);
});
