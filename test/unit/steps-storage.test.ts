/**
 * Storage facts and steps without root: the argv each step builds, and the parsers on real
 * output. losetup and mountinfo fixtures were captured on this project's Debian 12 machine
 * (util-linux 2.38.1). ZFS, LVM and DRBD cannot run here (no kernel support): their fixtures
 * follow the tools' documented output formats and are marked as such.
 */
import { answerBatches } from '../helpers/fake-batch.js';
import { commandsOfBatch } from '../../src/transport/batch.js';
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  drbdConnected,
  loopsOfImage,
  mountAt,
  mountUsersArgv,
  parseDrbdRole,
  parseDrbdStatus,
  parseLoopClaims,
  parseLosetupJson,
  parseLvmSystemId,
  parseLvs,
  parseMountUsers,
  parseMountinfo,
  parseVgs,
  parseZpoolList,
  submountsOf,
  parseStorageView,
  parseLoopLines,
} from '../../src/facts/storage.js';
import { importVolume } from '../../src/steps/import-volume.js';
import { loopAttachArgv } from '../../src/steps/volume/loop.js';
import { deportVolume } from '../../src/steps/deport-volume.js';
import { mountStep, optionsMatch, parseResolvedDevice, resolveDeviceArgv, unmountPath } from '../../src/steps/mount.js';
import { unmountStep } from '../../src/steps/unmount.js';
import { promoteStep } from '../../src/steps/promote.js';
import { demoteStep } from '../../src/steps/demote.js';
import { vgTakeoverArgv } from '../../src/steps/volume/lvm.js';
import { StepRefusedError, type StepContext } from '../../src/steps/contract.js';
import type { ExecResult, Transport } from '../../src/transport/transport.js';
import { LocalTransport } from '../../src/transport/local.js';

// `losetup --list --json --output NAME,BACK-FILE` with two devices (captured here).
const LOSETUP_JSON = `{
   "loopdevices": [
      {
         "name": "/dev/loop1",
         "back-file": "/tmp/st-fx.img"
      },{
         "name": "/dev/loop0",
         "back-file": "/var/lib/baton-lab/nfsdev/disks/disk1.img"
      }
   ]
}
`;

// /proc/self/mountinfo excerpt (captured here): an ext4 loop mount on a path with a space.
const MOUNTINFO = `27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
89 42 0:4 net:[4026532462] /run/netns/baton-netsteps-sw rw shared:6 - nsfs nsfs rw
147 27 7:1 / /tmp/st\\040fx rw,relatime - ext4 /dev/loop1 rw
`;

function res(argv: string[], code: number, stdout = '', stderr = ''): ExecResult {
  return { argv, code, signal: null, stdout, stderr, timedOut: false, durationMs: 1 };
}

type Script = (argv: string[]) => ExecResult;

/** A transport that answers from a script and records every argv. */
function fakeTransport(host: string, script: Script, log: string[][]): Transport {
  return {
    host,
    kind: 'ssh',
    connect: async () => undefined,
    close: async () => undefined,
    // A batch (runBatch) is answered command by command, and logged as its commands.
    exec: async (argv) => {
      log.push(...(commandsOfBatch(argv) ?? [argv]));
      return answerBatches(script)(argv);
    },
  };
}

function fakeCtx(host: string, script: Script, peers: Record<string, Script | 'unreachable'> = {}, force = false) {
  const log: string[][] = [];
  const notes: string[] = [];
  const t = fakeTransport(host, script, log);
  const names = [host, ...Object.keys(peers)];
  const ctx: StepContext = {
    host: { name: host, vars: {}, groups: ['all'] },
    transport: t,
    inventory: { file: 't', hosts: new Map(names.map((n) => [n, { name: n, vars: {}, groups: ['all'] }])), groups: new Map() },
    vars: {},
    force,
    log: (m) => notes.push(m),
    async run(argv, opts = {}) {
      const r = await t.exec(argv);
      if (!(opts.okCodes ?? [0]).includes(r.code!)) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr}`);
      return r;
    },
    async transportFor(name) {
      const p = peers[name];
      if (p === 'unreachable' || !p) {
        const { UnreachableError } = await import('../../src/transport/transport.js');
        throw new UnreachableError(name, `cannot reach ${name}: connect ETIMEDOUT`);
      }
      return fakeTransport(name, p, []);
    },
    markDown: () => {},
  };
  return { ctx, log, notes };
}

/** A node's view of loop state: the kernel's devices and its own claims. */
function loopNode(devices: Array<[string, string]>, claims: Array<[string, string]>, mountinfo = MOUNTINFO): Script {
  const answer: Script = (argv) => {
    if (argv[0] === 'sh' && argv[3] === 'baton-storage-view') {
      // The one-exec view: the three answers below, between its marker lines.
      const part = (a: string[]) => answer(a).stdout;
      return res(argv, 0, `${part(["losetup", "--list"])}\n--baton--claims\n${part(["grep"])}\n--baton--mountinfo\n${part(['cat', '/proc/self/mountinfo'])}`);
    }
    if (argv[0] === 'losetup' && argv[1] === '--list') {
      return res(argv, 0, devices.length ? JSON.stringify({ loopdevices: devices.map(([name, f]) => ({ name, 'back-file': f })) }) : '');
    }
    if (argv[0] === 'grep') return claims.length ? res(argv, 0, claims.map(([d, i]) => `/run/baton/loop/${d.replace('/dev/', '')}:${i}`).join('\n') + '\n') : res(argv, 2);
    if (argv[0] === 'cat' && argv[1] === '/proc/self/mountinfo') return res(argv, 0, mountinfo);
    if (argv[0] === 'losetup' && argv[1] === '--nooverlap') return res(argv, 0, '/dev/loop3\n');
    if (argv[3] === 'baton-attach') return res(argv, 0, '/dev/loop3\n');
    if (argv[3] === 'baton-detach') {
      // The detach script: exit 4 with the mountinfo lines of a device still mounted here.
      const devs = argv.slice(6);
      const lines = mountinfo.split('\n').filter((l) => devs.includes(l.split(' - ')[1]?.split(' ')[1] ?? ''));
      return lines.length ? res(argv, 4, lines.join('\n') + '\n') : res(argv, 0);
    }
    return res(argv, 0);
  };
  return answer;
}

describe('facts: loop devices', () => {
  it('parses losetup --list --json and finds the devices of an image', () => {
    const devs = parseLosetupJson(LOSETUP_JSON);
    expect(devs).toEqual([
      { name: '/dev/loop1', backFile: '/tmp/st-fx.img' },
      { name: '/dev/loop0', backFile: '/var/lib/baton-lab/nfsdev/disks/disk1.img' },
    ]);
    expect(loopsOfImage(devs, '/tmp/st-fx.img')).toEqual(['/dev/loop1']);
    expect(loopsOfImage(devs, '/tmp/other.img')).toEqual([]);
  });

  it('reads "no loop device at all" (empty output) and a deleted backing file', () => {
    expect(parseLosetupJson('')).toEqual([]);
    expect(parseLosetupJson('{"loopdevices":[{"name":"/dev/loop2","back-file":"/x.img (deleted)"}]}')).toEqual([{ name: '/dev/loop2', backFile: '/x.img' }]);
  });

  it('reads the storage view as the shell prints it from sysfs (or losetup\'s JSON without sysfs)', () => {
    const view = parseStorageView(
      '/dev/loop0 /srv/san/disk 1.img\n/dev/loop7 /x.img (deleted)\n\n--baton--claims\n/run/baton/loop/loop0:/srv/san/disk 1.img\n\n--baton--mountinfo\n' + MOUNTINFO,
    );
    expect(view.loops).toEqual([
      { name: '/dev/loop0', backFile: '/srv/san/disk 1.img' },
      { name: '/dev/loop7', backFile: '/x.img' },
    ]);
    expect(view.claims).toEqual([{ device: '/dev/loop0', image: '/srv/san/disk 1.img' }]);
    expect(view.mounts.length).toBeGreaterThan(0);
    expect(parseStorageView('{"loopdevices":[{"name":"/dev/loop2","back-file":"/y.img"}]}\n--baton--claims\n--baton--mountinfo\n').loops).toEqual([{ name: '/dev/loop2', backFile: '/y.img' }]);
    expect(parseLoopLines('')).toEqual([]);
  });

  it('parses claims and writes them without a shell built from values', () => {
    expect(parseLoopClaims('/run/baton/loop/loop3:/srv/san/disk 1.img\n')).toEqual([{ device: '/dev/loop3', image: '/srv/san/disk 1.img' }]);
    // An image path with a ':' after a '/' (a timestamped directory): the claim's name ends at the first ':'.
    expect(parseLoopClaims('/run/baton/loop/loop3:/var/lib/images/2026-11-28T10:00/disk1.img\n')).toEqual([{ device: '/dev/loop3', image: '/var/lib/images/2026-11-28T10:00/disk1.img' }]);
    const argv = loopAttachArgv('/srv/$(reboot).img');
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv[2]).not.toContain('reboot');
    expect(argv.slice(3)).toEqual(['baton-attach', '/run/baton/loop', '/srv/$(reboot).img']);
  });
});

describe('facts: mounts', () => {
  const entries = parseMountinfo(MOUNTINFO);

  it('parses mountinfo, unescaping octal escapes', () => {
    const m = mountAt(entries, '/tmp/st fx/');
    expect(m).toMatchObject({ mountPoint: '/tmp/st fx', fstype: 'ext4', source: '/dev/loop1', options: 'rw,relatime', superOptions: 'rw' });
    expect(mountAt(entries, '/srv/disk1')).toBeUndefined();
    // Optional fields (shared:1) do not shift the fields after the separator.
    expect(mountAt(entries, '/run/netns')).toMatchObject({ fstype: 'ext4', source: '/dev/vda' });
  });

  it('finds submounts strictly below a path', () => {
    expect(submountsOf(entries, '/run/netns')).toEqual(['/run/netns/baton-netsteps-sw']);
    expect(submountsOf(entries, '/run/net')).toEqual([]);
  });

  it('matches asked options against per-mount and superblock options', () => {
    const m = { source: '/dev/loop1', fstype: 'ext4', options: 'rw,noatime', superOptions: 'rw,errors=remount-ro' };
    expect(optionsMatch(m, 'noatime,errors=remount-ro,defaults,_netdev')).toBe(true);
    expect(optionsMatch(m, 'ro')).toBe(false);
    expect(optionsMatch(m, undefined)).toBe(true);
    // The kernel's defaults never show in mountinfo: asked for, they are there.
    expect(optionsMatch(m, 'rw,noatime,async,exec,suid,dev')).toBe(true);
  });
});

describe('facts: users of a mount, by walking /proc', () => {
  let child: ChildProcess | undefined;
  let dir = '';
  afterEach(() => {
    child?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('finds a process whose cwd is under the path (the real script on this machine)', { timeout: 30_000 }, async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-users-'));
    child = spawn('sleep', ['30'], { cwd: dir, stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 100));
    const t = new LocalTransport('local');
    const r = await t.exec(mountUsersArgv(dir + '/'));
    expect(r.code).toBe(0);
    const users = parseMountUsers(r.stdout);
    expect(users).toContainEqual({ pid: child.pid!, comm: 'sleep', how: ['cwd'] });
    // A sibling path sharing the prefix is not "under" it.
    const other = parseMountUsers((await t.exec(mountUsersArgv(dir + 'x'))).stdout);
    expect(other.map((u) => u.pid)).not.toContain(child.pid);
  });

  it('parses the script output', () => {
    expect(parseMountUsers('812\tsleep\tcwd\n913\tpostgres\tcwd fd map\ngarbage\n')).toEqual([
      { pid: 812, comm: 'sleep', how: ['cwd'] },
      { pid: 913, comm: 'postgres', how: ['cwd', 'fd', 'map'] },
    ]);
  });
});

describe('facts: zfs, lvm, drbd (documented formats; no kernel support here)', () => {
  it('zpool list -H -o name,health', () => {
    expect(parseZpoolList('tank\tONLINE\n', 'tank')).toEqual({ name: 'tank', health: 'ONLINE' });
    expect(parseZpoolList('tank\tDEGRADED\n', 'other')).toBeUndefined();
  });

  it('lvm systemid, vgs and lvs with | separators', () => {
    expect(parseLvmSystemId('  system ID: nas1\n')).toBe('nas1');
    expect(parseLvmSystemId('  system ID: \n')).toBe('');
    expect(parseVgs('  vg_nfs|nas2\n', 'vg_nfs')).toEqual({ name: 'vg_nfs', systemId: 'nas2' });
    expect(parseLvs('  export|active\n  scratch|\n')).toEqual([
      { name: 'export', active: true },
      { name: 'scratch', active: false },
    ]);
  });

  it('drbdadm role (8.4 and 9) and status (9)', () => {
    expect(parseDrbdRole('Primary\n')).toBe('Primary');
    expect(parseDrbdRole('Secondary/Primary\n')).toBe('Secondary');
    const ok = parseDrbdStatus('r0 role:Secondary\n  disk:UpToDate\n  nas1 role:Primary\n    peer-disk:UpToDate\n');
    expect(ok).toEqual({ role: 'Secondary', disk: 'UpToDate', peers: [{ name: 'nas1', connection: 'Connected', role: 'Primary' }] });
    expect(drbdConnected(ok)).toBe(true);
    const lost = parseDrbdStatus('r0 role:Secondary\n  disk:UpToDate\n  nas1 connection:Connecting\n');
    expect(lost.peers).toEqual([{ name: 'nas1', connection: 'Connecting', role: undefined }]);
    expect(drbdConnected(lost)).toBe(false);
  });
});

describe('import_volume / deport_volume', () => {
  const IMG = '/srv/san/disk1.img';

  it('builds the argv of every provider', () => {
    expect(importVolume.describe({ provider: 'loop', image: IMG }).commands).toEqual([['losetup', '--nooverlap', '--find', '--show', IMG]]);
    expect(importVolume.describe({ provider: 'zfs', pool: 'tank' }).commands).toEqual([['zpool', 'import', '-o', 'cachefile=none', 'tank']]);
    expect(importVolume.describe({ provider: 'zfs', pool: 'tank', force: true }).commands).toEqual([['zpool', 'import', '-f', '-o', 'cachefile=none', 'tank']]);
    expect(deportVolume.describe({ provider: 'zfs', pool: 'tank', force: true }).commands).toEqual([['zpool', 'export', '-f', 'tank']]);
    expect(vgTakeoverArgv('vg_nfs', 'nas1', 'nas2')).toEqual(['vgchange', '-y', '--config', 'local/extra_system_ids=["nas1"]', '--systemid', 'nas2', 'vg_nfs']);
    expect(deportVolume.describe({ provider: 'lvm', vg: 'vg_nfs' }).commands).toEqual([['vgchange', '-an', 'vg_nfs']]);
    expect(importVolume.describe({ provider: 'command', import: ['san', 'attach', 'v1'], probe: ['san', 'show'] }).commands).toEqual([['san', 'attach', 'v1']]);
    expect(importVolume.reversible!({ provider: 'command', import: ['a'], probe: ['p'] })).toBe(false);
  });

  it('loop: holds only what this node claimed, though the kernel shows every node its devices', async () => {
    const { ctx } = fakeCtx('n2', loopNode([['/dev/loop1', IMG]], []));
    const seen = await importVolume.probe(ctx, { provider: 'loop', image: IMG });
    expect(seen).toEqual({ attached: ['/dev/loop1'], held: [] });
    expect(importVolume.satisfied(seen, { provider: 'loop', image: IMG })).toBe(false);
  });

  it('loop: tells the engine which peer holds the image (heldBy), from that peer\'s own claims', async () => {
    const a = { provider: 'loop' as const, image: IMG };
    const holder = fakeCtx('n1', loopNode([['/dev/loop1', IMG]], [['/dev/loop1', IMG]])).ctx;
    const free = fakeCtx('n3', loopNode([['/dev/loop1', IMG]], [])).ctx;
    expect(await importVolume.heldBy!(holder, a)).toMatch(/has .*disk1.* imported/);
    expect(await importVolume.heldBy!(free, a)).toBeNull();
    expect(importVolume.resource!(a)).toBe(deportVolume.resource!(a));
  });

  it('loop: --force imports anyway and claims the device', async () => {
    const { ctx, log } = fakeCtx('n2', loopNode([], []), { n1: loopNode([['/dev/loop1', IMG]], [['/dev/loop1', IMG]]) }, true);
    await importVolume.apply(ctx, { provider: 'loop', image: IMG }, { attached: [], held: [] });
    expect(log).toContainEqual(loopAttachArgv(IMG));
  });

  it('loop: deport refuses while the device is mounted', async () => {
    const { ctx, log } = fakeCtx('n1', loopNode([['/dev/loop1', IMG]], [['/dev/loop1', IMG]]));
    await expect(deportVolume.apply(ctx, { provider: 'loop', image: IMG }, { attached: ['/dev/loop1'], held: ['/dev/loop1'] })).rejects.toThrow(
      /will not detach \/dev\/loop1 .* mounted on \/tmp\/st fx; unmount it first/,
    );
    // One exec: the node checked (the storage view follows in the same batch), and nothing else ran.
    expect(log.map((argv) => argv[3])).toEqual(['baton-detach', 'baton-storage-view']);
  });

  it('revert of an import that never ran changes nothing', async () => {
    const { ctx, log } = fakeCtx('n1', loopNode([], []));
    await importVolume.revert(ctx, { provider: 'loop', image: IMG }, { attached: [], held: [] });
    expect(log.filter((a) => a[1] === '--detach' || a[3] === 'baton-detach')).toEqual([]);
  });
});

describe('mount / unmount', () => {
  it('mount: builds mount -t -o and refuses another filesystem on the path', async () => {
    expect(mountStep.describe({ source: '/dev/sdb1', path: '/export/', fstype: 'xfs', options: 'noatime' }).commands).toEqual([
      ['mount', '-t', 'xfs', '-o', 'noatime', '/dev/sdb1', '/export'],
    ]);
    const { ctx } = fakeCtx('n1', (argv) => (argv[0] === 'readlink' ? res(argv, 0, '/dev/sdb1\n') : loopNode([], [])(argv)));
    const a = { source: '/dev/sdb1', path: '/tmp/st fx', fstype: 'ext4' };
    const before = await mountStep.probe(ctx, a);
    expect(before.mounted?.source).toBe('/dev/loop1');
    expect(mountStep.satisfied(before, a)).toBe(false);
    await expect(mountStep.apply(ctx, a, before)).rejects.toThrow(/already has \/dev\/loop1 .* mounted, not \/dev\/sdb1/);
  });

  it('mount: already mounted as asked is satisfied; a mount point with submounts is refused', async () => {
    const { ctx } = fakeCtx('n1', loopNode([['/dev/loop1', '/i.img']], [['/dev/loop1', '/i.img']]));
    const ok = await mountStep.probe(ctx, { source_image: '/i.img', path: '/tmp/st fx', fstype: 'ext4' });
    expect(mountStep.satisfied(ok, { source_image: '/i.img', path: '/tmp/st fx', fstype: 'ext4' })).toBe(true);
    const a = { source_image: '/i.img', path: '/run', fstype: 'ext4' };
    const sub = await mountStep.probe(ctx, a);
    expect(sub.submounts).toContain('/run/netns');
    await expect(mountStep.apply(ctx, a, sub)).rejects.toThrow(/mounts below it would be hidden/);
  });

  it('unmount: records what was mounted, and its revert mounts it back the same way', async () => {
    const mounted = loopNode([['/dev/loop1', '/i.img']], [['/dev/loop1', '/i.img']]);
    const { ctx } = fakeCtx('n1', mounted);
    const before = await unmountStep.probe(ctx, { path: '/tmp/st fx' });
    expect(before).toEqual({ mounted: { source: '/dev/loop1', fstype: 'ext4', options: 'rw,relatime', superOptions: 'rw', dev: '7:1' }, image: '/i.img' });
    const gone = fakeCtx('n1', loopNode([['/dev/loop1', '/i.img']], [['/dev/loop1', '/i.img']], ''));
    await unmountStep.revert(gone.ctx, { path: '/tmp/st fx' }, before);
    expect(gone.log).toContainEqual(['mount', '-t', 'ext4', '-o', 'rw,relatime', '/dev/loop1', '/tmp/st fx']);
  });

  it('unmount: its revert never mounts a loop device this node no longer holds (shared kernel: a peer attached it since)', async () => {
    const before = { mounted: { source: '/dev/loop1', fstype: 'ext4', options: 'rw,relatime', superOptions: 'rw' }, image: '/i.img' };
    // The device still exists in the kernel, attached for the image, but the claim is a peer's.
    const gone = fakeCtx('n1', loopNode([['/dev/loop1', '/i.img']], [], ''));
    await expect(unmountStep.revert(gone.ctx, { path: '/tmp/st fx' }, before)).rejects.toThrow(/will not mount \/i\.img back on \/tmp\/st fx: it is not attached on this node/);
    expect(gone.log.some((a) => a[0] === 'mount')).toBe(false);
  });

  it('unmount: a revert is checked as the mount of what was there (the image, not just the path)', async () => {
    const fs = { source: '/dev/loop1', fstype: 'ext4', options: 'rw,relatime', superOptions: 'rw' };
    expect(unmountStep.revertAs!({ path: '/srv/d' }, { mounted: fs, image: '/i.img' })).toEqual({ path: '/srv/d', fstype: 'ext4', options: 'rw,relatime', source_image: '/i.img' });
    expect(unmountStep.revertAs!({ path: '/srv/d' }, { mounted: { ...fs, source: '/dev/vg0/lv0' } })).toEqual({ path: '/srv/d', fstype: 'ext4', options: 'rw,relatime', source: '/dev/vg0/lv0' });
  });

  it('mount: a peer with the same device mounted holds it; a source that is no device is nobody\'s', async () => {
    const { ctx } = fakeCtx('n1', loopNode([], []));
    const peer = fakeCtx('n2', (argv) => (argv[3] === 'baton-resolve-device' ? res(argv, 0, '/dev/loop1\n7:1\n') : loopNode([], [])(argv))).ctx;
    expect(await mountStep.heldBy!(peer, { source: '/dev/disk/by-id/lun7', path: '/srv/d', fstype: 'ext4' })).toMatch(/has \/dev\/disk\/by-id\/lun7 mounted \(\/dev\/loop1 on \/tmp\/st fx\)/);
    expect(await mountStep.heldBy!(ctx, { source: 'tmpfs', path: '/srv/d', fstype: 'tmpfs' })).toBeNull();
  });

  it('mount of an LV (/dev/VG/LV): mount(8) records it as /dev/mapper/VG-LV, neither the path given nor /dev/dm-N; the device number tells it is the same', async () => {
    // What the lab cannot show (no device-mapper there): an LV mounted, as mountinfo gives it.
    const lvMounted = `${MOUNTINFO}160 27 254:3 / /srv/lv rw,relatime - ext4 /dev/mapper/vg0-lv0 rw\n`;
    const node = (mountinfo: string): Parameters<typeof fakeCtx>[1] => (argv) => {
      if (argv[3] === 'baton-resolve-device') return res(argv, 0, '/dev/dm-3\nfe:3\n');
      if (argv[0] === 'cat' || argv.includes('/proc/self/mountinfo')) return res(argv, 0, mountinfo);
      return loopNode([], [], mountinfo)(argv);
    };
    const a = { source: '/dev/vg0/lv0', path: '/srv/lv', fstype: 'ext4' };
    const { ctx } = fakeCtx('n1', node(lvMounted));
    const seen = await mountStep.probe(ctx, a);
    expect([seen.device, seen.deviceNumber, seen.mounted?.source]).toEqual(['/dev/dm-3', '254:3', '/dev/mapper/vg0-lv0']);
    expect(mountStep.satisfied(seen, a), 'mounted as asked').toBe(true);
    // A peer with the LV mounted holds it (a double mount of one ext4 corrupts it).
    expect(await mountStep.heldBy!(fakeCtx('n2', node(lvMounted)).ctx, a)).toMatch(/has \/dev\/vg0\/lv0 mounted \(\/dev\/mapper\/vg0-lv0 on \/srv\/lv\)/);
    // The revert of this mount takes away what it mounted.
    const undo = fakeCtx('n1', node(lvMounted));
    await mountStep.revert(undo.ctx, a, { device: '/dev/dm-3', deviceNumber: '254:3', mounted: null, submounts: [] });
    expect(undo.log.some((x) => x.includes('baton-umount'))).toBe(true);
    // Another device on the path is not this mount.
    const other = await mountStep.probe(fakeCtx('n1', node(lvMounted.replace('254:3', '254:4'))).ctx, a);
    expect(mountStep.satisfied(other, a)).toBe(false);
  });

  it('the device a source names, resolved on the node: symlinks followed, a block device\'s number in decimal', async () => {
    expect(parseResolvedDevice('/dev/dm-3\nfe:a\n', '/dev/vg0/lv0')).toEqual({ device: '/dev/dm-3', deviceNumber: '254:10' });
    expect(parseResolvedDevice('/dev/sdz\n', '/dev/sdz')).toEqual({ device: '/dev/sdz', deviceNumber: null });
    // The script itself, run here: a symlink to a character device is resolved and has no block number.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-resolve-'));
    try {
      const link = path.join(dir, 'by-id-lun7');
      symlinkSync('/dev/null', link);
      const r = await new LocalTransport('local').exec(resolveDeviceArgv(link));
      expect(parseResolvedDevice(r.stdout, link)).toEqual({ device: '/dev/null', deviceNumber: null });
      const block = readdirSync('/sys/class/block').find((d) => existsSync(`/dev/${d}`));
      if (block) {
        const want = readFileSync(`/sys/class/block/${block}/dev`, 'utf8').trim();
        const b = await new LocalTransport('local').exec(resolveDeviceArgv(`/dev/${block}`));
        expect(parseResolvedDevice(b.stdout, `/dev/${block}`)).toEqual({ device: `/dev/${block}`, deviceNumber: want });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('unmount: gives up within kill_timeout naming the processes that survive', async () => {
    // One exec per round: umount, and on busy the users (umount's exit 32).
    const { ctx, log } = fakeCtx('n1', (argv) => {
      if (argv[3] === 'baton-umount') return res(argv, 32, '1\tinit\tcwd\n4242\tstuck\tcwd fd\n', 'umount: /srv/disk1: target is busy.\n');
      return res(argv, 0);
    });
    const t0 = Date.now();
    await expect(unmountStep.apply(ctx, { path: '/srv/disk1', kill_timeout: 1 }, { mounted: null })).rejects.toThrow(
      /could not unmount \/srv\/disk1 within 1 s: still used by 4242 \(stuck: cwd,fd\)/,
    );
    expect(Date.now() - t0).toBeLessThan(3000);
    const rounds = log.filter((a) => a[3] === 'baton-umount');
    // The first round asks the node to TERM what it finds itself, never the NFS server or sshd.
    expect(rounds[0]!.slice(6, 8)).toEqual(['1', expect.stringContaining('ganesha.nfsd')]);
    expect(rounds[0]![7]!.split(',')).toContain('sshd');
    const signals = rounds.filter((a) => a[5]).map((a) => [a[5], ...a.slice(8)]);
    expect(signals).toContainEqual(['TERM', '4242']);
    expect(signals).toContainEqual(['KILL', '4242']);
    // PID 1 of the node is never signalled.
    expect(signals.some((a) => a.includes('1'))).toBe(false);
  });

  it('unmount never kills the NFS server that still exports the path: it stops and says to unexport first', async () => {
    const { ctx, log } = fakeCtx('n1', (argv) => {
      if (argv[3] === 'baton-umount') return res(argv, 32, '777\tganesha.nfsd\tfd\n', 'umount: /srv/disk1: target is busy.\n');
      return res(argv, 0);
    });
    await expect(unmountStep.apply(ctx, { path: '/srv/disk1', kill_timeout: 1 }, { mounted: null })).rejects.toThrow(
      /held only by 777 \(ganesha.nfsd: fd\), which baton never kills: an NFS export of \/srv\/disk1 is probably still active/,
    );
    expect(log.some((a) => a[0] === 'kill' || (a[3] === 'baton-umount' && a[5]))).toBe(false);

  });

  it('unmount: a round in which the node TERMed the users itself reports them as killed', async () => {
    const { ctx, notes } = fakeCtx('n1', (argv) => (argv[3] === 'baton-umount' ? res(argv, 0, 'signalled\t4242\trpc.statd\tcwd\n') : res(argv, 0)));
    const { killed } = await unmountPath(ctx, '/srv/disk1', { killTimeoutS: 1, killUsers: true });
    expect(killed).toEqual([{ pid: 4242, comm: 'rpc.statd', how: ['cwd'] }]);
    expect(notes.join('\n')).toMatch(/sent TERM to 4242 \(rpc.statd: cwd\)/);
  });
});

describe('promote / demote', () => {
  it('drbd argv: no --force unless asked, and then a loud warning', () => {
    expect(promoteStep.describe({ provider: 'drbd', resource: 'r0' })).toEqual({ summary: 'promote DRBD resource r0 to primary', commands: [['drbdadm', 'primary', 'r0']] });
    const forced = promoteStep.describe({ provider: 'drbd', resource: 'r0', force: true });
    expect(forced.commands).toEqual([['drbdadm', 'primary', '--force', 'r0']]);
    expect(forced.summary).toMatch(/WITH --force/);
    expect(demoteStep.describe({ provider: 'drbd', resource: 'r0' }).commands).toEqual([['drbdadm', 'secondary', 'r0']]);
  });

  it('drbd: refuses to promote a disconnected resource unless forced', async () => {
    const script: Script = (argv) =>
      argv[1] === 'role' ? res(argv, 0, 'Secondary\n') : argv[1] === 'status' ? res(argv, 0, 'r0 role:Secondary\n  disk:UpToDate\n  nas1 connection:StandAlone\n') : res(argv, 0);
    const { ctx, log } = fakeCtx('nas2', script);
    const a = { provider: 'drbd' as const, resource: 'r0' };
    const before = await promoteStep.probe(ctx, a);
    expect(before).toEqual({ primary: false, role: 'Secondary', connected: false });
    await expect(promoteStep.apply(ctx, a, before)).rejects.toThrow(/not connected to its peer .* split brain/);
    expect(log.some((x) => x[1] === 'primary')).toBe(false);
    const forced = fakeCtx('nas2', script, {}, true);
    await promoteStep.apply(forced.ctx, a, before);
    expect(forced.log).toContainEqual(['drbdadm', 'primary', 'r0']);
  });

  it('command: the probe output matching `expect` means primary', async () => {
    const a = { provider: 'command' as const, probe: ['cat', '/run/role'], expect: '^primary$', promote: ['mkprimary'], demote: ['mksecondary'] };
    const { ctx } = fakeCtx('n1', (argv) => res(argv, 0, 'primary\n'));
    expect(await promoteStep.probe(ctx, a)).toEqual({ primary: true });
    const other = fakeCtx('n1', (argv) => res(argv, 0, 'secondary\n'));
    expect(await promoteStep.probe(other.ctx, a)).toEqual({ primary: false });
    expect(promoteStep.reversible!({ ...a, demote: undefined })).toBe(false);
  });
});
