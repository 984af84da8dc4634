import type { SourceLocation } from '../util/errors.js';

/** One node, with every inventory variable that applies to it already merged. */
export interface Host {
  name: string;
  /**
   * Merged vars (see load.ts for the order). Templates that need only inventory vars are
   * already rendered; those that need play context are still as written (see `deferred`).
   */
  vars: Record<string, unknown>;
  /** Every group the host belongs to, `all` included. */
  groups: string[];
  /** Where the host was first listed. */
  loc?: SourceLocation;
  /** Where each var's winning value was written. */
  varOrigins?: Record<string, SourceLocation>;
  /**
   * Vars whose `{{ }}` need names only a play has (play vars, -e, registered results), as
   * written. They are still in `vars`, unrendered: render them in the step's full context.
   */
  deferred?: Record<string, unknown>;
  /** Every var that held `{{ }}`, as written (rendered or deferred). */
  templates?: Record<string, unknown>;
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
  /** The first source it was loaded from, or '<implicit localhost>'. */
  file: string;
  /** Every source, in the order given (`-i a -i b`). (Optional fields: set by loadInventory; hand-built inventories may omit them.) */
  sources?: string[];
  hosts: Map<string, Host>;
  groups: Map<string, Group>;
  /** Names of vars whose value came out of Ansible Vault (a vaulted file or a `!vault` value). */
  secretVars?: Set<string>;
  /** The decrypted values themselves (strings), for the redactor to mask wherever they appear. */
  secretValues?: Set<string>;
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
  /** `-o Key=Value` options from ansible_ssh_common_args/ansible_ssh_extra_args, for OpenSSH's resolution (ssh -G). */
  sshOptions?: string[];
  /**
   * Become as the inventory sets it (ansible_become, ansible_become_user): each field only
   * when set there. Inventory values win over a play's or step's `become`, as in Ansible.
   */
  become?: { enabled?: boolean; user?: string };
}
