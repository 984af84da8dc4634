/**
 * The lab itself, on real namespaces (root). Tests run in order and share one lab; each one
 * puts back what it changed unless a later test builds on it (said where it does).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import yaml from 'js-yaml';
import { requireRoot, startLab, type Lab } from '../helpers/lab.js';
import { runRaw, sleep } from '../../src/lab/exec.js';
import { labUp } from '../../src/lab/up.js';
import { bmcFiles } from '../../src/lab/bmc.js';

const NAME = 'labtest';
const SUBNET = '198.18.10.0/24';
const EXPORT_CONF = '/run/ganesha/disk1-export.conf';
const EXPORT_ID = 101;

let lab: Lab | undefined;

function L(): Lab {
  if (!lab) throw new Error('the lab did not come up (see beforeAll)');
  return lab;
}

/** Exact dbus-send argv that drives a node's Ganesha (worked here; see docs/lab.md). */
const ganeshaAddExport = (conf: string, id: number) => [
  'dbus-send', '--system', '--print-reply', '--dest=org.ganesha.nfsd', '/org/ganesha/nfsd/ExportMgr',
  'org.ganesha.nfsd.exportmgr.AddExport', `string:${conf}`, `string:EXPORT(Export_ID=${id})`,
];
const ganeshaRemoveExport = (id: number) => [
  'dbus-send', '--system', '--print-reply', '--dest=org.ganesha.nfsd', '/org/ganesha/nfsd/ExportMgr',
  'org.ganesha.nfsd.exportmgr.RemoveExport', `uint16:${id}`,
];

async function processesOf(netns: string): Promise<string[]> {
  const r = await runRaw(['ip', 'netns', 'pids', netns]);
  const names: string[] = [];
  for (const pid of r.stdout.split(/\s+/).filter(Boolean)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
      names.push(readFileSync(`/proc/${pid}/comm`, 'utf8').trim());
    } catch {
      /* gone */
    }
  }
  return names;
}

async function loopsOf(image: string): Promise<string> {
  return (await runRaw(['losetup', '-j', image])).stdout.trim();
}

beforeAll(async () => {
  requireRoot();
  lab = await startLab({ name: NAME, subnet: SUBNET, nodes: 2, clients: 1, disks: 2 });
  console.log(`baton lab up (2 nodes, 1 client, 2 disks): ${(lab.upMs / 1000).toFixed(2)} s`);
});

afterAll(async () => {
  // Also on failure: a lab left behind would break the next run and the other test files.
  if (lab) await lab.down();
});

describe('baton lab', () => {
  it('writes an Ansible-shaped inventory with connection, BMC and lab variables', () => {
    const inv = yaml.load(readFileSync(L().inventoryPath, 'utf8')) as any;
    const vars = inv.all.vars;
    expect(vars).toMatchObject({ lab_name: NAME, lab_subnet: SUBNET, lab_prefix: 24, vip: '198.18.10.200' });
    expect(vars.disks).toHaveLength(2);
    for (const d of vars.disks) expect(existsSync(d)).toBe(true);
    const n1 = inv.all.children.nodes.hosts.n1;
    expect(n1).toMatchObject({
      ansible_host: '198.18.10.11',
      ansible_user: 'root',
      ansible_ssh_private_key_file: L().keyFile,
      baton_known_hosts: L().knownHostsFile,
      bmc_address: '198.18.10.1',
      bmc_user: 'admin',
      iface: 'eth0',
      mac: L().node('n1').mac,
    });
    expect(typeof n1.bmc_port).toBe('number');
    expect(n1.bmc_password).toBeTruthy();
    expect(inv.all.children.nodes.hosts.n2.bmc_port).not.toBe(n1.bmc_port);
    expect(inv.all.children.clients.hosts.c1).toMatchObject({ ansible_connection: 'local', lab_netns: `baton-${NAME}-c1` });
  });

  it('reaches every node over SSH with strict host key checking, each with its own hostname', async () => {
    for (const n of L().nodes) {
      expect((await L().sshOk(n, ['hostname'])).trim()).toBe(n.name);
    }
    // Strictness is real: the same connection without the lab's known_hosts is refused.
    const argv = L().sshArgv('n1', ['true']).map((a) => (a.startsWith('UserKnownHostsFile=') ? 'UserKnownHostsFile=/dev/null' : a));
    const r = await runRaw(argv, { timeoutMs: 10_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Host key verification failed/);
  });

  it('starts sshd, dbus, rpcbind, statd and Ganesha (with no exports) on every node', async () => {
    for (const n of L().nodes) {
      const procs = await processesOf(n.netns);
      for (const p of ['sshd', 'dbus-daemon', 'rpcbind', 'rpc.statd', 'ganesha.nfsd']) expect(procs, `${n.name}`).toContain(p);
      const out = await L().sshOk(n, ['dbus-send', '--system', '--print-reply', '--dest=org.ganesha.nfsd', '/org/ganesha/nfsd/ExportMgr', 'org.ganesha.nfsd.exportmgr.ShowExports']);
      // Only the pseudo root (export 0) exists at boot.
      expect([...out.matchAll(/uint16 (\d+)/g)].map((m) => Number(m[1]))).toEqual([0]);
    }
  });

  it('gives each node its own mount table: a mount on n1 is seen neither on n2 nor on the host', async () => {
    const img = L().disks[1]!;
    await L().sshOk('n1', ['mount', '-o', 'loop', img, '/srv/disk2']);
    try {
      expect(await L().sshOk('n1', ['findmnt', '-n', '-o', 'SOURCE', '/srv/disk2'])).toMatch(/\/dev\/loop\d+/);
      const n2 = await L().sshExec('n2', ['findmnt', '-n', '/srv/disk2']);
      expect(n2.code).toBe(1);
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain('/srv/disk2');
      expect(await loopsOf(img)).toContain(img);
    } finally {
      await L().sshOk('n1', ['umount', '/srv/disk2']);
    }
  });

  it('moves a VIP from n1 to n2: after a gratuitous ARP the client reaches it at n2\'s MAC', async () => {
    const { vip } = L();
    const [n1, n2] = [L().node('n1'), L().node('n2')];
    await L().sshOk(n1, ['ip', 'addr', 'add', `${vip}/24`, 'dev', 'eth0']);
    await L().sshOk(n1, ['arping', '-U', '-c', '1', '-I', 'eth0', vip]);
    expect((await L().clientExec('c1', ['ping', '-c', '1', '-W', '2', vip])).code).toBe(0);
    expect((await L().clientExec('c1', ['ip', 'neigh', 'show', vip])).stdout).toContain(n1.mac);

    await L().sshOk(n1, ['ip', 'addr', 'del', `${vip}/24`, 'dev', 'eth0']);
    await L().sshOk(n2, ['ip', 'addr', 'add', `${vip}/24`, 'dev', 'eth0']);
    // Linux ignores an ARP update to an entry younger than locktime (1 s; FACTS.md, garp):
    // let the entry the ping refreshed age past it, as a real takeover would.
    await sleep(1100);
    await L().sshOk(n2, ['arping', '-U', '-c', '1', '-I', 'eth0', vip]);
    const neigh = (await L().clientExec('c1', ['ip', 'neigh', 'show', vip])).stdout;
    expect(neigh).toContain(n2.mac);
    expect(neigh).not.toContain(n1.mac);
    expect((await L().clientExec('c1', ['ping', '-c', '1', '-W', '2', vip])).code).toBe(0);
    await L().sshOk(n2, ['ip', 'addr', 'del', `${vip}/24`, 'dev', 'eth0']);
  });

  it('serves a disk mounted on n1 and exported over D-Bus to the client through the VIP (NFSv4 and v3)', async () => {
    const { vip } = L();
    const token = randomBytes(8).toString('hex');
    await L().sshOk('n1', ['mount', '-o', 'loop', L().disks[0]!, '/srv/disk1']);
    await L().sshOk('n1', ['sh', '-c', `echo ${token} > /srv/disk1/hello.txt`]);
    const conf = `EXPORT {
  Export_Id = ${EXPORT_ID};
  Path = /srv/disk1;
  Pseudo = /disk1;
  Protocols = 3, 4;
  Access_Type = RW;
  Squash = No_Root_Squash;
  SecType = sys;
  FSAL { Name = VFS; }
}
`;
    await L().sshOk('n1', ['sh', '-c', `cat > ${EXPORT_CONF}`], { input: conf });
    expect(await L().sshOk('n1', ganeshaAddExport(EXPORT_CONF, EXPORT_ID))).toContain('1 exports added');
    await L().sshOk('n1', ['ip', 'addr', 'add', `${vip}/24`, 'dev', 'eth0']);
    await L().sshOk('n1', ['arping', '-U', '-c', '1', '-I', 'eth0', vip]);

    const v4 = await L().clientExec('c1', ['nfs-cat', `nfs://${vip}/disk1/hello.txt?version=4`], { timeoutMs: 20_000 });
    expect(v4.stderr).toBe('');
    expect(v4.stdout.trim()).toBe(token);
    const v3 = await L().clientExec('c1', ['nfs-cat', `nfs://${vip}/srv/disk1/hello.txt?version=3`], { timeoutMs: 20_000 });
    expect(v3.stdout.trim()).toBe(token);

    // RemoveExport really removes it, and AddExport brings it back (the power test needs it).
    await L().sshOk('n1', ganeshaRemoveExport(EXPORT_ID));
    const gone = await L().clientExec('c1', ['nfs-cat', `nfs://${vip}/disk1/hello.txt?version=4`], { timeoutMs: 20_000 });
    expect(gone.code).not.toBe(0);
    await L().sshOk('n1', ganeshaAddExport(EXPORT_CONF, EXPORT_ID));
    expect((await L().clientExec('c1', ['nfs-cat', `nfs://${vip}/disk1/hello.txt?version=4`], { timeoutMs: 20_000 })).stdout.trim()).toBe(token);
  });

  it('powers n1 off and on through its BMC (ipmitool lanplus): off drops everything, on boots it clean', async () => {
    const n1 = L().node('n1');
    const img = L().disks[0]!;
    // State left by the NFS test: disk mounted, exported, VIP raised. Make sure it is there.
    expect(await loopsOf(img)).toContain(img);
    expect((await runRaw(['ip', '-n', n1.netns, '-o', 'addr', 'show', 'dev', 'eth0'])).stdout).toContain(L().vip);

    const off = await runRaw(L().ipmitoolArgv(n1, ['chassis', 'power', 'off']), { timeoutMs: 20_000 });
    expect(off.stdout).toMatch(/Down\/Off/);
    expect((await runRaw(L().ipmitoolArgv(n1, ['chassis', 'power', 'status']))).stdout).toMatch(/Chassis Power is off/);
    const procs = await processesOf(n1.netns);
    expect(procs).not.toContain('sshd');
    expect(procs).not.toContain('ganesha.nfsd');
    expect(await loopsOf(img)).toBe('');
    const link = (await runRaw(['ip', '-n', n1.netns, '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
    expect(link).not.toContain('inet ');
    expect((await L().sshExec(n1, ['true'], { timeoutMs: 10_000 })).code).toBe(255);
    const st = await L().status();
    expect(st.nodes.find((n) => n.name === 'n1')).toMatchObject({ power: 'off', addresses: [], mounts: [], services: [] });
    expect(st.nodes.find((n) => n.name === 'n2')?.power).toBe('on');

    const on = await runRaw(L().ipmitoolArgv(n1, ['chassis', 'power', 'on']), { timeoutMs: 20_000 });
    expect(on.stdout).toMatch(/Up\/On/);
    expect(await L().waitSsh(n1)).toBe(true);
    expect((await L().sshOk(n1, ['hostname'])).trim()).toBe('n1');
    const addrs = await L().sshOk(n1, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    expect(addrs).toContain(`${n1.address}/24`);
    expect(addrs).not.toContain(L().vip);
    expect((await L().sshExec(n1, ['findmnt', '-n', '/srv/disk1'])).code).toBe(1);
    const exports = await L().sshOk(n1, ['dbus-send', '--system', '--print-reply', '--dest=org.ganesha.nfsd', '/org/ganesha/nfsd/ExportMgr', 'org.ganesha.nfsd.exportmgr.ShowExports']);
    expect([...exports.matchAll(/uint16 (\d+)/g)].map((m) => Number(m[1]))).toEqual([0]);
    expect((await runRaw(L().ipmitoolArgv(n1, ['chassis', 'power', 'status']))).stdout).toMatch(/Chassis Power is on/);
  });

  it('`up` again on the running lab changes nothing', async () => {
    const pidBefore = readFileSync(`${L().dir}/nodes/n2/holder.pid`, 'utf8');
    const r = await labUp({ name: NAME, subnet: SUBNET, nodes: 2, clients: 1, disks: 2, diskMiB: 64 });
    expect(r.reused).toBe(true);
    expect(readFileSync(`${L().dir}/nodes/n2/holder.pid`, 'utf8')).toBe(pidBefore);
    expect((await L().sshOk('n2', ['hostname'])).trim()).toBe('n2');
  });

  it('`up` after a crash (a BMC killed, namespaces left) clears the remains and builds a working lab', async () => {
    const oldNodePids = (await runRaw(['ip', 'netns', 'pids', L().node('n2').netns])).stdout.split(/\s+/).filter(Boolean);
    const bmcPid = Number(readFileSync(bmcFiles(L().plan.nodes[0]!).pid, 'utf8'));
    process.kill(bmcPid, 'SIGKILL');
    const r = await labUp({ name: NAME, subnet: SUBNET, nodes: 2, clients: 1, disks: 2, diskMiB: 64 });
    expect(r.reused).toBe(false);
    expect(r.cleared).toBe(true);
    for (const pid of oldNodePids) expect(existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8') !== '').toBe(false);
    for (const n of L().nodes) expect((await L().sshOk(n, ['hostname'])).trim()).toBe(n.name);
    expect((await runRaw(L().ipmitoolArgv('n1', ['chassis', 'power', 'status']))).stdout).toMatch(/on/);
  });

  it('runs a second lab side by side with its own namespaces, addresses, BMC ports and host keys', async () => {
    const other = await startLab({ name: 'labtestb', subnet: '198.18.11.0/24', nodes: 1, clients: 0, disks: 1 });
    try {
      expect((await other.sshOk('n1', ['hostname'])).trim()).toBe('n1');
      expect((await other.sshOk('n1', ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']))).toContain('198.18.11.11/24');
      expect(other.node('n1').bmc.port).not.toBe(L().node('n1').bmc.port);
      expect(readFileSync(other.knownHostsFile, 'utf8')).not.toBe(readFileSync(L().knownHostsFile, 'utf8'));
      expect((await L().sshOk('n1', ['hostname'])).trim()).toBe('n1');
      // The first lab's key does not open the second lab's nodes.
      const cross = L().sshArgv('n1', ['true']).map((a) => (a === L().node('n1').address ? '198.18.11.11' : a));
      const cr = await runRaw(cross.map((a) => (a.startsWith('UserKnownHostsFile=') ? `UserKnownHostsFile=${other.knownHostsFile}` : a)), { timeoutMs: 10_000 });
      expect(cr.code).toBe(255);
    } finally {
      await other.down();
    }
    expect((await runRaw(['ip', 'netns', 'list'])).stdout).not.toContain('baton-labtestb-');
    expect((await L().sshOk('n2', ['hostname'])).trim()).toBe('n2');
  });

  it('`down` leaves no namespace, process, loop device, mount, veth or file of the lab', async () => {
    const namespaces = [L().plan.switchNetns, ...L().nodes.map((n) => n.netns), ...L().clients.map((c) => c.netns)];
    // Leave something attached to prove down releases it: a disk mounted on n2.
    await L().sshOk('n2', ['mount', '-o', 'loop', L().disks[1]!, '/srv/disk2']);
    const pids: string[] = [];
    for (const ns of namespaces) pids.push(...(await runRaw(['ip', 'netns', 'pids', ns])).stdout.split(/\s+/).filter(Boolean));
    for (const n of L().plan.nodes) pids.push(readFileSync(bmcFiles(n).pid, 'utf8').trim());
    expect(pids.length).toBeGreaterThan(10);

    const report = await L().down();
    expect(report.problems).toEqual([]);

    const netns = (await runRaw(['ip', 'netns', 'list'])).stdout;
    for (const ns of namespaces) expect(netns).not.toContain(ns);
    for (const pid of pids) {
      let state = '';
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        state = stat.slice(stat.lastIndexOf(')') + 2)[0] ?? '';
      } catch {
        /* gone */
      }
      expect(state === '' || state === 'Z', `process ${pid} still running (state ${state})`).toBe(true);
    }
    for (const e of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      expect(cmd.includes(`${L().dir}/`), `process ${e} (${cmd.replace(/\0/g, ' ')}) uses the lab dir`).toBe(false);
    }
    const loops = (await runRaw(['losetup', '--list', '--noheadings', '--output', 'BACK-FILE'])).stdout;
    expect(loops).not.toContain(L().dir);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    expect(mounts).not.toContain(L().dir);
    expect(mounts).not.toContain(`baton-${NAME}-`);
    expect((await runRaw(['ip', 'link', 'show', 'dev', L().plan.controllerIf])).code).not.toBe(0);
    expect(existsSync(L().dir)).toBe(false);
  });
});
