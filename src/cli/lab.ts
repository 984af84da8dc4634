import type { Command } from 'commander';

/** `baton lab …` — placeholder until the lab lands. */
export function registerLab(program: Command): void {
  program.command('lab').description('the namespace lab (not built yet)');
}
