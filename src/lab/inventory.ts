/**
 * The lab's inventory, in the YAML shape of an Ansible inventory so that baton's runner (and
 * Ansible itself) can use it as it is.
 */
import { writeFile } from 'node:fs/promises';
import yaml from 'js-yaml';
import { BMC_CIPHER_SUITE } from './bmc.js';
import { mountPointFor, type LabPlan } from './plan.js';
import { sanInventoryVars } from './san.js';

export function inventoryObject(plan: LabPlan): Record<string, unknown> {
  const nodes: Record<string, unknown> = {};
  for (const n of plan.nodes) {
    nodes[n.name] = {
      ansible_host: n.address,
      ansible_user: 'root',
      ansible_ssh_private_key_file: plan.keyFile,
      baton_known_hosts: plan.knownHostsFile,
      bmc_address: n.bmc.address,
      bmc_port: n.bmc.port,
      bmc_user: n.bmc.user,
      bmc_password: n.bmc.password,
      bmc_cipher_suite: BMC_CIPHER_SUITE,
      iface: 'eth0',
      mac: n.mac,
      lab_netns: n.netns,
      // Spare interfaces for failover MACs and their own MACs: release_mac gives each back its own.
      ...(n.failoverNics.length ? { failover_nics: Object.fromEntries(n.failoverNics.map((f) => [f.name, f.mac])) } : {}),
    };
  }
  const clients: Record<string, unknown> = {};
  for (const c of plan.clients) {
    clients[c.name] = {
      ansible_connection: 'local',
      lab_netns: c.netns,
      lab_address: c.address,
      iface: 'eth0',
      mac: c.mac,
    };
  }
  const vars: Record<string, unknown> = {
    lab_name: plan.spec.name,
    lab_subnet: plan.spec.subnet,
    lab_prefix: plan.prefixLength,
    lab_dir: plan.dir,
    lab_controller_address: plan.controllerAddress,
    disks: plan.disks,
    disk_mount_points: plan.disks.map((_, i) => mountPointFor(i + 1)),
    vip: plan.vip,
    // The lab's NFS clients (libnfs from a namespace) read and write as root.
    export_squash: 'no_root_squash',
    // Every node's Ganesha presents this NFSv4 server scope (node.ts): exports check it.
    nfs_scope: `baton-${plan.spec.name}`,
  };
  if (plan.groups.length || plan.iscsiGroups.length) vars.baton_services = servicesOf(plan);
  if (plan.spec.san) Object.assign(vars, sanInventoryVars(plan));
  return {
    all: {
      vars,
      children: {
        nodes: { hosts: nodes },
        clients: { hosts: clients },
      },
    },
  };
}

/** baton_services for `lab up --groups N --iscsi-groups M` (shape: schemas/services.json). */
function servicesOf(plan: LabPlan): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const g of plan.groups) {
    out[g.name] = {
      vip: g.vip,
      // With a failover MAC the VIP goes on the group's own interface instead of eth0.
      ...(g.mac ? { mac: g.mac, failover_interface: g.failoverInterface } : { interface: 'eth0' }),
      volume: { provider: 'loop', image: g.image },
      mount: { path: g.mountPoint, fstype: 'ext4' },
      // The lab's NFS clients read and write as root, as with the single service.
      nfs_exports: [{ path: g.mountPoint, pseudo: g.pseudo, fsid: g.fsid, squash: 'no_root_squash' }],
      nodes: g.nodes,
    };
  }
  for (const g of plan.iscsiGroups) {
    out[g.name] = {
      vip: g.vip,
      interface: 'eth0',
      volume: { provider: 'loop', image: g.image },
      iscsi_targets: [{ iqn: g.iqn, acls: g.acls, luns: [{ lun: g.lun, scsi_id: g.scsiId, scsi_sn: g.scsiSn }] }],
      nodes: g.nodes,
    };
  }
  return out;
}

export async function writeInventory(plan: LabPlan): Promise<string> {
  const header = `# Inventory of baton lab "${plan.spec.name}" (written by \`baton lab up\`; removed by \`baton lab down\`).\n`;
  await writeFile(plan.inventoryFile, header + yaml.dump(inventoryObject(plan), { lineWidth: 200 }), { mode: 0o600 });
  return plan.inventoryFile;
}
