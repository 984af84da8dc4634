// `baton run --step --yes PLAYBOOK -i INVENTORY` as it runs once run.ts asks the --step
// question through the reporter (confirm: reporter.ask): the live listr2 tree on the terminal
// and the real engine, with the questions drawn under the tree. Used by the tmux test.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');
const { loadInputs } = await import(path.join(dist, 'cli/inputs.js'));
const { runPlaybook } = await import(path.join(dist, 'cli/run.js'));
const { TtyReporter } = await import(path.join(dist, 'report/tty.js'));

const [playbook, inventory] = process.argv.slice(2);
const options = { inventory, extraVars: [], step: true, yes: true };
const inputs = loadInputs(playbook, options);
await inputs.registry.ensureLoaded();
const reporter = new TtyReporter();
const r = await runPlaybook(inputs, options, { reporter, confirm: (q) => reporter.ask(q) });
process.exitCode = r.exitCode;
