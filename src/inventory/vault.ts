/**
 * Ansible Vault: recognising vaulted text, and opening the `$ANSIBLE_VAULT;1.1;AES256` (and 1.2,
 * which only adds a label) format with node:crypto.
 *
 * The format, as ansible-core documents and writes it (docs "Vault format", VaultAES256):
 *   header line  `$ANSIBLE_VAULT;1.1;AES256` (1.2: `;LABEL` appended)
 *   body         hex of: hex(salt) "\n" hex(hmac) "\n" hex(ciphertext), wrapped at 80 columns
 *   keys         PBKDF2-HMAC-SHA256(password, salt, 10000 iterations, 80 bytes)
 *                = AES key (32) | HMAC key (32) | CTR initial counter (16)
 *   check        HMAC-SHA256(HMAC key, ciphertext) must equal hmac (else: wrong password)
 *   plaintext    AES-256-CTR decryption, then PKCS#7 padding removed (16-byte blocks)
 */
import { createDecipheriv, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hasProgramHeader, isExecutable } from '../util/program-file.js';
import { spawnSync } from 'node:child_process';

export const VAULT_HEADER = '$ANSIBLE_VAULT;';

export class VaultError extends Error {}

/** A password baton may try, with the vault id label it was given under (`--vault-id label@file`). */
export interface VaultSecret {
  label?: string;
  password: Buffer;
  /** Where it came from, for messages (never the password). */
  source: string;
}

export function isVaulted(text: string): boolean {
  return text.trimStart().startsWith(VAULT_HEADER);
}

/** The header's label (1.2), if any. */
export function vaultLabel(text: string): string | undefined {
  const header = text.trimStart().split('\n', 1)[0]!.trim().split(';');
  return header[1] === '1.2' ? header[3] : undefined;
}

/**
 * Decrypt vaulted text with the first secret that opens it (a labelled one first when the
 * header names its label, as ansible-vault does). Throws VaultError saying why not.
 */
export function decryptVault(text: string, secrets: VaultSecret[], what: string): string {
  const lines = text.trim().split(/\r?\n/).map((l) => l.trim());
  const header = lines[0]!.split(';');
  if (header[0] !== '$ANSIBLE_VAULT' || !['1.1', '1.2'].includes(header[1] ?? '')) {
    throw new VaultError(`${what} has an Ansible Vault header baton cannot read ("${lines[0]}"); expected $ANSIBLE_VAULT;1.1;AES256`);
  }
  if ((header[2] ?? '').trim() !== 'AES256') throw new VaultError(`${what} is encrypted with cipher "${header[2]}"; baton opens AES256 vaults only`);
  if (secrets.length === 0) {
    throw new VaultError(`${what} is encrypted with Ansible Vault; pass --vault-password-file FILE (or --vault-id [label@]FILE) to decrypt it`);
  }
  let outer: Buffer;
  let parts: string[];
  try {
    outer = hexStrict(lines.slice(1).join(''));
    parts = outer.toString('latin1').split('\n');
    if (parts.length < 3) throw new Error('three fields expected');
  } catch (e) {
    throw new VaultError(`${what} is not a well-formed Ansible Vault payload (${(e as Error).message}); was it edited by hand or cut short?`);
  }
  const salt = hexStrict(parts[0]!);
  const mac = hexStrict(parts[1]!);
  const ciphertext = hexStrict(parts.slice(2).join('\n'));
  const label = header[1] === '1.2' ? header[3] : undefined;
  const ordered = label ? [...secrets.filter((s) => s.label === label), ...secrets.filter((s) => s.label !== label)] : secrets;
  for (const s of ordered) {
    const derived = pbkdf2Sync(s.password, salt, 10000, 80, 'sha256');
    const expect = createHmac('sha256', derived.subarray(32, 64)).update(ciphertext).digest();
    if (expect.length !== mac.length || !timingSafeEqual(expect, mac)) continue;
    const d = createDecipheriv('aes-256-ctr', derived.subarray(0, 32), derived.subarray(64, 80));
    const padded = Buffer.concat([d.update(ciphertext), d.final()]);
    const pad = padded[padded.length - 1] ?? 0;
    if (pad < 1 || pad > 16 || pad > padded.length) throw new VaultError(`${what}: decrypted, but its padding is invalid; the file is damaged`);
    return padded.subarray(0, padded.length - pad).toString('utf8');
  }
  const tried = ordered.map((s) => s.source).join(', ');
  throw new VaultError(`${what} is encrypted with Ansible Vault and none of the vault passwords given opens it (tried ${tried})${label ? `; its vault id is "${label}"` : ''}`);
}

function hexStrict(s: string): Buffer {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new VaultError('not hexadecimal');
  return Buffer.from(s, 'hex');
}

/**
 * Read a vault password as ansible does: the file's content with surrounding whitespace
 * stripped, or, when the file is executable, what it prints on stdout (a password client
 * script), stripped too.
 */
export function readVaultSecret(spec: string, kind: 'password-file' | 'vault-id'): VaultSecret {
  let label: string | undefined;
  let file = spec;
  if (kind === 'vault-id') {
    const at = spec.indexOf('@');
    if (at >= 0) {
      label = spec.slice(0, at) || undefined;
      file = spec.slice(at + 1);
    }
    if (file === 'prompt') throw new VaultError(`--vault-id ${spec}: baton never prompts (it runs from cron and CI); give a password file`);
  }
  const executable = isExecutable(file);
  // Ansible runs an executable password file; one that is not a program (no #!, no ELF) would be
  // run by /bin/sh, the password as a command, and its "not found" would print the password.
  if (executable && !hasProgramHeader(file)) {
    throw new VaultError(`vault password file ${file} has its execute bit but is not a script (no #! line): baton does not run it. If it holds the password, remove the execute bit (chmod -x); if it is a script, give it a #! line`);
  }
  let text: string;
  if (executable) {
    const r = spawnSync(file, label ? ['--vault-id', label] : [], { encoding: 'utf8', timeout: 30_000 });
    if (r.error || r.status !== 0) {
      throw new VaultError(`vault password script ${file} failed (${r.error?.message ?? `exit ${r.status}`}): ${(r.stderr ?? '').trim()}`);
    }
    text = r.stdout;
  } else {
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new VaultError(`cannot read vault password file ${file}: ${(e as Error).message}`);
    }
  }
  const password = text.trim();
  if (!password) throw new VaultError(`vault password file ${file} is empty`);
  return { label, password: Buffer.from(password, 'utf8'), source: label ? `${label}@${file}` : file };
}
