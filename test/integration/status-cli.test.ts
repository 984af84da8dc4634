/**
 * `baton status` from the command line, without a lab: what on-call gets back when the
 * inventory is wrong (exit 3, every problem at file:line:col, no node contacted), and when a
 * node cannot be reached (exit 1, the node named with why, its group unknown rather than
 * "stopped"). One node is the controller itself (ansible_connection: local), the other a closed
 * port on loopback. No root needed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baton as batonIn } from '../helpers/nfs-service.js';

let work: string;
const baton = (args: string[]) => batonIn(args, path.join(work, 'state'));

function inventory(name: string, text: string): string {
  const file = path.join(work, name);
  writeFileSync(file, text);
  return file;
}

const HOSTS = `  hosts:
    n1: { ansible_connection: local }
    n2: { ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: nobody }
`;

describe('baton status (CLI)', () => {
  beforeAll(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'baton-status-cli-'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('a bad group: exit 3, the problem at its file:line:col, nothing contacted', async () => {
    const inv = inventory(
      'bad.yml',
      `all:
  vars:
    baton_services:
      g1: { vip: 198.18.191.250/24, nodes: [n1, n7] }
${HOSTS}`,
    );
    const r = await baton(['status', '-i', inv]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`${inv}:4:49: service group g1: node "n7" is not a host of the inventory`);
    expect(r.stderr).toMatch(/invalid input; no node was contacted/);
    const j = await baton(['status', '-i', inv, '--json']);
    expect(j.code).toBe(3);
    expect(JSON.parse(j.stdout)).toEqual({ error: expect.stringContaining(':4:49: service group g1'), exitCode: 3 });
  });

  it('no inventory, no group, or a bad option: exit 3, never the 2 of a split brain', async () => {
    expect((await baton(['status'])).code).toBe(3);
    const none = await baton(['status', '-i', inventory('none.yml', `all:\n${HOSTS}`)]);
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/no service group: declare them in all\.vars\.baton_services/);
    expect((await baton(['status', '--no-such-option'])).code).toBe(3);
    const good = inventory('good.yml', `all:\n  vars:\n    baton_services: { g1: { vip: 198.18.191.250/24, nodes: [n1] } }\n${HOSTS}`);
    const bound = await baton(['status', '-i', good, '--connect-timeout', 'soon']);
    expect(bound.code).toBe(3);
    expect(bound.stderr).toMatch(/--connect-timeout must be a number of seconds/);
  });

  it('a node that cannot be reached: exit 1, named with why; the group is unknown, not stopped', async () => {
    const inv = inventory(
      'one.yml',
      `all:
  vars:
    baton_services:
      g1:
        vip: 198.18.191.250/24
        mount: { path: /nonexistent/baton-status-test, fstype: ext4 }
        nodes: [n1, n2]
${HOSTS}`,
    );
    const r = await baton(['status', '-i', inv, '--json', '--connect-timeout', '2']);
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as { groups: Array<Record<string, unknown>>; nodes: Array<Record<string, unknown>>; exitCode: number };
    expect(doc.groups).toEqual([
      expect.objectContaining({ name: 'g1', state: 'unknown', nodes: [], summary: 'unknown: not seen on the nodes read; n2 could not be read' }),
    ]);
    expect(doc.nodes).toEqual([
      { name: 'n1', reachable: true, power: 'unknown', powerError: expect.stringMatching(/no BMC in the inventory/) },
      { name: 'n2', reachable: false, power: 'unknown', error: expect.stringMatching(/cannot reach n2 at nobody@127\.0\.0\.1:1/), powerError: expect.stringMatching(/no BMC/) },
    ]);
    const text = await baton(['status', '-i', inv]);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^g1\s+-\s+unknown: not seen on the nodes read; n2 could not be read$/m);
    expect(text.stdout).toMatch(/^n2\s+no\s+unknown$/m);
    expect(text.stdout).toMatch(/^n2: cannot reach n2 at nobody@127\.0\.0\.1:1/m);
    expect(text.stdout).toMatch(/^DEGRADED: 1 group \(1 unknown\); 1 of 2 nodes read \(not: n2\); /m);
  });
});
