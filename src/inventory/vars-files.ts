/**
 * group_vars/ and host_vars/ next to an inventory source, found as Ansible's host_group_vars
 * plugin finds them: the first that exists of `NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json` (a
 * directory `NAME/` counts as `NAME`), the others ignored; a directory's
 * files (recursively, sorted, hidden and `~` backups skipped, extension .yml/.yaml/.json or
 * none) are read in order, a later file's value winning. A file may be vault-encrypted as a
 * whole, or hold `!vault` values.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readSource as readBoundedSource } from '../playbook/read-source.js';
import { ValidationError } from '../util/errors.js';
import path from 'node:path';
import { parseYaml, YamlSyntaxError, type ParsedYaml } from '../playbook/yaml-source.js';
import type { Problem, SourceLocation } from '../util/errors.js';
import { openVaultedValues, withoutVaultTags, type SecretBook } from './secrets.js';
import { decryptVault, isVaulted, VaultError } from './vault.js';

type Vars = Record<string, unknown>;
const EXTS = ['.yml', '.yaml', '.json'];

export interface VarsLayer {
  vars: Vars;
  locs: Record<string, SourceLocation>;
}

function dirFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir).sort()) {
    if (e.startsWith('.') || e.endsWith('~')) continue;
    const full = path.join(dir, e);
    const ext = path.extname(e);
    // A dangling symlink (a vars file removed, its link left) is passed over, as Ansible does.
    const st = statSync(full, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory() && !ext) out.push(...dirFiles(full));
    else if (st.isFile() && (!ext || EXTS.includes(ext))) out.push(full);
  }
  return out;
}

/** Names in each group_vars/host_vars directory, read once per load (thousands of hosts ask). */
export type DirListings = Map<string, Set<string> | null>;

function listed(dir: string, cache: DirListings | undefined): Set<string> | null | undefined {
  if (!cache) return undefined;
  if (!cache.has(dir)) {
    try {
      cache.set(dir, new Set(readdirSync(dir)));
    } catch {
      cache.set(dir, null);
    }
  }
  return cache.get(dir);
}

export function findVarsFiles(dir: string, name: string, cache?: DirListings): string[] {
  const found: string[] = [];
  const names = listed(dir, cache);
  if (names === null) return found;
  // The first that exists, and only it: Ansible's DataLoader.find_vars_files stops there, so a
  // stale `NAME.yml` beside a `NAME/` directory is never read (reading it too made it win).
  for (const ext of ['', ...EXTS]) {
    const f = path.join(dir, name + ext);
    if (names ? !names.has(name + ext) : !existsSync(f)) continue;
    const st = statSync(f, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) found.push(...dirFiles(f));
    else found.push(f);
    break;
  }
  return found;
}

/** One vars file: its mapping (vault opened), with where each var was written. */
export function readVarsFile(file: string, book: SecretBook, problems: Problem[]): VarsLayer | undefined {
  let text: string;
  try {
    text = readBoundedSource(file, 'vars file');
  } catch (e) {
    if (e instanceof ValidationError) problems.push(...e.problems);
    else problems.push({ loc: { file, line: 1, col: 1 }, message: `cannot read vars file: ${(e as Error).message}` });
    return undefined;
  }
  let fromVault = false;
  if (isVaulted(text)) {
    try {
      text = decryptVault(text, book.vault, file);
      fromVault = true;
    } catch (e) {
      if (!(e instanceof VaultError)) throw e;
      problems.push({ loc: { file, line: 1, col: 1 }, message: e.message });
      return undefined;
    }
  }
  let doc: ParsedYaml;
  try {
    doc = parseYaml(withoutVaultTags(text), fromVault ? `${file} (decrypted)` : file);
  } catch (e) {
    if (e instanceof YamlSyntaxError) {
      problems.push(e.problem);
      return undefined;
    }
    throw e;
  }
  if (doc.value === null || doc.value === undefined) return { vars: {}, locs: {} };
  if (typeof doc.value !== 'object' || Array.isArray(doc.value)) {
    problems.push({ loc: doc.at([]), message: `a vars file must be a mapping of names to values, got ${Array.isArray(doc.value) ? 'a list' : typeof doc.value}` });
    return undefined;
  }
  const vars = doc.value as Vars;
  openVaultedValues(vars, doc, [], book, problems);
  if (fromVault) for (const [k, v] of Object.entries(vars)) book.remember(k, v);
  const locs: Record<string, SourceLocation> = {};
  for (const k of Object.keys(vars)) locs[k] = doc.at([k]);
  return { vars, locs };
}

/** Every var file for `name` under DIR/group_vars or DIR/host_vars, merged in order. */
export function varsFor(dir: string, kind: 'group_vars' | 'host_vars', name: string, book: SecretBook, problems: Problem[], cache?: DirListings): VarsLayer | undefined {
  // A name with a path separator would look outside the directory: no such vars file.
  if (name.includes('/') || name === '..') return undefined;
  const files = findVarsFiles(path.join(dir, kind), name, cache);
  if (!files.length) return undefined;
  const out: VarsLayer = { vars: {}, locs: {} };
  for (const f of files) {
    const layer = readVarsFile(f, book, problems);
    if (!layer) continue;
    Object.assign(out.vars, layer.vars);
    Object.assign(out.locs, layer.locs);
  }
  return out;
}
