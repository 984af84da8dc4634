/**
 * `baton drill`: for CI pipelines. Never asks anything. See src/drill/runner.ts for what it
 * does and its exit codes.
 */
import type { Command } from 'commander';
import { collect, commaList } from './inputs.js';

const HELP = `
Probes (repeatable --probe), every --interval ms, from the controller or, with
--probe-from HOST, from inside that inventory host's network namespace (its lab_netns var,
set on lab clients by \`baton lab up\`; runs \`ip netns exec NS …\`, so needs root):
  nfs://HOST/PATH?version=4|3   read the file with libnfs's nfs-cat (package libnfs-utils);
                                a read not done within --read-timeout (300 ms) is killed and
                                counts as failed; the bytes' sha256 is kept for the data check
  tcp://HOST:PORT               open a TCP connection (Node's net), --read-timeout bounded
  iscsi://HOST[:PORT]/IQN/LUN[?lba=N&blocks=N]
                                log in with baton's own iSCSI initiator and READ(16) the
                                blocks (default LBA 0, 8 blocks); their sha256 is the data check

An outage window runs from the start of a probe's first failed read to the start of its next
good read; a probe's outage is the sum of its windows, compared with --max-outage. The data
check: the last good read before the playbook, every good read during, and the last good read
after the last playbook all have the same sha256.

--then FILE runs a second playbook (a failback) after the first succeeded, with the -e vars
overlaid by its own --then-e vars. It starts once every probe reads well again after the first
playbook (at most --settle) and --then-after (2 s) more, so the failover's and the failback's
outages are two windows, each reported with its direction:
  baton drill playbooks/nfs-switchover.yml -i inv.yml -e from=n1 -e to=n2 \\
    --then playbooks/nfs-switchover.yml --then-e from=n2 --then-e to=n1 \\
    --probe 'nfs://VIP/disk1/probe.bin?version=4' --probe tcp://VIP:2049 --max-outage 5s`;

export function registerDrill(program: Command): void {
  program
    .command('drill')
    .argument('<playbook>')
    .description('run a playbook (and a failback) while probing the service as a client; measure the outage; no prompts')
    .option('-i, --inventory <file>', 'inventory (Ansible YAML shape)')
    .option('-e, --extra-vars <vars>', 'key=value, JSON, or @file.yml (repeatable)', collect, [])
    .option('--then <playbook>', 'run this playbook after the first one succeeded (a failback)')
    .option('--then-e <vars>', 'extra vars for --then only, over the -e ones (repeatable)', collect, [])
    .option('--then-after <duration>', 'before --then: wait until the probes read well again (at most --settle), then this long, so each move has its own outage window', '2s')
    .option('--probe <url>', 'nfs://HOST/PATH?version=4|3, tcp://HOST:PORT or iscsi://HOST/IQN/LUN (repeatable)', collect, [])
    .option('--probe-from <host>', "probe from this inventory host's network namespace (its lab_netns var)")
    .option('--interval <ms>', 'time between probe attempts', '50')
    .option('--read-timeout <ms>', 'a read or connect taking longer counts as failed', '300')
    .option('--max-outage <duration>', 'fail when a probe is out longer in total (e.g. 5s, 800ms)')
    .option('--warmup <duration>', 'probe this long before the playbook starts', '1s')
    .option('--settle <duration>', 'after the playbooks, wait at most this long for the probes to read well again', '10s')
    .option('-l, --limit <pattern>', 'only these hosts')
    .option('-t, --tags <tags>', 'only steps with these tags', commaList, [])
    .option('--skip-tags <tags>', 'skip steps with these tags', commaList, [])
    .option('--force', 'take resources a peer may still hold (the operator vouches it is down)')
    .option('--accept-new', 'accept and record host keys of hosts not yet in known_hosts')
    .option('--junit <file>', 'write JUnit XML: a suite per playbook and a probes suite')
    .option('--html <file>', 'write a self-contained HTML report with a timeline')
    .option('--json', 'JSON lines on stdout; the last one is the drill report with every probe sample')
    .option('-v, --verbose', 'show every command and its exit code')
    .addHelpText('after', HELP)
    .action(async (playbook: string, opts) => {
      const { drillCommand } = await import('../drill/runner.js');
      // commander names --then-e `thenE`.
      process.exitCode = await drillCommand(playbook, { ...opts, thenExtraVars: opts.thenE ?? [] });
    });
}
