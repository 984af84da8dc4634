#!/usr/bin/env node
/**
 * The `baton` command. Each subcommand's module is imported only when it runs, so
 * `baton validate` and `baton check` do not pay for ssh2 or listr2 at start.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { registerLab } from './lab.js';
import { registerDrill } from './drill.js';
import { registerKeeper } from './keeper.js';
import { registerCompletion } from './completion.js';
import { addExitCodeHelp } from './exit-codes.js';
import { packageVersion } from './package-info.js';
import { collect, commaList } from './inputs.js';
import { stoppedSummaryLine } from '../report/json.js';

/** When this process started: a --junit file newer than this was written by the command itself. */
const startedAtMs = Date.now();

// `baton runs | head` closes our stdout early: that is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

function positiveInt(value: string): number {
  if (!/^[1-9][0-9]*$/.test(value)) throw new InvalidArgumentError(`expected a whole number of hosts, 1 or more, got "${value}"`);
  return Number(value);
}

const program = new Command();
program
  .name('baton')
  .description('Fail storage services over between nodes with declarative, reversible YAML playbooks')
  .version(packageVersion())
  .showSuggestionAfterError(true)
  .exitOverride((err) => {
    // Usage errors are invalid input: exit 2, like every other kind of bad input; with --json,
    // said in the summary record too (stdout to a pipe is written synchronously on Linux).
    const command = process.argv[2] ?? '';
    if (err.exitCode !== 0 && process.argv.includes('--json') && ['run', 'undo', 'drill', 'plan'].includes(command)) {
      process.stdout.write(stoppedSummaryLine({ mode: command as 'run', exitCode: 2, message: err.message, durationMs: Date.now() - startedAtMs }) + '\n');
    }
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

/** Options shared by the commands that read a playbook. */
function playbookOptions(cmd: Command): Command {
  return cmd
    .option('-i, --inventory <source>', 'inventory: YAML or INI file, directory, executable script, or "host1,host2," (repeatable, merged in order); default: localhost only', collect, [])
    .option('--vault-password-file <file>', 'password for Ansible Vault files and !vault values (a file, or an executable that prints it; repeatable)', collect, [])
    .option('--vault-id <[label@]file>', 'vault password with its vault id label (repeatable)', collect, [])
    .option('-e, --extra-vars <vars>', 'key=value, JSON, or @file.yml (repeatable; highest precedence)', collect, [])
    .option('-l, --limit <pattern>', 'only these hosts (a:b, a:!b, a:&b)')
    .option('-t, --tags <tags>', 'only steps with these tags (comma-separated, repeatable)', commaList, [])
    .option('--skip-tags <tags>', 'skip steps with these tags', commaList, [])
    .option('--json', 'JSON lines on stdout')
    .option('-v, --verbose', 'show every command and its exit code')
    .option('-u, --user <user>', 'remote user for hosts whose inventory sets no ansible_user')
    .option('-f, --forks <n>', 'hosts in parallel, for plays that set no forks: (default 10)', positiveInt);
}

/** ansible-playbook's read-only views: print from the validated input and exit, contacting no node. */
function viewOptions(cmd: Command): Command {
  return cmd
    .option('--list-hosts', 'list the hosts each play would run on, and exit')
    .option('--list-tasks', 'list the steps each play would run (after --tags/--skip-tags), and exit')
    .option('--list-tags', 'list the tags of the steps each play would run, and exit')
    .option('--syntax-check', 'validate the playbook and inventory, and exit (as validate)');
}

/** The views, when asked for: true if one was printed. */
async function printedView(playbook: string, opts: import('./views.js').ViewOptions): Promise<boolean> {
  const views = await import('./views.js');
  if (!views.wantsView(opts)) return false;
  const { loadInputs } = await import('./inputs.js');
  process.stdout.write(views.renderViews(loadInputs(playbook, opts), opts) + '\n');
  return true;
}

const COORDINATOR_HELP = 'where controllers agree: etcd://host:port[,host:port…] or embedded (default: env BATON_COORDINATOR, then the inventory var baton_coordinator, then embedded)';

const exitWith = (code: number) => {
  process.exitCode = code;
};

viewOptions(playbookOptions(program.command('run').argument('<playbook>').description('run a playbook: plan, confirm, apply, roll back on failure')))
  .option('-C, --check', 'probe only: report what would change, change nothing')
  .option('--diff', 'under each change, a diff of the state probed before and after (with --check: the state now and the commands)')
  .option('--detailed-exitcode', 'with --check: exit 6 when changes would be made')
  .option('-y, --yes', 'do not ask before changing anything (needed without a terminal)')
  .option('--step', 'ask before each change')
  .option('--force', 'take resources a peer may still hold (the operator vouches it is down)')
  .option('--accept-new', 'accept and record host keys of hosts not yet in known_hosts (never a changed key)')
  .option('--junit <file>', 'also write JUnit XML (a suite per play, a test case per step and host)')
  .option('--coordinator <spec>', COORDINATOR_HELP)
  .action(async (playbook: string, opts) => {
    if (await printedView(playbook, opts)) return;
    exitWith(await (await import('./run.js')).runCommand(playbook, opts));
  });

viewOptions(playbookOptions(program.command('plan').argument('<playbook>').description('print every step with its host and the exact commands; contacts no node (a placement play reads, read-only, where the groups run)')))
  .action(async (playbook: string, opts) => {
    if (await printedView(playbook, opts)) return;
    const { loadInputs } = await import('./inputs.js');
    const inputs = await (await import('./placement-inputs.js')).withPlacement(loadInputs(playbook, opts));
    await inputs.registry.ensureLoaded();
    if (opts.json) process.stdout.write(JSON.stringify((await import('./plan-json.js')).planDocument(inputs, opts)) + '\n');
    else process.stdout.write((await import('./plan.js')).renderPlan(inputs, opts) + '\n');
  });

playbookOptions(program.command('validate').argument('<playbook...>').description('check playbooks and inventory; exit 2 on any problem; contacts no node'))
  .action(async (playbooks: string[], opts) => exitWith((await import('./validate.js')).validateCommand(playbooks, opts)));

playbookOptions(program.command('check').argument('<playbook>').description('probe only, change nothing, no lock, no journal; Nagios output and exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)'))
  .option('--prom <file>', 'also write a Prometheus textfile (atomically) for node_exporter')
  .option('--persist <seconds>', 'keep SSH connections open in a background keeper for later runs; it exits after SECONDS idle (env BATON_PERSIST)')
  .option('--connect-timeout <seconds>', 'call a node unreachable (UNKNOWN) after this long without SSH (default 2; inventory var baton_check_connect_timeout)')
  // Nagios reads exit 2 as CRITICAL: a usage error is UNKNOWN (3) here, not invalid-input 2,
  // said on stdout and in the --prom file like any other invalid input.
  .exitOverride((err) => {
    if (err.exitCode === 0) process.exit(0);
    // Handled (asynchronously) by the final catch below; commander already printed the error.
    throw Object.assign(new Error(err.message), { exitCode: 3, checkUsage: true });
  })
  .action(async (playbook: string, opts) => exitWith(await (await import('./check.js')).checkCommand(playbook, opts)));

program
  .command('undo')
  .argument('<run>', 'run id (or a unique prefix), as printed at the end of a run and by `baton runs`')
  .description('revert what a finished or interrupted run changed, newest first, from its journal')
  .option('-i, --inventory <source>', 'inventory to reach the nodes with (repeatable; default: the sources the run used)', collect, [])
  .option('--vault-password-file <file>', 'password for Ansible Vault files and !vault values (repeatable)', collect, [])
  .option('--vault-id <[label@]file>', 'vault password with its vault id label (repeatable)', collect, [])
  .option('-y, --yes', 'do not ask')
  .option('--json', 'JSON lines on stdout')
  .option('--accept-new', 'accept and record unknown host keys')
  .option('--force', 'revert although a peer may hold a resource or a change drifted since the run (the operator vouches)')
  .option('--coordinator <spec>', COORDINATOR_HELP + '; with etcd, runs other controllers journaled can be undone here')
  .action(async (run: string, opts) => exitWith(await (await import('./undo.js')).undoCommand(run, opts)));

program
  .command('runs')
  .description('list journaled runs with their outcome')
  .option('--json', 'one JSON object per run')
  .addOption(new Option('-n, --last <n>', 'only the last n').argParser((v) => parseInt(v, 10)))
  .option('--coordinator <spec>', COORDINATOR_HELP + '; with etcd, the runs of every controller are listed')
  .action(async (opts) => exitWith(await (await import('./runs.js')).runsCommand(opts)));

program
  .command('show')
  .argument('<run>', 'run id (or a unique prefix)')
  .description("one run from its journal: what it moved, each change and what became of it")
  .option('--json', 'the journal records, one JSON object per line')
  .action(async (run: string, opts) => exitWith((await import('./show.js')).showCommand(run, opts)));

program
  .command('status')
  .description('what runs where, observed: each service group running, partial, SPLIT or stopped, and each node reachable and its power (from its BMC); changes nothing')
  .option('-i, --inventory <source>', 'inventory with the nodes and their service groups (all.vars.baton_services, or the single service\'s vip, disks, mount_point); repeatable', collect, [])
  .option('--vault-password-file <file>', 'password for Ansible Vault files and !vault values (repeatable)', collect, [])
  .option('--vault-id <[label@]file>', 'vault password with its vault id label (repeatable)', collect, [])
  .option('-u, --user <user>', 'remote user for hosts whose inventory sets no ansible_user')
  .option('--connect-timeout <seconds>', 'call a node unreachable after this long without SSH (default 2; inventory var baton_check_connect_timeout)')
  .option('--json', 'one JSON document: groups [{name, state, nodes, ...}] and nodes [{name, reachable, power}]')
  // Exit 2 means split brain here: a usage error must not read as one.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 3))
  .action(async (opts) => exitWith(await (await import('./status.js')).statusCommand(opts)));

program
  .command('watch')
  .description('a long-running controller: observe every service group on an interval and run node-failover for a node confirmed failed, only while this watcher is the elected leader')
  .option('-i, --inventory <source>', 'inventory with the nodes, their BMCs and their service groups (repeatable)', collect, [])
  .option('--vault-password-file <file>', 'password for Ansible Vault files and !vault values (repeatable)', collect, [])
  .option('--vault-id <[label@]file>', 'vault password with its vault id label (repeatable)', collect, [])
  .option('-u, --user <user>', 'remote user for hosts whose inventory sets no ansible_user')
  .option('--coordinator <spec>', COORDINATOR_HELP + '; with etcd, watchers elect one leader')
  .option('--interval <seconds>', 'between observations (default 5)')
  .option('--failures <n>', 'rounds in a row a node must fail before it counts as failed (default 3)')
  .option('--cooldown <seconds>', 'after failing a node over, none again for that node for this long (default 600)')
  .option('--dry-run', 'say what would be done; change nothing')
  .option('--playbook <playbook>', 'the failover playbook (default node-failover.yml), run with -e failed=NODE')
  .option('--connect-timeout <seconds>', 'call a node unreachable after this long without SSH (default 2)')
  .option('--json', 'the failover runs\' events as JSON lines')
  .addOption(new Option('--rounds <n>', 'stop after n rounds (tests)').hideHelp())
  .action(async (opts) => exitWith(await (await import('./watch.js')).watchCommand(opts)));

registerLab(program);
registerDrill(program);
registerKeeper(program);
registerCompletion(program);
addExitCodeHelp(program);

// The subcommand that ran, so that the error path below can answer in the format it asked for.
let acting: Command | undefined;
program.hook('preAction', (_root, actionCommand) => {
  acting = actionCommand;
});

program.parseAsync(process.argv).catch(async (err: unknown) => {
  const e = err as { message?: string; exitCode?: number; checkUsage?: boolean };
  if (e.checkUsage) {
    (await import('./check.js')).checkUsageError(process.argv.slice(2), e.message ?? '');
    process.exitCode = 3;
    return;
  }
  process.stderr.write(`baton: ${e.message ?? String(err)}\n`);
  const code = typeof e.exitCode === 'number' ? e.exitCode : 3;
  process.exitCode = code;
  if (acting) await (await import('./stopped.js')).reportStopped(acting.name(), acting.args, acting.opts(), err, code, startedAtMs);
});
