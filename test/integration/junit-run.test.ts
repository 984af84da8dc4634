/**
 * `baton run --junit FILE` on the local transport (no root, no SSH): the file a CI server
 * collects, valid against test/fixtures/junit.xsd (xmllint), for a run that succeeds and for one
 * that fails and rolls back; secrets from the inventory never reach it.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { baton as batonIn } from '../helpers/nfs-service.js';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { validateJunit } from '../helpers/reports.js';

const CLI = path.resolve('dist/cli/main.js');

let work: string;

/** The real CLI, non-interactive, with this test's state dir. */
const baton = (args: string[]) => batonIn(args, path.join(work, 'state'));

function files(failing: boolean): { pb: string; inv: string } {
  const t = path.join(work, 't');
  const pb = path.join(work, 'pb.yml');
  writeFileSync(
    pb,
    `- name: local <moves> & "more"
  hosts: localhost
  steps:
    - name: make a
      command: { argv: [touch, "${t}-a"], creates: "${t}-a", revert: [rm, -f, "${t}-a"] }
      register: made
    - name: only when nothing was made
      command: ["true"]
      when: made is not changed
    - name: use the secret
      command: [sh, -c, 'test -n "$1"', x, "{{ db_password }}"]
${failing ? `    - name: fail <loudly>
      command: [sh, -c, 'echo "no space left on device; key {{ db_password }}" >&2; exit 4']
` : ''}- name: second play
  hosts: localhost
  steps:
    - name: look
      command: ["true"]
`,
  );
  const inv = path.join(work, 'inv.yml');
  writeFileSync(inv, `all:\n  hosts:\n    localhost:\n      ansible_connection: local\n      db_password: s3cr3t-v4lue\n`);
  return { pb, inv };
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
  if (!existsSync('/usr/bin/xmllint')) throw new Error('xmllint is missing: run scripts/install-test-deps.sh');
});
beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'baton-junit-'));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

describe('baton run --junit', () => {
  it('a successful run: a suite per play, a case per step and host, the skipped one marked, valid against the XSD', async () => {
    const { pb, inv } = files(false);
    const junit = path.join(work, 'out', 'run.xml');
    const r = await baton(['run', '--yes', '-i', inv, pb, '--junit', junit]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // run's own output is unchanged by --junit.
    expect(r.stdout).toMatch(/RECAP/);
    const v = await validateJunit(junit);
    expect(v.ok, v.output).toBe(true);
    const xml = readFileSync(junit, 'utf8');
    expect([...xml.matchAll(/<testsuite name="([^"]+)"/g)].map((m) => m[1])).toEqual(['local &lt;moves&gt; &amp; &quot;more&quot;', 'second play']);
    expect([...xml.matchAll(/<testcase classname="([^"]+)" name="([^"]+)"/g)].map((m) => `${m[1]} :: ${m[2]}`)).toEqual([
      'local &lt;moves&gt; &amp; &quot;more&quot;/localhost :: make a',
      'local &lt;moves&gt; &amp; &quot;more&quot;/localhost :: only when nothing was made',
      'local &lt;moves&gt; &amp; &quot;more&quot;/localhost :: use the secret',
      'second play/localhost :: look',
    ]);
    expect(xml).toMatch(/<testsuites name="pb.yml" tests="4" failures="0" errors="0" time="[0-9.]+">/);
    expect(xml).not.toContain('s3cr3t-v4lue');
  });

  it('a failing run rolled back: exit 1, the failure with the command and stderr (redacted), the revert as a case; still valid', async () => {
    const { pb, inv } = files(true);
    const junit = path.join(work, 'run.xml');
    const r = await baton(['run', '--yes', '-i', inv, pb, '--junit', junit]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const v = await validateJunit(junit);
    expect(v.ok, v.output).toBe(true);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/<testcase classname="[^"]+\/localhost" name="fail &lt;loudly&gt;" time="[\d.]+">\s*<failure message="[^"]*exited 4: no space left on device[^"]*" type="StepFailed">/);
    expect(xml).toMatch(/name="revert: make a"/);
    expect(xml).not.toContain('s3cr3t-v4lue');
    expect(xml).toMatch(/<testsuites [^>]*failures="1"/);
  });

  it('a run that cannot start (host unreachable) still leaves a valid file with an error case', async () => {
    const pb = path.join(work, 'pb.yml');
    writeFileSync(pb, `- name: far\n  hosts: far\n  steps:\n    - name: look\n      command: ["true"]\n`);
    const inv = path.join(work, 'inv.yml');
    writeFileSync(inv, `all:\n  hosts:\n    far:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n      ansible_user: nobody\n`);
    const junit = path.join(work, 'run.xml');
    const r = await baton(['run', '--yes', '-i', inv, pb, '--junit', junit]);
    expect(r.code, r.stdout + r.stderr).toBe(4);
    const v = await validateJunit(junit);
    expect(v.ok, v.output).toBe(true);
    expect(readFileSync(junit, 'utf8')).toMatch(/<error message="cannot reach 1 host\(s\)/);
  });
});
