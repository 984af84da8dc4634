/**
 * One playbook run through the engine's session as the watcher runs its failovers (in process,
 * `onInterrupt` as given), for tests that signal it: argv[2] the playbook, argv[3] `finish` or
 * `rollback`. Exits with the run's exit code. Run under vite-node.
 */
import { loadInputs } from '../../src/cli/inputs.js';
import { runSession } from '../../src/engine/session.js';
import { makeReporter } from '../../src/report/make.js';

// vite-node's own handlers exit at once; the watcher's only stop its loop (cli/watch.ts).
process.removeAllListeners('SIGTERM');
process.removeAllListeners('SIGINT');
process.on('SIGTERM', () => undefined);

const [playbook, mode] = process.argv.slice(2);
const inputs = loadInputs(playbook!, { extraVars: [] });
await inputs.registry.ensureLoaded();
const r = await runSession(inputs, {}, { reporter: await makeReporter({}), onInterrupt: mode === 'finish' ? 'finish' : 'rollback' });
process.exit(r.exitCode);
