import { existsSync } from 'node:fs';
import path from 'node:path';
import type { RunInputs } from '../engine/session.js';
import type { Inventory } from '../inventory/model.js';
import type { Playbook } from '../playbook/model.js';
import { resolveConnectionVars } from '../inventory/connection.js';
import { loadInventory } from '../inventory/load.js';
import { readVaultSecret, VaultError, type VaultSecret } from '../inventory/vault.js';
import { loadPlaybook } from '../playbook/load.js';
import { parseExtraVars } from '../playbook/extra-vars.js';
import { defaultRegistry } from '../steps/registry.js';
import { formatLocation, ValidationError, type Problem } from '../util/errors.js';
import { packageRoot } from '../util/paths.js';

/** Options every playbook command shares. */
export interface CommonOptions {
  /** -i, repeatable (a single string from older callers). */
  inventory?: string | string[];
  vaultPasswordFile?: string[];
  vaultId?: string[];
  extraVars: string[];
  limit?: string;
  tags?: string[];
  skipTags?: string[];
  json?: boolean;
  verbose?: boolean;
  /** -u: remote user for hosts whose inventory sets no ansible_user (Ansible's remote_user). */
  user?: string;
  /** -f: parallel hosts for plays that set no `forks:`. */
  forks?: number;
}

/** A run's loaded and validated inputs: what the engine's session takes (engine/session.ts). */
export type Inputs = RunInputs;

/**
 * Load and validate everything before any node is contacted. All problems of all inputs
 * are gathered and thrown together (exit 2): the operator fixes them in one pass.
 */
export function loadInputs(playbookArg: string, o: CommonOptions): Inputs {
  const playbookFile = resolvePlaybook(playbookArg);
  const problems: Problem[] = [];
  const registry = defaultRegistry();
  let extraVars: Record<string, unknown> = {};
  let inventory: Inventory | undefined;
  try {
    extraVars = parseExtraVars(o.extraVars ?? []);
  } catch (e) {
    if (e instanceof ValidationError) problems.push(...e.problems);
    else problems.push({ loc: { file: '-e', line: 1, col: 1 }, message: (e as Error).message });
  }
  const sources = inventorySources(o.inventory);
  try {
    inventory = loadInventory(sources, { vault: vaultSecrets(o), playbookDir: path.dirname(playbookFile) });
  } catch (e) {
    if (e instanceof ValidationError) problems.push(...e.problems);
    else if (e instanceof VaultError) problems.push({ loc: { file: '--vault-password-file', line: 1, col: 1 }, message: e.message });
    else throw e;
  }
  if (!inventory) throw new ValidationError(problems);
  resolveConnectionVars(inventory.hosts.values(), extraVars);
  // Before the playbook is read: what it sees of the hosts (hostvars too) includes the user.
  if (o.user) applyRemoteUser(inventory, o.user);
  let playbook: Playbook | undefined;
  try {
    playbook = loadPlaybook(path.resolve(playbookFile), { inventory, extraVars, registry });
  } catch (e) {
    if (e instanceof ValidationError) problems.push(...e.problems);
    else throw e;
  }
  if (problems.length || !playbook) throw new ValidationError(problems);
  if (o.forks !== undefined) for (const play of playbook.plays) play.forks ??= o.forks;
  if (o.verbose && !o.json) {
    for (const n of playbook.notices ?? []) process.stderr.write(`${formatLocation(n.loc)}: note: ${n.message}\n`);
  }
  return {
    playbookFile: path.resolve(playbookFile),
    inventoryFile: sources[0],
    inventorySources: sources,
    playbook,
    inventory,
    extraVars,
    registry,
  };
}

/**
 * `-u USER` as ansible-playbook applies it: the user for every host whose inventory names
 * none (ansible_user, or its older name ansible_ssh_user, at any level); an inventory value
 * wins. Written into the merged host vars, which is where the connection is built from
 * (src/inventory/connection.ts).
 */
export function applyRemoteUser(inventory: Inventory, user: string): void {
  for (const host of inventory.hosts.values()) {
    if (host.vars.ansible_user === undefined && host.vars.ansible_ssh_user === undefined) host.vars.ansible_user = user;
  }
}

export const collect = (value: string, previous: string[] = []) => [...previous, value];
export const commaList = (value: string, previous: string[] = []) => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];

/**
 * A playbook argument as a path; a bare name that is no file here (`nfs-switchover`, or
 * `nfs-switchover.yml`) is one of the shipped playbooks, so an installed baton works from any
 * directory. A file in the current directory always wins over a shipped one.
 */
export function resolvePlaybook(arg: string, shippedDir = path.join(packageRoot, 'playbooks')): string {
  if (existsSync(arg) || arg.includes('/') || arg.includes(path.sep)) return arg;
  for (const name of [arg, `${arg}.yml`, `${arg}.yaml`]) {
    const shipped = path.join(shippedDir, name);
    if (existsSync(shipped)) return shipped;
  }
  return arg;
}

/** -i values, resolved; a `host1,host2,` list is kept as written, as Ansible reads it. */
export function inventorySources(value: string | string[] | undefined): string[] {
  const list = Array.isArray(value) ? value : value ? [value] : [];
  return list.map((s) => (s.includes(',') && !existsSync(s) ? s : path.resolve(s)));
}

/** --vault-password-file and --vault-id, else $ANSIBLE_VAULT_PASSWORD_FILE, as ansible does. */
export function vaultSecrets(o: Pick<CommonOptions, 'vaultPasswordFile' | 'vaultId'>): VaultSecret[] {
  const files = o.vaultPasswordFile ?? [];
  const ids = o.vaultId ?? [];
  const fromEnv = process.env.ANSIBLE_VAULT_PASSWORD_FILE;
  return [
    ...ids.map((id) => readVaultSecret(id, 'vault-id')),
    ...files.map((f) => readVaultSecret(f, 'password-file')),
    ...(!files.length && !ids.length && fromEnv ? [readVaultSecret(fromEnv, 'password-file')] : []),
  ];
}
