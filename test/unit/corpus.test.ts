import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadInventory } from '../../src/inventory/load.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { ValidationError, type Problem } from '../../src/util/errors.js';
import { testRegistry } from './fixtures/kinds.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const corpus = path.join(here, 'corpus');
const inventory = loadInventory(path.join(here, 'fixtures/inv/prod.yml'));

/** Every problem of a broken file (playbook, or inventory for `inv-*`). */
function problemsOf(file: string): Problem[] {
  const full = path.join(corpus, file);
  try {
    if (file.startsWith('inv-')) loadInventory(full);
    else {
      loadPlaybook(full, {
        inventory,
        extraVars: { to: 'nas2', from: 'nas1' },
        registry: testRegistry(),
        rolesPath: path.join(here, 'fixtures/project/roles'),
      });
    }
  } catch (err) {
    if (err instanceof ValidationError) return err.problems;
    throw err;
  }
  throw new Error(`${file} loaded without a problem`);
}

// [file, line, col, what the message must say]
const cases: Array<[string, number, number, string]> = [
  ['syntax-error.yml', 4, 1, 'YAML syntax error: unexpected end of the stream within a double quoted scalar'],
  ['bad-indentation.yml', 4, 4, 'YAML syntax error: bad indentation of a mapping entry (check that this key lines up'],
  ['duplicate-key.yml', 5, 7, 'YAML syntax error: duplicated mapping key'],
  ['unknown-kind.yml', 4, 7, 'unknown step kind "raise_ip" (did you mean "raise_vip"?)'],
  ['two-kinds.yml', 4, 7, 'step has two kinds, "command" and "wait_for"'],
  ['no-kind.yml', 3, 7, 'step has no kind: add one of command, demote, fence, lower_vip, raise_vip, wait_for'],
  ['missing-hosts.yml', 1, 3, 'missing required key "hosts" in play'],
  ['retries-type.yml', 4, 16, '"retries" must be an integer, got the string "three"'],
  ['unknown-play-key.yml', 2, 3, 'unknown key "forkz" in play (allowed: name, hosts, vars, roles, steps, tasks, tags, forks, serial'],
  ['unknown-step-key.yml', 4, 7, 'unknown key "whn" in step (did you mean "when"?) (allowed: name, tags, when,'],
  ['bad-step-arg.yml', 4, 15, '"port" must be an integer, got the string "ssh"'],
  ['bad-step-arg-missing.yml', 4, 9, 'missing required key "interface"'],
  ['argv-unquoted-number.yml', 3, 24, 'item 2 of "command" arguments must be a string, got a number (5)'],
  ['undefined-var-args.yml', 6, 18, 'undefined variable "vipp" in "raise_vip" arguments "{{ vipp }}/24" (did you mean "vip"?)'],
  ['undefined-var-hosts.yml', 1, 10, 'hosts: undefined variable "target" in "{{ target }}" (pass it with -e target=...)'],
  ['host-not-in-inventory.yml', 1, 10, 'hosts: no host or group "nas3" in inventory'],
  ['delegate-not-in-inventory.yml', 4, 20, 'delegate_to: host "nas9" is not in inventory'],
  ['bad-when.yml', 4, 13, `when: bad condition "vip = '198.18.0.100'": unexpected character "=" at character 5`],
  ['unknown-role.yml', 3, 7, 'role "vipp" not found (looked in: '],
  ['takeover-before-fence.yml', 5, 7, 'unsafe order: takeover step "raise the VIP" (raise_vip) runs before any fence or release step'],
  ['loop-not-list.yml', 4, 13, '"loop" must be a list or a "{{ template }}" that renders to one, got the string "nas1"'],
  ['bad-on-failure.yml', 2, 15, '"on_failure" must be one of "rollback", "stop", got the string "abort"'],
  ['var-missing-on-some-hosts.yml', 3, 23, 'variable "role_hint" in "command" arguments "{{ role_hint }}" is not defined for host nas2 (it is for nas1)'],
  ['not-a-list.yml', 1, 1, 'a playbook is a list of plays ("- hosts: ..."), got a mapping'],
  ['bad-template.yml', 3, 23, 'bad template "{{ vip | shout }}": unknown filter "shout"'],
  ['inv-bad-group-shape.yml', 4, 7, '"storage" must be a mapping of hosts, children and vars (or nothing), got a list'],
  ['inv-host-var-type.yml', 4, 21, '"ansible_port" must be a port number (1-65535), got the string "twenty-two"'],
  ['inv-unknown-group-key.yml', 4, 7, 'unknown key "host" in group (allowed: hosts, children, vars)'],
  ['inv-duplicate-host.yml', 5, 5, 'YAML syntax error: duplicated mapping key'],
];

describe('broken playbooks and inventories', () => {
  it.each(cases)('%s is reported at %i:%i', (file, line, col, message) => {
    const problems = problemsOf(file);
    expect(problems).toHaveLength(1);
    const [p] = problems;
    expect(p!.loc.file).toBe(path.join(corpus, file));
    expect([p!.loc.line, p!.loc.col]).toEqual([line, col]);
    expect(p!.message).toContain(message);
  });

  it('names both steps when a takeover comes before the fence', () => {
    const [p] = problemsOf('takeover-before-fence.yml');
    expect(p!.message).toContain('"fence the old node" (fence) at line 7');
  });

  it('reports every problem of a file at once, in file order', () => {
    const got = problemsOf('several-errors.yml').map((p) => [p.loc.line, p.loc.col, p.message.slice(0, 30)]);
    expect(got).toEqual([
      [2, 3, 'unknown key "forkz" in play (a'],
      [4, 7, 'unknown step kind "raise_ip" ('],
      [5, 23, 'undefined variable "nope" in "'],
      [6, 16, '"retries" must be an integer, '],
      [7, 10, 'hosts: no host or group "nas7"'],
      [8, 15, '"on_failure" must be one of "r'],
      [10, 25, '"port" must be >= 1, got a num'],
      [11, 13, 'when: bad condition "vip is": '],
    ]);
  });

  it('formats each problem as file:line:col: message', () => {
    try {
      loadPlaybook(path.join(corpus, 'unknown-kind.yml'), { inventory, registry: testRegistry() });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toBe(`${path.join(corpus, 'unknown-kind.yml')}:4:7: unknown step kind "raise_ip" (did you mean "raise_vip"?)`);
      expect((err as ValidationError).exitCode).toBe(2);
    }
  });

  it('covers at least 20 broken files, each listed above', async () => {
    const { readdirSync } = await import('node:fs');
    const files = readdirSync(corpus).filter((f) => f.endsWith('.yml'));
    const listed = new Set([...cases.map((c) => c[0]), 'several-errors.yml']);
    expect(files.filter((f) => !listed.has(f))).toEqual([]);
    expect(files.length).toBeGreaterThanOrEqual(20);
  });
});
