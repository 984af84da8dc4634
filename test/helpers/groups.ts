import type { ServiceGroup } from '../../src/inventory/services.js';

/**
 * The extra vars that start a service group on a node with the shipped nfs-start playbook (the
 * single-service roles read them). Pass them as one JSON `-e`: key=value vars are strings, and
 * vip_prefix must stay a number.
 */
export function groupStartVars(g: ServiceGroup, on: string): Record<string, unknown> {
  const e = g.nfsExports[0]!;
  return {
    on,
    vip: g.vip.address,
    vip_prefix: g.vip.prefix,
    volume_image: g.volume && g.volume.provider === 'loop' ? g.volume.image : '',
    mount_point: g.mount!.path,
    export_path: e.path,
    export_pseudo: e.pseudo,
    export_id: e.exportId,
    nfs_fsid: e.fsid,
    // A group with a failover MAC: the vip role gives the interface the MAC before raising the VIP on it.
    ...(g.mac ? { vip_mac: g.mac, vip_interface: g.failoverInterface } : {}),
  };
}
