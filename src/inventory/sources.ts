/**
 * Which reader takes an inventory source, as ansible-core's enabled inventory plugins decide:
 *   `a,b,`            (no such file, holds a comma) a list of hosts, into `ungrouped`
 *   a directory       every file in it, sorted, recursively, minus Ansible's ignored names
 *                     (hidden, group_vars, host_vars, vars_plugins, and the extensions of
 *                     INVENTORY_IGNORE_EXTS: .orig .ini .cfg .retry .pyc .pyo .swp .bak ~ .rpm
 *                     .md .txt .rst)
 *   an executable     an inventory script
 *   .yml .yaml .json  YAML
 *   no extension      YAML when it parses as a mapping, otherwise INI
 *   anything else     INI
 * A vault-encrypted source is decrypted first.
 */
import { readdirSync, statSync } from 'node:fs';
import { readSource as readBoundedSource } from '../playbook/read-source.js';
import { ValidationError } from '../util/errors.js';
import path from 'node:path';
import { checkAgainst, compileSchema } from '../playbook/schema-check.js';
import { parseYaml, YamlSyntaxError, type ParsedYaml } from '../playbook/yaml-source.js';
import type { Problem } from '../util/errors.js';
import type { InventoryData } from './data.js';
import { HostPatternError, parseHostPattern } from './host-pattern.js';
import { parseIniInventory } from './ini.js';
import { readScriptInventory } from './script.js';
import { isProgram } from '../util/program-file.js';
import { checkVarsFrom, inventorySchema } from './vars-check.js';
import { withoutVaultTags, type SecretBook } from './secrets.js';
import { decryptVault, isVaulted, VaultError } from './vault.js';
import { readYamlInventory } from './yaml-inventory.js';

const IGNORED_NAMES = /^\.|^host_vars$|^group_vars$|^vars_plugins$/;
const IGNORED_EXTS = ['.pyc', '.pyo', '.swp', '.bak', '~', '.rpm', '.md', '.txt', '.rst', '.orig', '.ini', '.cfg', '.retry'];
const YAML_EXTS = ['.yml', '.yaml', '.json'];

export function ignoredInDirectory(name: string): boolean {
  return IGNORED_NAMES.test(name) || IGNORED_EXTS.some((e) => name.endsWith(e));
}

/**
 * `visited`: the directories read so far (device and inode): a symlink back up the tree (`a -> .`)
 * is read once, not until the kernel's ELOOP or, with two such links, for ever.
 */
export function readSource(source: string, data: InventoryData, book: SecretBook, problems: Problem[], visited = new Set<string>()): void {
  let st;
  try {
    st = statSync(source);
  } catch (e) {
    if (source.includes(',')) return hostList(source, data, problems);
    problems.push({ loc: { file: source, line: 1, col: 1 }, message: `cannot read inventory: ${(e as Error).message}` });
    return;
  }
  if (st.isDirectory()) {
    const id = `${st.dev}:${st.ino}`;
    if (visited.has(id)) return;
    visited.add(id);
    let names: string[];
    try {
      names = readdirSync(source).sort();
    } catch (e) {
      problems.push({ loc: { file: source, line: 1, col: 1 }, message: `cannot read inventory directory: ${(e as Error).message}` });
      return;
    }
    for (const name of names) {
      if (ignoredInDirectory(name)) continue;
      readSource(path.join(source, name), data, book, problems, visited);
    }
    return;
  }
  readFile(source, data, book, problems);
}

function hostList(source: string, data: InventoryData, problems: Problem[]): void {
  const loc = { file: '-i', line: 1, col: 1 };
  for (const word of source.split(',').map((s) => s.trim()).filter(Boolean)) {
    try {
      const { names, port } = parseHostPattern(word);
      for (const n of names) data.addHost(n, 'ungrouped', port, loc);
    } catch (e) {
      if (!(e instanceof HostPatternError)) throw e;
      problems.push({ loc, message: `bad host "${word}" in host list "${source}": ${e.message}` });
    }
  }
}

function readFile(file: string, data: InventoryData, book: SecretBook, problems: Problem[]): void {
  const ext = path.extname(file);
  // A script only if it is a program (#! or ELF): an executable YAML or INI file is data, as
  // Ansible reads it, never shell code.
  if (isProgram(file)) {
    readScriptInventory(file, data, problems);
    return checkVarsFrom(file, data, problems);
  }
  let text: string;
  try {
    // Bounded and strict: size limit, valid UTF-8, no NUL (read-source.ts).
    text = readBoundedSource(file, 'inventory');
  } catch (e) {
    if (e instanceof ValidationError) problems.push(...e.problems);
    else problems.push({ loc: { file, line: 1, col: 1 }, message: `cannot read inventory: ${(e as Error).message}` });
    return;
  }
  let shownAs = file;
  if (isVaulted(text)) {
    try {
      text = decryptVault(text, book.vault, `inventory ${file}`);
      shownAs = `${file} (decrypted)`;
    } catch (e) {
      if (!(e instanceof VaultError)) throw e;
      problems.push({ loc: { file, line: 1, col: 1 }, message: e.message });
      return;
    }
  }
  if (ext === '.toml') {
    problems.push({ loc: { file, line: 1, col: 1 }, message: `TOML inventories are not read by baton; convert it with: ansible-inventory -i ${file} --list -y > inventory.yml` });
    return;
  }
  if (YAML_EXTS.includes(ext)) {
    let doc: ParsedYaml;
    try {
      doc = parseYaml(withoutVaultTags(text), shownAs);
    } catch (e) {
      if (e instanceof YamlSyntaxError) {
        problems.push(e.problem);
        return;
      }
      throw e;
    }
    return yamlDoc(doc, data, book, problems);
  }
  if (ext === '') {
    try {
      const doc = parseYaml(withoutVaultTags(text), shownAs);
      if (doc.value !== null && typeof doc.value === 'object' && !Array.isArray(doc.value)) return yamlDoc(doc, data, book, problems);
    } catch (e) {
      if (!(e instanceof YamlSyntaxError)) throw e;
    }
  }
  parseIniInventory(text, shownAs, data, problems);
  checkVarsFrom(shownAs, data, problems);
}

function yamlDoc(doc: ParsedYaml, data: InventoryData, book: SecretBook, problems: Problem[]): void {
  const v = doc.value;
  if (v === null || v === undefined) {
    problems.push({ loc: doc.at([]), message: 'the inventory is empty (Ansible refuses an empty YAML inventory too)' });
    return;
  }
  if (typeof v !== 'object' || Array.isArray(v)) {
    problems.push({ loc: doc.at([]), message: 'an inventory must be a mapping of groups (e.g. "all:")' });
    return;
  }
  const top = v as Record<string, unknown>;
  if (typeof top.plugin === 'string') {
    problems.push({
      loc: doc.at(['plugin']),
      message: `this is the configuration of Ansible inventory plugin "${top.plugin}", which baton does not run; export what it finds with: ansible-inventory -i ${doc.file} --list -y > inventory.yml`,
    });
    return;
  }
  const found = checkAgainst(compileSchema('inventory', inventorySchema()), v, { doc, basePath: [], rootLabel: 'the inventory' });
  if (found.length) {
    problems.push(...found);
    return;
  }
  readYamlInventory(doc, data, book, problems);
}

