import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseYaml } from '../../src/playbook/yaml-source.js';

/**
 * The bad-input corpus (test/unit/bad-input/): files that once made baton spin, balloon or
 * run mangled text. Each is given to the real CLI, as a child process whose heap is capped
 * (--max-old-space-size=256), so unbounded memory crashes instead of passing. Every one must
 * exit 2 naming the exact place and problem, and the playbook's step, which would create a
 * marker file on the (local) host, must never run. How fast each is refused is measured by
 * bench/bad-input.mjs, not asserted here.
 */
const execFileP = promisify(execFile);
const CLI = path.resolve('dist/cli/main.js');
const corpus = path.resolve('test/unit/bad-input');

let tmp: string;
let inventory: string;
let marker: string;
let state: string;

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-bad-input-'));
  inventory = path.join(tmp, 'inventory.yml');
  writeFileSync(inventory, 'all:\n  hosts:\n    local:\n      ansible_connection: local\n');
  marker = path.join(tmp, 'marker');
  state = path.join(tmp, 'state');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Outcome {
  code: number;
  stderr: string;
}

async function baton(args: string[]): Promise<Outcome> {
  try {
    const r = await execFileP('node', ['--max-old-space-size=256', CLI, ...args], {
      env: { ...process.env, BATON_STATE_DIR: state, CI: 'true' },
      maxBuffer: 1 << 20,
    });
    return { code: 0, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stderr: e.stderr ?? String(err) };
  }
}

/** `validate` and `run --yes` both refuse the input with exactly this problem, and nothing ran. */
async function expectRefused(playbook: string, inv: string, where: string, message: string): Promise<void> {
  for (const cmd of [['validate'], ['run', '--yes']]) {
    const r = await baton([...cmd, playbook, '-i', inv, '-e', `marker=${marker}`]);
    expect(r.stderr, `${cmd.join(' ')}: ${r.stderr.slice(0, 400)}`).toContain(`${where}: ${message}`);
    expect(r.code, `${cmd.join(' ')} exit code`).toBe(2);
    expect(existsSync(marker), `${cmd.join(' ')} created the marker`).toBe(false);
  }
}

// [corpus file, line, col, the message (or its start)]
const cases: Array<[string, number, number, string]> = [
  ['alias-bomb.yml', 14, 14, 'YAML: aliases expand to more than 1000000 nodes: baton refuses the document (an alias bomb, "billion laughs"?)'],
  ['alias-cycle.yml', 7, 27, 'YAML: this alias refers to a node that contains it: a YAML cycle, which baton cannot read'],
  ['alias-deep.yml', 68, 16, 'YAML: nesting deeper than 64 levels through aliases: baton refuses the document'],
  ['many-aliases.yml', 8, 60012, 'YAML: more than 10000 aliases in one document: baton refuses it (an alias bomb?)'],
  ['merge-key-bomb.yml', 998, 23, 'YAML: merge keys (<<) copy more than 100000 keys: baton refuses the document (a merge-key bomb?)'],
  ['deep-nesting.yml', 7, 72, 'YAML: nesting deeper than 64 levels: baton refuses the document'],
  ['latin1.yml', 4, 28, 'invalid UTF-8 in playbook (byte 0xe9): save the file as UTF-8'],
  ['bom-then-latin1.yml', 1, 6, 'invalid UTF-8 in playbook (byte 0xe9)'],
  ['overlong-utf8.yml', 7, 16, 'invalid UTF-8 in playbook (byte 0xc0)'],
  ['truncated-utf8.yml', 7, 13, 'invalid UTF-8 in playbook (byte 0xc3)'],
  ['utf16.yml', 1, 1, 'playbook is UTF-16 (little-endian byte order mark): save it as UTF-8'],
  ['nul-byte.yml', 7, 10, 'NUL byte in playbook: baton reads text (UTF-8) only; is this a binary file?'],
  ['control-char.yml', 7, 17, 'YAML syntax error: expected valid JSON character (a control character inside a quoted string'],
  ['scalar.yml', 1, 1, 'a playbook is a list of plays ("- hosts: ..."), got the string "hello"'],
  ['number.yml', 2, 1, 'a playbook is a list of plays ("- hosts: ..."), got a number (42)'],
  ['empty.yml', 1, 1, 'a playbook is a list of plays ("- hosts: ..."), got an empty file'],
  ['comments-only.yml', 1, 1, 'a playbook is a list of plays ("- hosts: ..."), got an empty file'],
  ['tab-indent.yml', 3, 1, 'YAML syntax error: tab characters must not be used in indentation (indent with spaces)'],
  ['duplicate-keys.yml', 8, 5, 'YAML syntax error: duplicated mapping key'],
  ['js-function-tag.yml', 7, 51, 'YAML: unknown tag !!js/function: baton reads plain YAML data'],
  ['python-tag.yml', 7, 63, 'YAML: unknown tag !!python/object/apply:os.system: baton reads plain YAML data'],
];

const MARKER_PLAY = `- name: would leave a marker
  hosts: local
  steps:
    - command: { argv: [touch, "{{ marker }}"], creates: "{{ marker }}" }
`;

describe('bad input: exit 2 at file:line:col, nothing run', () => {
  it.each(cases)('%s is refused at %i:%i', async (file, line, col, message) => {
    const full = path.join(corpus, file);
    await expectRefused(full, inventory, `${full}:${line}:${col}`, message);
  });

  // The expression's text is quoted in the message: only its place and the problem are compared.
  it.each([
    ['deep-parens.yml', 5, 48, 'bad template "{{ ((((', 'the expression nests deeper than 64 levels'],
    ['deep-not.yml', 6, 13, 'when: bad condition "not not', 'the expression nests deeper than 64 levels at character 257'],
  ])('%s (an expression nested thousands deep) is refused at %i:%i, not a stack overflow', async (file, line, col, start, problem) => {
    const full = path.join(corpus, file);
    for (const cmd of [['validate'], ['run', '--yes']]) {
      const r = await baton([...cmd, full, '-i', inventory, '-e', `marker=${marker}`]);
      expect(r.stderr.slice(0, 300), cmd.join(' ')).toContain(`${full}:${line}:${col}: ${start}`);
      expect(r.stderr, cmd.join(' ')).toContain(problem);
      expect(r.code, `${cmd.join(' ')} exit code`).toBe(2);
      expect(existsSync(marker)).toBe(false);
    }
  });

  it('a 50 MB playbook is refused by its size before it is read', async () => {
    const big = path.join(tmp, 'big.yml');
    const body = `    v: "${'y'.repeat(1000)}"\n`;
    writeFileSync(big, MARKER_PLAY + '  vars:\n' + body.repeat(Math.ceil((50 * 1024 * 1024) / body.length)));
    await expectRefused(big, inventory, `${big}:1:1`, 'playbook is 50.0 MiB, over the 8 MiB limit for an input file');
  });

  it('a playbook on one 7 MB line is read, and its problem reported', async () => {
    const huge = path.join(tmp, 'huge-line.yml');
    const name = 'x'.repeat(7 * 1024 * 1024);
    writeFileSync(huge, `- { hosts: local, steps: [ { command: { argv: [touch, "{{ marker }}"] } } ], name: "${name}", forkz: 1 }\n`);
    // The key itself, 7 MiB into the line.
    await expectRefused(huge, inventory, `${huge}:1:7340120`, 'unknown key "forkz" in play');
  });

  it('an alias bomb in the inventory is refused too', async () => {
    const pb = path.join(tmp, 'marker.yml');
    writeFileSync(pb, MARKER_PLAY);
    const inv = path.join(corpus, 'inventory', 'alias-bomb.yml');
    await expectRefused(pb, inv, `${inv}:13:14`, 'YAML: aliases expand to more than 1000000 nodes');
  });

  // The inventory loader reads its files through src/playbook/read-source.ts too.
  it('a 50 MB inventory is refused by its size', async () => {
    const pb = path.join(tmp, 'marker.yml');
    writeFileSync(pb, MARKER_PLAY);
    const inv = path.join(tmp, 'big-inventory.yml');
    const line = `        # ${'z'.repeat(1000)}\n`;
    writeFileSync(inv, 'all:\n  hosts:\n    local:\n      ansible_connection: local\n' + line.repeat(Math.ceil((50 * 1024 * 1024) / line.length)));
    await expectRefused(pb, inv, `${inv}:1:1`, 'inventory is 50.0 MiB, over the 8 MiB limit for an input file');
  });

  it('a host range of a hundred million hosts (a mistyped bound) is refused at its line, in bounded memory', async () => {
    const pb = path.join(tmp, 'marker.yml');
    writeFileSync(pb, MARKER_PLAY);
    const inv = path.join(corpus, 'inventory', 'range-bomb.ini');
    await expectRefused(pb, inv, `${inv}:3:1`, 'bad host "web[1:99999999]": "web[1:99999999]" stands for 99999999 hosts; at most 100000 are read from one pattern');
  });

  it('a Latin-1 inventory is refused at its first bad byte', async () => {
    const pb = path.join(tmp, 'marker.yml');
    writeFileSync(pb, MARKER_PLAY);
    const inv = path.join(corpus, 'inventory', 'latin1.yml');
    await expectRefused(pb, inv, `${inv}:5:17`, 'invalid UTF-8 in inventory (byte 0xe9)');
  });
});

describe('the limits leave room for real files', () => {
  it('an inventory of 3000 hosts, each merging shared defaults, loads', () => {
    const hosts = Array.from({ length: 3000 }, (_, i) => `    h${i}: { <<: *defaults, ansible_host: "198.18.${i >> 8}.${i & 255}" }`).join('\n');
    const text = `x-defaults: &defaults { ansible_user: ops, ansible_port: 22, iface: eth0, site: dc1, rack: r1 }\nall:\n  hosts:\n${hosts}\n`;
    const doc = parseYaml(text, 'big.yml');
    const all = (doc.value as { all: { hosts: Record<string, Record<string, unknown>> } }).all;
    expect(Object.keys(all.hosts)).toHaveLength(3000);
    expect(all.hosts.h2999).toEqual({ ansible_user: 'ops', ansible_port: 22, iface: 'eth0', site: 'dc1', rack: 'r1', ansible_host: '198.18.11.183' });
  });

  it('an INI inventory whose groups nest 20000 deep, declared either way round, loads (no recursion, no quadratic search)', async () => {
    const pb = path.join(tmp, 'marker.yml');
    writeFileSync(pb, MARKER_PLAY);
    const n = 20_000;
    const down = Array.from({ length: n - 1 }, (_, i) => `[g${i + 1}:children]\ng${i + 2}\n`).join('');
    const up = Array.from({ length: n - 1 }, (_, i) => `[g${n - 1 - i}:children]\ng${n - i}\n`).join('');
    for (const [name, body] of [['chain-down.ini', down], ['chain-up.ini', up]] as const) {
      const inv = path.join(tmp, name);
      writeFileSync(inv, `[g${n}]\nlocal ansible_connection=local\n${body}`);
      const r = await baton(['validate', pb, '-i', inv, '-e', `marker=${marker}`]);
      expect(r.code, `${name}: ${r.stderr.slice(0, 300)}`).toBe(0);
    }
  }, 120_000);

  it('nesting 60 levels deep is read', () => {
    const text = 'a: ' + '['.repeat(60) + '1' + ']'.repeat(60) + '\n';
    expect(() => parseYaml(text, 'deep.yml')).not.toThrow();
  });
});
