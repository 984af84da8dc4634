import type { SourceLocation } from '../util/errors.js';

/** One node, with every inventory variable that applies to it already merged. */
export interface Host {
  name: string;
  /** Merged vars: `all` < parent groups < child groups < host_vars/group_vars files < host entry. */
  vars: Record<string, unknown>;
  /** Every group the host belongs to, `all` included. */
  groups: string[];
  loc?: SourceLocation;
}

export interface Group {
  name: string;
  /** Hosts listed directly under this group. */
  hosts: string[];
  children: string[];
  vars: Record<string, unknown>;
  loc?: SourceLocation;
}

export interface Inventory {
  /** The file it was loaded from, or '<implicit localhost>'. */
  file: string;
  hosts: Map<string, Host>;
  groups: Map<string, Group>;
}

/** How to reach a host, derived from its vars (Ansible's connection variables). */
export interface ConnectionSpec {
  host: string;
  connection: 'ssh' | 'local';
  /** ansible_host, else the inventory name. */
  address: string;
  port?: number;
  user?: string;
  privateKeyFile?: string;
  password?: string;
  /** Extra known_hosts file (baton_known_hosts, or -o UserKnownHostsFile= in ansible_ssh_common_args). */
  knownHostsFile?: string;
  /** `strict` (default) or `accept-new`. */
  hostKeyChecking?: 'strict' | 'accept-new';
  connectTimeoutMs?: number;
}
