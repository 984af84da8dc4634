import { InvalidArgumentError, type Command } from 'commander';

/**
 * `baton lab up|down|status|power`: a storage cluster of namespaces on this machine (see
 * docs/lab.md). The lab modules are imported inside each action so that other commands do not
 * pay for loading them.
 */

function int(what: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${what} must be a whole number`);
    return Number(v);
  };
}

const DEFAULT_NAME = 'lab';

export function registerLab(program: Command): void {
  const lab = program
    .command('lab')
    .description('a storage cluster of namespaces on this machine: nodes with sshd, NFS-Ganesha and a BMC each, clients, shared disks (root)');

  lab
    .command('up')
    .description('build the lab (or leave it as it is if it is already up) and print its inventory path')
    .option('--name <name>', 'lab name: prefix of its namespaces, veth and files', DEFAULT_NAME)
    .option('--nodes <n>', 'storage nodes', int('--nodes'), 2)
    .option('--clients <n>', 'client namespaces', int('--clients'), 1)
    .option('--disks <n>', 'shared ext4 disk images', int('--disks'), 2)
    .option('--disk-size <MiB>', 'size of each disk image', int('--disk-size'), 64)
    .option('--groups <n>', 'write N service groups into the inventory (baton_services): one disk and one VIP each, homes round-robin over the nodes; adds disks if --disks is fewer', int('--groups'))
    .option('--failover-nics <n>', 'give each node N spare interfaces on the lab switch (fo1..foN) for failover MACs; groups 1..N get a MAC of their own on them', int('--failover-nics'))
    .option('--iscsi-groups <n>', 'write N iSCSI service groups beside them: a disk, a VIP (.210 on) and a target IQN each, LUN 1 with a fixed scsi_id and scsi_sn; adds disks as --groups does', int('--iscsi-groups'))
    .option('--subnet <cidr>', 'the lab\'s /24 within 198.18.0.0/15 (default: derived from the name)')
    .option('--san', 'add a SAN namespace whose tgtd serves one shared LUN to every node (scsi_pr_* inventory vars, for provider scsi-pr fencing)')
    .option('--json', 'print the result as JSON')
    .action(async (o: { name: string; nodes: number; clients: number; disks: number; diskSize: number; groups?: number; failoverNics?: number; iscsiGroups?: number; san?: boolean; subnet?: string; json?: boolean }) => {
      const { labUp } = await import('../lab/up.js');
      const { defaultSubnet } = await import('../lab/plan.js');
      const r = await labUp({
        name: o.name,
        subnet: o.subnet ?? defaultSubnet(o.name),
        nodes: o.nodes,
        clients: o.clients,
        disks: o.disks,
        diskMiB: o.diskSize,
        // Only when asked: a lab without groups keeps the spec (lab.json) it always had.
        ...(o.groups ? { groups: o.groups } : {}),
        ...(o.failoverNics ? { failoverNics: o.failoverNics } : {}),
        ...(o.san ? { san: true } : {}),
        ...(o.iscsiGroups ? { iscsiGroups: o.iscsiGroups } : {}),
      });
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ name: o.name, inventory: r.inventoryPath, reused: r.reused, cleared: r.cleared, ms: Math.round(r.ms) })}\n`);
        return;
      }
      if (r.cleared) process.stderr.write(`baton lab: cleared the remains of an earlier lab "${o.name}" first\n`);
      process.stderr.write(
        r.reused
          ? `baton lab: lab "${o.name}" is already up (${r.plan.spec.subnet}); nothing changed\n`
          : `baton lab: lab "${o.name}" up in ${(r.ms / 1000).toFixed(1)} s: ${r.plan.nodes.length} nodes, ${r.plan.clients.length} clients, ${r.plan.disks.length} disks${r.plan.groups.length ? `, ${r.plan.groups.length} service groups` : ''}${r.plan.iscsiGroups.length ? `, ${r.plan.iscsiGroups.length} iSCSI groups` : ''} on ${r.plan.spec.subnet}\n`,
      );
      process.stdout.write(`${r.inventoryPath}\n`);
    });

  lab
    .command('down')
    .description('remove everything the lab made: processes, mounts, loop devices, namespaces, veths, files')
    .option('--name <name>', 'lab name', DEFAULT_NAME)
    .action(async (o: { name: string }) => {
      const { preflight } = await import('../lab/preflight.js');
      const { labDown } = await import('../lab/down.js');
      preflight('down', { packages: false });
      const r = await labDown(o.name);
      process.stderr.write(
        `baton lab: lab "${o.name}" down: ${r.killed} processes killed, ${r.netns.length} namespaces, ${r.loops.length} loop devices${r.veth ? `, veth ${r.veth}` : ''} removed${r.dir ? `, ${r.dir} deleted` : ''}\n`,
      );
    });

  lab
    .command('status')
    .description('power, addresses (VIPs too), mounts and services of each node; BMCs; clients')
    .option('--name <name>', 'lab name', DEFAULT_NAME)
    .option('--json', 'print JSON')
    .action(async (o: { name: string; json?: boolean }) => {
      const { preflight } = await import('../lab/preflight.js');
      const { loadPlan } = await import('../lab/state.js');
      const { labStatus, formatStatus } = await import('../lab/status.js');
      preflight('status');
      const s = await labStatus(await loadPlan(o.name));
      process.stdout.write(o.json ? `${JSON.stringify(s, null, 2)}\n` : `${formatStatus(s)}\n`);
    });

  lab
    .command('power')
    .description('power a node off, on or ask its state, through its BMC (ipmitool lanplus against ipmi_sim)')
    .argument('<node>', 'node name, e.g. n1')
    .argument('<action>', 'on | off | status')
    .option('--name <name>', 'lab name', DEFAULT_NAME)
    .action(async (node: string, action: string, o: { name: string }) => {
      if (action !== 'on' && action !== 'off' && action !== 'status') {
        throw new InvalidArgumentError(`action must be on, off or status, not ${JSON.stringify(action)}`);
      }
      const { preflight } = await import('../lab/preflight.js');
      const { loadPlan } = await import('../lab/state.js');
      const { labPower } = await import('../lab/power.js');
      preflight('power');
      process.stdout.write(`${await labPower(await loadPlan(o.name), node, action)}\n`);
    });
}
