/**
 * NFS facts and the argv the NFS steps build. Fixtures are output captured on Debian 12
 * (NFS-Ganesha 4.3, nfs-utils 2.6.2) in the lab; exportfs output follows nfs-utils' format
 * (no kernel NFS server runs on this machine, so it could not be captured here).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ganeshaAddExportArgv,
  ganeshaConfFromCmdline,
  ganeshaGraceArgv,
  ganeshaRemoveExportArgv,
  nextStatdState,
  optionValue,
  parseAddExportReply,
  parseExportfsV,
  parseFindmnt,
  parseGaneshaRunningConf,
  GANESHA_RUNNING_CONF_SCRIPT,
  parseGaneshaServerScope,
  parseGraceReply,
  parseNfsConfScope,
  parsePids,
  parseShowExports,
  parseStatdState,
  smNotifyArgv,
  statdMonitorRecord,
  statdStartArgv,
  statdStateWriteArgv,
  unlockFilesystemArgv,
} from '../../src/facts/nfs.js';
import { ganeshaExportBlock, writeConfArgv } from '../../src/steps/export/ganesha.js';
import { kernelOptions, kernelProvider } from '../../src/steps/export/kernel.js';
import { ganeshaProvider } from '../../src/steps/export/ganesha.js';
import { exportStep } from '../../src/steps/export.js';
import { exported } from '../../src/steps/exported.js';
import { kernelServerArgv, parseKernelServer } from '../../src/facts/nfs.js';
import { unexportStep } from '../../src/steps/unexport.js';
import { restartStatd } from '../../src/steps/restart-statd.js';
import { STATD_INFO_SCRIPT, parseStatdInfo } from '../../src/facts/nsm.js';

const struct = (id: number, p: string) => `      struct {
         uint16 ${id}
         string "${p}"
         struct {
            struct {
               string "NFSv3"
               boolean false
            }
            struct {
               string "NFSv40"
               boolean false
            }
         }
         struct {
            uint64 0
            uint64 0
         }
      }`;

const SHOW_EXPORTS = `method return time=1795373557.085409 sender=:1.0 -> destination=:1.4 serial=72 reply_serial=2
   struct {
      uint64 1795373489
      uint64 901600501
   }
   array [
${struct(0, '/')}
${struct(101, '/srv/disk1')}
   ]
`;

const ADD_OK = `method return time=1795373557.078152 sender=:1.0 -> destination=:1.2 serial=70 reply_serial=2
   string "1 exports added"
`;
const ADD_WITH_ERRORS = `method return time=1795373557.078152 sender=:1.0 -> destination=:1.2 serial=70 reply_serial=2
   string "1 exports added. Errors found:
Config File (/run/ganesha/e.conf:10): Unknown parameter (Clients)
"
`;
const GRACE = `method return time=1795373557.092832 sender=:1.0 -> destination=:1.5 serial=73 reply_serial=2
   boolean true
   string "Started grace period"
`;

describe('Ganesha D-Bus facts', () => {
  it('parses ShowExports into ids and paths (export 0 is the pseudo root)', () => {
    expect(parseShowExports(SHOW_EXPORTS)).toEqual([
      { id: 0, path: '/' },
      { id: 101, path: '/srv/disk1' },
    ]);
  });

  it('parses AddExport replies, with and without config errors', () => {
    expect(parseAddExportReply(ADD_OK)).toEqual({ added: 1, errors: [] });
    expect(parseAddExportReply(ADD_WITH_ERRORS)).toEqual({ added: 1, errors: ['Config File (/run/ganesha/e.conf:10): Unknown parameter (Clients)'] });
  });

  it('parses the grace reply (Graceless = true still answers "Started grace period")', () => {
    expect(parseGraceReply(GRACE)).toEqual({ ok: true, message: 'Started grace period' });
  });

  it('builds the dbus-send argv that worked against the lab Ganesha', () => {
    expect(ganeshaAddExportArgv('/run/ganesha/baton/export-101.conf', 101)).toEqual([
      'dbus-send', '--system', '--print-reply', '--dest=org.ganesha.nfsd', '/org/ganesha/nfsd/ExportMgr',
      'org.ganesha.nfsd.exportmgr.AddExport', 'string:/run/ganesha/baton/export-101.conf', 'string:EXPORT(Export_ID=101)',
    ]);
    expect(ganeshaRemoveExportArgv(101).slice(-1)).toEqual(['uint16:101']);
    expect(ganeshaGraceArgv(5, '198.18.50.200').slice(-2)).toEqual(['org.ganesha.nfsd.admin.grace', 'string:5:198.18.50.200']);
  });

  it('reads Server_Scope from the NFSv4 block only, case-insensitively, ignoring comments', () => {
    const conf = `NFS_CORE_PARAM {\n  Protocols = 3, 4;\n}\n# Server_Scope = wrong;\nnfsv4 {\n    Graceless = true;\n    server_scope = "lab-cluster";\n}\n`;
    expect(parseGaneshaServerScope(conf)).toBe('lab-cluster');
    expect(parseGaneshaServerScope('NFSv4 {\n Server_Scope = c1;\n}')).toBe('c1');
    expect(parseGaneshaServerScope('NFSv4 {\n Graceless = true;\n}\nEXPORT { Server_Scope = x; }')).toBe('');
    expect(ganeshaConfFromCmdline('ganesha.nfsd\0-f\0/etc/lab/ganesha.conf\0-L\0/x.log\0')).toBe('/etc/lab/ganesha.conf');
    expect(ganeshaConfFromCmdline('ganesha.nfsd\0-F\0')).toBe('/etc/ganesha/ganesha.conf');
    expect(parseGaneshaRunningConf('/etc/g.conf\n--conf--\nNFSv4 { Server_Scope = s1; }\n')).toEqual({ confPath: '/etc/g.conf', scope: 's1' });
  });
});

describe('export block and argv (ganesha)', () => {
  const args = { provider: 'ganesha' as const, path: '/srv/disk1', pseudo: '/disk1', export_id: 101, fsid: 4711, squash: 'no_root_squash' as const };

  it('writes an EXPORT block with the stable Filesystem_Id and a CLIENT block of bare tokens', () => {
    const block = ganeshaExportBlock(args);
    expect(block).toContain('Export_Id = 101;');
    expect(block).toContain('Path = "/srv/disk1";');
    expect(block).toContain('Pseudo = "/disk1";');
    expect(block).toContain('Filesystem_Id = 4711.0;');
    expect(block).toMatch(/CLIENT \{\n\s+Clients = \*;\n\s+Access_Type = RW;\n\s+Squash = No_Root_Squash;/);
    expect(ganeshaExportBlock({ ...args, fsid: '12.3', clients: '198.18.50.0/24, c1', access: 'ro' })).toMatch(/Filesystem_Id = 12\.3;[\s\S]*Clients = 198\.18\.50\.0\/24, c1;\n\s+Access_Type = RO;/);
  });

  it('refuses values that would break out of the config syntax', () => {
    expect(() => ganeshaExportBlock({ ...args, path: '/srv/a"; Access_Type = RW; "' })).toThrow(/quote/);
    expect(() => ganeshaExportBlock({ ...args, clients: 'a;b' })).toThrow(/not a host/);
    expect(() => ganeshaExportBlock({ ...args, fsid: 'x' })).toThrow(/fsid/);
    expect(() => ganeshaExportBlock({ ...args, export_id: 70000 })).toThrow(/export_id/);
  });

  it('writes the file with a constant script: the paths and the block are positional data', () => {
    const argv = writeConfArgv({ ...args, conf_dir: '/run/x $(id)' });
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv[2]).not.toContain('/run/x');
    expect(argv.slice(4)).toEqual(['/run/x $(id)', '/run/x $(id)/export-101.conf', ganeshaExportBlock({ ...args, conf_dir: '/run/x $(id)' })]);
  });

  it('describes what export and unexport run', () => {
    const e = exportStep.describe({ ...args, vip: '198.18.50.200' });
    expect(e.summary).toBe('export *:/srv/disk1 rw fsid=4711 via ganesha as export 101 (/disk1)');
    expect(e.commands.map((c) => c.find((x) => x.startsWith('org.ganesha')) ?? c[0])).toEqual(['sh', 'org.ganesha.nfsd.exportmgr.AddExport', 'org.ganesha.nfsd.admin.grace']);
    expect(e.commands[2]!.at(-1)).toBe('string:5:198.18.50.200');
    const u = unexportStep.describe({ ...args, vip: '198.18.50.200' });
    expect(u.commands[0]).toEqual(ganeshaRemoveExportArgv(101));
    expect(u.commands.at(-1)!.at(-1)).toBe('string:2:198.18.50.200');
  });

  it('is satisfied only by export N serving this path', () => {
    const seen = (p: string | null) => ({ provider: 'ganesha' as const, exportId: 101, activePath: p });
    expect(exportStep.satisfied(seen('/srv/disk1'), args)).toBe(true);
    expect(exportStep.satisfied(seen(null), args)).toBe(false);
    expect(exportStep.satisfied(seen('/srv/other'), args)).toBe(false);
    expect(unexportStep.satisfied(seen(null), args)).toBe(true);
    expect(unexportStep.satisfied(seen('/srv/disk1'), args)).toBe(false);
    expect(ganeshaProvider.absent(seen('/srv/other'), args)).toBe(false);
    expect(unexportStep.reversible!({ ...args, fsid: undefined })).toBe(false);
  });
});

describe('kernel exportfs facts and argv', () => {
  const EXPORTFS_V = [
    '/srv/disk1    \t*(sync,wdelay,hide,no_subtree_check,fsid=101,sec=sys,rw,secure,no_root_squash,no_all_squash)',
    '/srv/a-rather-long-directory-name-for-wrapping',
    '\t\t198.18.50.0/24(sync,wdelay,hide,no_subtree_check,fsid=7,sec=sys,ro,secure,root_squash,no_all_squash)',
    '/srv/with\\040space\t<world>(sync,wdelay,hide,no_subtree_check,fsid=8,sec=sys,rw,secure,root_squash,no_all_squash)',
    // A short path with a space, as dump() prints it: raw, padded to 14, then a tab.
    '/srv/a b       \t<world>(sync,wdelay,hide,no_subtree_check,fsid=9,sec=sys,rw,secure,root_squash,no_all_squash)',
    // A long one with spaces, on its own line.
    '/srv/a long name with spaces',
    '\t\t198.18.50.0/24(sync,fsid=10,ro)',
    '',
  ].join('\n');
  const ETAB = '/srv/disk1\t*(rw,sync,wdelay,hide,nocrossmnt,secure,no_root_squash,no_all_squash,no_subtree_check,secure_locks,acl,no_pnfs,fsid=101,anonuid=65534,anongid=65534,sec=sys,rw,secure,no_root_squash,no_all_squash)\n';

  it('parses exportfs -v, wrapped long paths and octal escapes included', () => {
    const e = parseExportfsV(EXPORTFS_V);
    expect(e.map((x) => [x.path, x.client, optionValue(x.options, 'fsid')])).toEqual([
      ['/srv/disk1', '*', '101'],
      ['/srv/a-rather-long-directory-name-for-wrapping', '198.18.50.0/24', '7'],
      ['/srv/with space', '<world>', '8'],
      ['/srv/a b', '<world>', '9'],
      ['/srv/a long name with spaces', '198.18.50.0/24', '10'],
    ]);
    expect(parseExportfsV(ETAB)[0]).toMatchObject({ path: '/srv/disk1', client: '*' });
    expect(optionValue(parseExportfsV(ETAB)[0]!.options, 'anonuid')).toBe('65534');
  });

  it('builds exportfs argv with access, squash and the stable fsid', () => {
    const a = { provider: 'kernel' as const, path: '/srv/disk1', fsid: 101, options: ['sync', 'no_subtree_check', 'rw'] };
    expect(kernelOptions(a)).toEqual(['rw', 'root_squash', 'fsid=101', 'sync', 'no_subtree_check']);
    expect(kernelProvider.commands(a, 'export')).toEqual([['exportfs', '-o', 'rw,root_squash,fsid=101,sync,no_subtree_check', '*:/srv/disk1']]);
    expect(kernelProvider.commands(a, 'unexport')).toEqual([
      ['exportfs', '-u', '*:/srv/disk1'],
      unlockFilesystemArgv('/srv/disk1'),
      ['exportfs', '-f'],
    ]);
    expect(unlockFilesystemArgv('/srv/$(x)').slice(-1)).toEqual(['/srv/$(x)']);
  });

  it('is satisfied only with the same fsid, access and squash', () => {
    const a = { provider: 'kernel' as const, path: '/srv/disk1', fsid: 101, squash: 'no_root_squash' as const };
    const clients = Object.fromEntries(parseExportfsV(EXPORTFS_V).filter((e) => e.path === '/srv/disk1').map((e) => [e.client, e.options]));
    const seen = { provider: 'kernel' as const, path: '/srv/disk1', clients };
    expect(exportStep.satisfied(seen, a)).toBe(true);
    expect(exportStep.satisfied(seen, { ...a, fsid: 102 })).toBe(false);
    expect(exportStep.satisfied(seen, { ...a, access: 'ro' })).toBe(false);
    expect(unexportStep.satisfied(seen, a)).toBe(false);
    expect(unexportStep.satisfied({ ...seen, clients: {} }, a)).toBe(true);
  });

  it('reads scope= from [nfsd] of /etc/nfs.conf', () => {
    expect(parseNfsConfScope('[general]\nscope=no\n[nfsd]\n# scope=old\nthreads=8\n scope = nas-cluster \n[mountd]\n')).toBe('nas-cluster');
    expect(parseNfsConfScope('[nfsd]\nthreads=8\n')).toBe('');
  });
});

describe('statd facts', () => {
  it('parses od output of the state file (captured: "       1001")', () => {
    expect(parseStatdState('       1001\n')).toBe(1001);
    expect(parseStatdState('')).toBeUndefined();
  });

  it('moves the state number forward, odd, at least the epoch seconds made odd', () => {
    expect(nextStatdState(3, 1795373808)).toBe(1795373809);
    expect(nextStatdState(1795373809, 1795373808)).toBe(1795373811);
    expect(nextStatdState(1795373810, 1795373808)).toBe(1795373811);
    expect(nextStatdState(undefined, 1000)).toBe(1001);
    expect(() => nextStatdState(0x7fffffff, 1)).toThrow(/overflow/);
  });

  it('writes the state as 4 native-endian bytes, atomically, with a constant script', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-statd-'));
    try {
      const argv = statdStateWriteArgv(dir, 1795373811);
      expect(argv[2]).not.toContain(dir);
      execFileSync(argv[0]!, argv.slice(1));
      const buf = readFileSync(path.join(dir, 'state'));
      expect(buf.length).toBe(4);
      expect(os.endianness() === 'LE' ? buf.readUInt32LE(0) : buf.readUInt32BE(0)).toBe(1795373811);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes the byte order the kernel names, and finds it with od where the kernel does not say', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-statd-'));
    try {
      const n = 1795373811;
      const write = (byteorderFile: string) => {
        const argv = statdStateWriteArgv(dir, n);
        execFileSync(argv[0]!, [argv[1]!, argv[2]!.replace('/sys/kernel/cpu_byteorder', byteorderFile), ...argv.slice(3)]);
        return readFileSync(path.join(dir, 'state'));
      };
      writeFileSync(path.join(dir, 'order'), 'big\n');
      expect(write(path.join(dir, 'order')).readUInt32BE(0)).toBe(n);
      writeFileSync(path.join(dir, 'order'), 'little\n');
      expect(write(path.join(dir, 'order')).readUInt32LE(0)).toBe(n);
      const native = write(path.join(dir, 'no-such-file'));
      expect(os.endianness() === 'LE' ? native.readUInt32LE(0) : native.readUInt32BE(0)).toBe(n);
      expect(readdirSync(dir).sort()).toEqual(['order', 'state']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds the config a running ganesha.nfsd was started with (-f) and its Server_Scope (real process)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-ganesha-'));
    const conf = path.join(dir, 'my ganesha.conf');
    writeFileSync(conf, 'NFSV4 {\n  Server_Scope = "lab scope";\n}\nEXPORT { Export_Id = 1; }'); // no final newline
    const child = spawn('sh', ['-c', 'sleep 30; :', 'ganesha.nfsd', '-L', '/dev/null', '-f', conf, '-N', 'NIV_EVENT'], { stdio: 'ignore', detached: true });
    try {
      writeFileSync(path.join(dir, 'pid'), `${child.pid}\n`);
      for (let i = 0; i < 200 && !readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').startsWith('sh\0'); i++) execFileSync('sleep', ['0.01']);
      const script = GANESHA_RUNNING_CONF_SCRIPT.replace('/run/ganesha/ganesha.pid', path.join(dir, 'pid'));
      const out = execFileSync('sh', ['-c', script, 'baton-ganesha-conf'], { encoding: 'utf8' });
      expect(parseGaneshaRunningConf(out)).toEqual({ confPath: conf, scope: 'lab scope' });
      expect(out.endsWith('EXPORT { Export_Id = 1; }\n')).toBe(true);
    } finally {
      process.kill(-child.pid!, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads a running statd's pid, effective uid and arguments with the shell's own read (real process)", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-statd-'));
    // A shell that stays (the `; :` keeps it from exec'ing sleep), with an argument of two words.
    const child = spawn('sh', ['-c', 'sleep 30; :', 'baton-test', 'two words'], { stdio: 'ignore', detached: true });
    try {
      writeFileSync(path.join(dir, 'pid'), `${child.pid}\n`);
      // Until the child has exec'd sleep, its command line is still its parent's.
      for (let i = 0; i < 200 && !readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').startsWith('sh\0'); i++) execFileSync('sleep', ['0.01']);
      const script = STATD_INFO_SCRIPT.replace('/run/rpc.statd.pid', path.join(dir, 'pid'));
      const out = execFileSync('sh', ['-c', script, 'baton-statd-info'], { encoding: 'utf8' });
      expect(parseStatdInfo(out)).toEqual({ pid: child.pid, uid: process.geteuid!(), args: ['-c', 'sleep 30; :', 'baton-test', 'two words'] });
    } finally {
      process.kill(-child.pid!, 'SIGKILL'); // its sleep too
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('builds the statd and sm-notify argv checked against nfs-utils 2.6.2', () => {
    expect(statdStartArgv('/srv/disk1/.nfs-statd', '198.18.50.200')).toEqual(['rpc.statd', '--no-notify', '-P', '/srv/disk1/.nfs-statd', '-n', '198.18.50.200']);
    expect(smNotifyArgv('/srv/disk1/.nfs-statd', '198.18.50.200')).toEqual(['sm-notify', '-f', '-n', '-v', '198.18.50.200', '-P', '/srv/disk1/.nfs-statd']);
    expect(parsePids('18\n18\n374\n')).toEqual([18, 374]);
    const d = restartStatd.describe({ vip: '198.18.50.200', state_dir: '/srv/disk1/.nfs-statd', notify: false });
    expect(d.commands.map((c) => c[0])).toEqual(['mkdir', 'kill', 'sh', 'rpc.statd']);
    expect(restartStatd.oneShot).toBe(true);
    expect(restartStatd.role).toBe('neutral');
  });

  it('writes a monitor record in the format statd uses (the line sm-notify consumed in the lab)', () => {
    expect(statdMonitorRecord({ callbackIPv4: '127.0.0.1', monName: '198.18.50.101', myName: 'n1' })).toBe(
      '0100007f 000186b5 00000004 00000010 00000000000000000000000000000000 198.18.50.101 n1\n',
    );
  });
});

describe('mount facts', () => {
  it('parses findmnt -J for a mount point (captured on a lab node)', () => {
    const out = '{\n   "filesystems": [\n      {\n         "target": "/srv/disk1",\n         "source": "/dev/loop0",\n         "fstype": "ext4"\n      }\n   ]\n}\n';
    expect(parseFindmnt(out)).toEqual({ target: '/srv/disk1', source: '/dev/loop0', fstype: 'ext4' });
    expect(parseFindmnt('')).toBeUndefined();
  });
});

describe('the exported check on the kernel server', () => {
  /** The check's own read, run here with a fake `exportfs` on PATH listing /srv/disk1 and the given nfsd thread count. */
  function read(threads: string | undefined) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-kernel-nfs-'));
    try {
      writeFileSync(path.join(dir, 'exportfs'), '#!/bin/sh\nprintf \'/srv/disk1    \\t<world>(sync,fsid=101,rw)\\n\'\n', { mode: 0o755 });
      const threadsFile = path.join(dir, 'threads');
      if (threads !== undefined) writeFileSync(threadsFile, `${threads}\n`);
      const argv = kernelServerArgv(threadsFile);
      return parseKernelServer(execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('nfsd at 0 threads: not up, and the check says it does not serve the export etab still lists', () => {
    expect(read('8')).toEqual({ up: true, exports: [{ path: '/srv/disk1', client: '<world>', options: ['sync', 'fsid=101', 'rw'] }] });
    expect(read(undefined).up).toBe(true);
    const stopped = read('0');
    expect(stopped.up).toBe(false);
    const seen = { serverUp: stopped.up, kernel: true, exports: stopped.exports.map((e) => ({ path: e.path })) };
    expect(exported.problem(seen, { provider: 'kernel', path: '/srv/disk1' })).toBe('the kernel NFS server has no threads (nfsd stopped), so /srv/disk1 is not served, whatever etab lists');
  });
});
