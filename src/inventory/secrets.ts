/**
 * Vault passwords in, secrets out: what the loaders share while reading vaulted files and
 * `!vault` values, and what they learned (which vars came out of a vault, with which values).
 */
import type { ParsedYaml } from '../playbook/yaml-source.js';
import type { Problem } from '../util/errors.js';
import { decryptVault, isVaulted, VaultError, type VaultSecret } from './vault.js';

export class SecretBook {
  readonly names = new Set<string>();
  readonly values = new Set<string>();

  constructor(readonly vault: VaultSecret[] = []) {}

  /** Remember every string inside `value` as secret, under var `name`. */
  remember(name: string, value: unknown): void {
    this.names.add(name);
    const visit = (v: unknown): void => {
      if (typeof v === 'string' || typeof v === 'number') this.values.add(String(v));
      else if (Array.isArray(v)) v.forEach(visit);
      else if (v && typeof v === 'object') Object.values(v).forEach(visit);
    };
    visit(value);
  }
}

/**
 * js-yaml does not know Ansible's `!vault` tag. Written as a tag (not inside a quoted string),
 * it is swapped for `!!str` padded to the same width, so every position in the file stays
 * where it was; the vaulted text is then recognised by its `$ANSIBLE_VAULT;` header.
 */
export function withoutVaultTags(text: string): string {
  return text.replace(/(^|[\s:\-[{,])!vault(?=[ \t]+[|>"'$]|[ \t]*\r?\n)/g, '$1!!str ');
}

/**
 * Replace every vaulted string in `vars` (a mapping just parsed from `doc`), at any depth, by
 * its plaintext, recording it as a secret under its top-level var name. Problems say where the
 * value was written.
 */
export function openVaultedValues(vars: Record<string, unknown>, doc: ParsedYaml, path: Array<string | number>, book: SecretBook, problems: Problem[]): void {
  const open = (node: Record<string, unknown> | unknown[], at: Array<string | number>, top: string | undefined): void => {
    for (const [k, v] of Object.entries(node)) {
      const key: string | number = Array.isArray(node) ? Number(k) : k;
      const name = top ?? k;
      if (typeof v === 'string' && isVaulted(v)) {
        try {
          const plain = decryptVault(v, book.vault, `the value of "${name}"`);
          (node as Record<string, unknown>)[k] = plain;
          book.remember(name, plain);
        } catch (e) {
          if (!(e instanceof VaultError)) throw e;
          problems.push({ loc: doc.at([...at, key]), message: e.message });
        }
      } else if (v && typeof v === 'object') {
        open(v as Record<string, unknown> | unknown[], [...at, key], name);
      }
    }
  };
  open(vars, path, undefined);
}
