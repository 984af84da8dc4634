import { ValidationError } from '../util/errors.js';
import { loadInputs, type CommonOptions } from './inputs.js';

/** `baton validate`: every problem of every file, `file:line:col: message`, exit 2 if any. */
export function validateCommand(playbooks: string[], o: CommonOptions): number {
  let problems = 0;
  let steps = 0;
  for (const file of playbooks) {
    try {
      const inputs = loadInputs(file, o);
      steps += inputs.playbook.plays.reduce((n, p) => n + p.steps.length, 0);
    } catch (e) {
      if (!(e instanceof ValidationError)) throw e;
      problems += e.problems.length;
      if (o.json) for (const p of e.problems) process.stdout.write(JSON.stringify({ ...p.loc, message: p.message }) + '\n');
      else process.stderr.write(e.message + '\n');
    }
  }
  if (problems) {
    if (!o.json) process.stderr.write(`${problems} problem(s); nothing was run.\n`);
    return 2;
  }
  if (!o.json) process.stdout.write(`${playbooks.length} playbook(s), ${steps} step(s): valid\n`);
  return 0;
}
