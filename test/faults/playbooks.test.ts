/**
 * The fault suite (see README.md next to this file): every step of the shipped nfs-switchover,
 * nfs-failover and nfs-failback × every fault, then recovery and the invariant checker. Root;
 * labs fault0…fault5 on 198.18.140.0/24…198.18.145.0/24, one case on each at a time.
 */
import { faultSuite } from './suite.js';

faultSuite({
  labs: [0, 1, 2, 3, 4, 5].map((i) => ({ name: `fault${i}`, subnet: `198.18.${140 + i}.0/24` })),
  playbooks: [
    {
      playbook: 'nfs-switchover',
      kinds: ['lower_vip', 'unexport', 'unmount', 'deport_volume', 'import_volume', 'mount', 'export', 'raise_vip', 'garp', 'restart_statd'],
    },
    {
      playbook: 'nfs-failover',
      kinds: ['fence', 'import_volume', 'mount', 'export', 'raise_vip', 'garp', 'restart_statd'],
    },
    {
      playbook: 'nfs-failback',
      kinds: ['assert', 'lower_vip', 'unexport', 'unmount', 'deport_volume', 'import_volume', 'mount', 'export', 'raise_vip', 'garp', 'restart_statd'],
    },
  ],
});
