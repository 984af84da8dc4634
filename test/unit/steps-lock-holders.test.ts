/**
 * NFSv3 lock holders per service group (docs/statd.md): the facts (statd's command line, the
 * callout it runs, the node map), the notification script run for real on a temporary directory,
 * and the three kinds on a scripted context. What Ganesha and statd do with them is the lab
 * test's (test/lab/statd-groups.test.ts).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  calloutFromArgs,
  DEFAULT_NSM_CALLOUT,
  NOTIFY_COPY_SCRIPT,
  notifyCopyArgv,
  NSM_CALLOUT_SCRIPT,
  NSM_VIEW_SCRIPT,
  parseNsmView,
  nfsConfValue,
  nsmLinkPath,
  parseStatdInfo,
  ssForm,
  statdCallout,
  statdRestartArgv,
  statdWithCalloutArgv,
  STATD_WITH_CALLOUT_SCRIPT,
} from '../../src/facts/nsm.js';
import { CommandFailedError, StepRefusedError, type StepContext } from '../../src/steps/contract.js';
import { trackLockHolders, type TrackObserved } from '../../src/steps/track-lock-holders.js';
import { untrackLockHolders } from '../../src/steps/untrack-lock-holders.js';
import { notifyLockHolders } from '../../src/steps/notify-lock-holders.js';
import type { ExecResult } from '../../src/transport/transport.js';
import { answerBatches } from '../helpers/fake-batch.js';

describe('lock holder facts', () => {
  it('names map entries as ss prints addresses (IPv6 compressed)', () => {
    expect(ssForm('198.18.197.200')).toBe('198.18.197.200');
    expect(ssForm('2001:DB8:0:0:0:0:0:10')).toBe('2001:db8::10');
    expect(ssForm('2001:db8:0:1:0:0:0:10')).toBe('2001:db8:0:1::10');
    expect(ssForm('2001:db8:1:2:3:4:0:10')).toBe('2001:db8:1:2:3:4:0:10');
    expect(nsmLinkPath('198.18.197.200')).toBe('/run/baton/nsm/198.18.197.200');
  });

  it("reads the node's statd: pid, uid and arguments (as the info script prints them)", () => {
    expect(parseStatdInfo('pid 143\nuid 0\narg --no-notify\narg -H\narg /var/lib/nfs/baton-nsm-callout\n')).toEqual({
      pid: 143,
      uid: 0,
      args: ['--no-notify', '-H', '/var/lib/nfs/baton-nsm-callout'],
    });
    expect(parseStatdInfo('')).toBeUndefined();
  });

  it('finds the callout on the command line in every spelling, else in [statd] of nfs.conf', () => {
    expect(calloutFromArgs(['-H', '/x'])).toBe('/x');
    expect(calloutFromArgs(['-H/x'])).toBe('/x');
    expect(calloutFromArgs(['--ha-callout', '/x'])).toBe('/x');
    expect(calloutFromArgs(['--ha-callout=/x', '-F'])).toBe('/x');
    expect(calloutFromArgs(['--no-notify'])).toBeUndefined();
    const conf = '[general]\nha-callout = /no\n[statd]\n# ha-callout = /old\n HA-Callout = /etc/ctdb/statd-callout \n[sm-notify]\n';
    expect(nfsConfValue(conf, 'statd', 'ha-callout')).toBe('/etc/ctdb/statd-callout');
    expect(statdCallout({ pid: 1, uid: 0, args: [] }, conf)).toBe('/etc/ctdb/statd-callout');
    expect(statdCallout({ pid: 1, uid: 0, args: ['-H', '/mine'] }, conf)).toBe('/mine');
    expect(statdCallout({ pid: 1, uid: 0, args: [] }, '')).toBeUndefined();
  });

  it("restarts statd on its own arguments with the callout, in the background, off any group's volume", () => {
    expect(statdRestartArgv(['--no-notify'], '/c', [])).toEqual(['rpc.statd', '--no-notify', '-H', '/c']);
    expect(statdRestartArgv(['-F', '--no-notify', '-H', '/old', '-p', '662', '-d'], '/c', [])).toEqual(['rpc.statd', '--no-notify', '-p', '662', '-H', '/c']);
    // The single-service restart_statd left statd on a group's directory under the VIP's name.
    expect(statdRestartArgv(['--no-notify', '-P', '/srv/disk1/.nfs-statd', '-n', '198.18.0.200'], '/c', ['/srv/disk1/.nfs-statd/'])).toEqual(['rpc.statd', '--no-notify', '-H', '/c']);
    // A node's own state directory stays.
    expect(statdRestartArgv(['-P', '/var/lib/nfs', '-n', 'nas1'], '/c', ['/srv/disk1/.nfs-statd'])).toEqual(['rpc.statd', '-P', '/var/lib/nfs', '-n', 'nas1', '-H', '/c']);
  });

  it('keeps values out of every script: they are positional arguments', () => {
    const argv = statdWithCalloutArgv(5, '/c; rm -rf /', ['rpc.statd', '-H', '/c; rm -rf /']);
    expect(argv.slice(0, 3)).toEqual(['sh', '-c', STATD_WITH_CALLOUT_SCRIPT]);
    expect(argv[2]).not.toContain('rm -rf');
    const n = notifyCopyArgv('/srv/it$(x)/.nfs-statd', '198.18.0.200');
    expect(n[2]).toBe(NOTIFY_COPY_SCRIPT);
    expect(n.slice(4)).toEqual(['/srv/it$(x)/.nfs-statd', '/run/baton/nsm-notify/198.18.0.200', 'sm-notify', '-f', '-n', '-v', '198.18.0.200', '-P', '/run/baton/nsm-notify/198.18.0.200']);
  });

  it('reads the map entry, the callout, statd, nfs.conf and the list in one script, with the shell\'s own read (real process)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-nsm-view-'));
    const child = spawn('sh', ['-c', 'sleep 30; :', 'baton-test', '-H', path.join(dir, 'callout')], { stdio: 'ignore', detached: true });
    try {
      const callout = path.join(dir, 'callout');
      const group = path.join(dir, 'group');
      mkdirSync(path.join(group, 'sm'), { recursive: true });
      writeFileSync(callout, NSM_CALLOUT_SCRIPT);
      symlinkSync(group, path.join(dir, 'link'));
      writeFileSync(path.join(dir, 'pid'), `${child.pid}\n`);
      for (let i = 0; i < 200 && !readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').startsWith('sh\0'); i++) execFileSync('sleep', ['0.01']);
      const script = NSM_VIEW_SCRIPT.replace('/run/rpc.statd.pid', path.join(dir, 'pid'));
      const view = (link: string, dirOf: string) => parseNsmView(execFileSync('sh', ['-c', script, 'baton-nsm-view', link, callout, dirOf], { encoding: 'utf8' }));
      const v = view(path.join(dir, 'link'), group)!;
      expect(v.link).toBe(group);
      expect(v.callout).toBe(NSM_CALLOUT_SCRIPT);
      expect(v.statd).toEqual({ pid: child.pid, uid: process.geteuid!(), args: ['-c', 'sleep 30; :', 'baton-test', '-H', callout] });
      expect(v.nfsConf).toBe(existsSync('/etc/nfs.conf') ? readFileSync('/etc/nfs.conf', 'utf8') : '');
      expect(v.dirs).toBe(true);
      // A callout of another text (no final newline either), no map entry, no list.
      writeFileSync(callout, '#!/bin/sh\nold');
      const w = view(path.join(dir, 'none'), path.join(dir, 'nowhere'))!;
      expect([w.link, w.callout, w.dirs]).toEqual([null, '#!/bin/sh\nold\n', false]);
      expect(parseNsmView('\n--baton-nsm-link\n/x\n')).toBeUndefined();
    } finally {
      process.kill(-child.pid!, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has a callout that is valid sh and takes nothing from statd as code', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-callout-'));
    try {
      const file = path.join(dir, 'callout');
      writeFileSync(file, NSM_CALLOUT_SCRIPT, { mode: 0o755 });
      execFileSync('sh', ['-n', file]);
      expect(NSM_CALLOUT_SCRIPT.startsWith('#!/bin/sh\n')).toBe(true);
      // statd's arguments are only ever expanded inside double quotes or matched by case.
      expect(NSM_CALLOUT_SCRIPT).not.toMatch(/eval|\$\(\$|`\$/);
      expect(DEFAULT_NSM_CALLOUT).toBe('/var/lib/nfs/baton-nsm-callout');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("notifies from a copy: the group's list stays whole; with no holder sm-notify does not run", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-notify-'));
    try {
      const src = path.join(dir, 'group');
      const scratch = path.join(dir, 'scratch');
      mkdirSync(path.join(src, 'sm'), { recursive: true });
      writeFileSync(path.join(src, 'state'), Buffer.from([7, 0, 0, 0]));
      const seen = path.join(dir, 'seen');
      // A stand-in for sm-notify that consumes its sm/ as the real one does (moves it to sm.bak).
      const fake = ['sh', '-c', 'ls "$1/sm" > "$2"; mv "$1"/sm/* "$1/sm.bak/"', 'fake-sm-notify', scratch, seen];
      const run = () => execFileSync('sh', ['-c', NOTIFY_COPY_SCRIPT, 'baton-nsm-notify', src, scratch, ...fake], { encoding: 'utf8' });
      expect(run().trim()).toBe('0');
      expect(existsSync(seen)).toBe(false);
      writeFileSync(path.join(src, 'sm', '198.18.197.101'), 'record\n');
      expect(run().trim()).toBe('1');
      expect(readFileSync(seen, 'utf8').trim()).toBe('198.18.197.101');
      expect(readdirSync(path.join(src, 'sm'))).toEqual(['198.18.197.101']);
      expect(readFileSync(path.join(scratch, 'state'))).toEqual(Buffer.from([7, 0, 0, 0]));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

});

// ------------------------------------------------------------ the kinds on a scripted context

type Script = (argv: string[]) => Partial<ExecResult> | undefined;

function fakeCtx(script: Script) {
  const ran: string[][] = [];
  const logs: string[] = [];
  const ctx: StepContext = {
    host: { name: 'n1', vars: {}, groups: ['all'] },
    transport: { host: 'n1', kind: 'ssh', connect: async () => {}, exec: async () => { throw new Error('unused'); }, close: async () => {} },
    inventory: { file: 'test', hosts: new Map(), groups: new Map() },
    vars: {},
    force: false,
    log: (m) => logs.push(m),
    transportFor: async () => { throw new Error('unused'); },
    markDown: () => {},
    async run(argv, opts = {}) {
      const one = (a: string[]): ExecResult => {
        ran.push(a);
        return { argv: a, code: 0, signal: null, stdout: '', stderr: '', timedOut: false, durationMs: 1, ...script(a) };
      };
      const r = answerBatches(one)(argv);
      if (!(opts.okCodes ?? [0]).includes(r.code!)) throw new CommandFailedError('n1', r);
      return r;
    },
  };
  return { ctx, ran, logs };
}

const ARGS = { vip: '198.18.197.200', state_dir: '/srv/disk1/.nfs-statd' };
const isScript = (a: string[], name: string) => a[0] === 'sh' && a[3] === name;

/** A node as the probe reads it: map entry, callout file, statd, nfs.conf, the list's dir (as NSM_VIEW_SCRIPT prints them). */
function node(o: { link?: string; callout?: string; statdArgs?: string[] | null; conf?: string }): Script {
  return (a) => {
    if (a[0] === 'readlink') return o.link ? { stdout: `${o.link}\n` } : { code: 1 };
    if (isScript(a, 'baton-nsm-view')) {
      const statd = o.statdArgs === null ? '' : `pid 19\nuid 0\n${(o.statdArgs ?? ['--no-notify']).map((x) => `arg ${x}\n`).join('')}`;
      const sections = { link: o.link ? `${o.link}\n` : '', callout: o.callout ?? '', statd, conf: o.conf ?? '', dirs: 'yes\n' };
      return { stdout: Object.entries(sections).map(([k, v]) => `\n--baton-nsm-${k}\n${v}`).join('') };
    }
    return undefined;
  };
}

describe('track_lock_holders', () => {
  const tracked = { link: ARGS.state_dir, callout: NSM_CALLOUT_SCRIPT, statdArgs: ['--no-notify', '-H', DEFAULT_NSM_CALLOUT] };

  it('is satisfied only with the map entry, the current callout, statd running it and the list dir', async () => {
    const seen = await trackLockHolders.probe(fakeCtx(node(tracked)).ctx, ARGS);
    expect(trackLockHolders.satisfied(seen, ARGS)).toBe(true);
    for (const o of [{ ...tracked, link: '/srv/disk2/.nfs-statd' }, { ...tracked, callout: '#!/bin/sh\nold\n' }, { ...tracked, statdArgs: ['--no-notify'] }, { ...tracked, statdArgs: null }]) {
      expect(trackLockHolders.satisfied(await trackLockHolders.probe(fakeCtx(node(o)).ctx, ARGS), ARGS)).toBe(false);
    }
    // statd configured through nfs.conf counts.
    const viaConf = await trackLockHolders.probe(fakeCtx(node({ ...tracked, statdArgs: ['-F'], conf: `[statd]\nha-callout=${DEFAULT_NSM_CALLOUT}\n` })).ctx, ARGS);
    expect(trackLockHolders.satisfied(viaConf, ARGS)).toBe(true);
  });

  it('adds the map entry without touching a statd that already runs the callout', async () => {
    const f = fakeCtx(node({ statdArgs: ['--no-notify', '-H', DEFAULT_NSM_CALLOUT] }));
    const before = await trackLockHolders.probe(f.ctx, ARGS);
    f.ran.length = 0;
    await trackLockHolders.apply(f.ctx, ARGS, before);
    expect(f.ran).toContainEqual(['ln', '-sfn', ARGS.state_dir, '/run/baton/nsm/198.18.197.200']);
    expect(f.ran).toContainEqual(['chown', '0', ARGS.state_dir, `${ARGS.state_dir}/sm`, `${ARGS.state_dir}/sm.bak`]);
    expect(f.ran.some((a) => isScript(a, 'baton-statd-callout') || a[0] === 'kill' || a[0] === 'rpc.statd')).toBe(false);
  });

  it('reads the node again in the exec that made the change, when statd already runs the callout (no probe of its own after)', async () => {
    const f = fakeCtx(node({ link: ARGS.state_dir, callout: NSM_CALLOUT_SCRIPT, statdArgs: ['--no-notify', '-H', DEFAULT_NSM_CALLOUT] }));
    const before: TrackObserved = { link: null, calloutCurrent: true, statd: { pid: 19, uid: 0, args: ['--no-notify', '-H', DEFAULT_NSM_CALLOUT], callout: DEFAULT_NSM_CALLOUT }, dirs: false };
    let execs = 0;
    const run = f.ctx.run;
    f.ctx.run = (argv, o) => (execs++, run(argv, o));
    const after = await trackLockHolders.apply(f.ctx, ARGS, before);
    expect(execs).toBe(1);
    expect(after).toEqual({ link: ARGS.state_dir, calloutCurrent: true, statd: before.statd, dirs: true });
    expect(trackLockHolders.satisfied(after as TrackObserved, ARGS)).toBe(true);
    // A statd without the callout is restarted after the batch: the engine probes then.
    const g = fakeCtx(node({ statdArgs: ['--no-notify'] }));
    expect(await trackLockHolders.apply(g.ctx, ARGS, await trackLockHolders.probe(g.ctx, ARGS))).toBeUndefined();
  });

  it('installs the callout only where the probe did not read baton\'s current text (the second group on a node skips it)', async () => {
    const installs = (f: ReturnType<typeof fakeCtx>) => f.ran.filter((a) => isScript(a, 'baton-nsm-callout')).length;
    const fresh = fakeCtx(node({ statdArgs: ['--no-notify', '-H', DEFAULT_NSM_CALLOUT] }));
    await trackLockHolders.apply(fresh.ctx, ARGS, await trackLockHolders.probe(fresh.ctx, ARGS));
    expect(installs(fresh)).toBe(1);
    const current = fakeCtx(node({ callout: NSM_CALLOUT_SCRIPT, statdArgs: ['--no-notify', '-H', DEFAULT_NSM_CALLOUT] }));
    await trackLockHolders.apply(current.ctx, ARGS, await trackLockHolders.probe(current.ctx, ARGS));
    expect(installs(current)).toBe(0);
    // The group's list dirs and the map dir in one mkdir.
    expect(current.ran).toContainEqual(['mkdir', '-p', `${ARGS.state_dir}/sm`, `${ARGS.state_dir}/sm.bak`, '/run/baton/nsm']);
    expect(current.ran).toContainEqual(['ln', '-sfn', ARGS.state_dir, '/run/baton/nsm/198.18.197.200']);
  });

  it('gives a statd without the callout its own arguments plus -H, once, under the node lock', async () => {
    const f = fakeCtx(node({ statdArgs: ['--no-notify'] }));
    const before = await trackLockHolders.probe(f.ctx, ARGS);
    await trackLockHolders.apply(f.ctx, ARGS, before);
    const restart = f.ran.find((a) => isScript(a, 'baton-statd-callout'))!;
    expect(restart.slice(4)).toEqual(['5', DEFAULT_NSM_CALLOUT, 'rpc.statd', '--no-notify', '-H', DEFAULT_NSM_CALLOUT]);
    expect(f.logs.join('\n')).toMatch(/restarted with baton's HA callout/);
  });

  it("refuses a statd that runs someone else's callout, before changing anything", async () => {
    const f = fakeCtx(node({ statdArgs: ['-H', '/etc/ctdb/statd-callout'] }));
    const before = await trackLockHolders.probe(f.ctx, ARGS);
    f.ran.length = 0;
    const refused = trackLockHolders.apply(f.ctx, ARGS, before);
    await expect(refused).rejects.toThrow(StepRefusedError);
    await expect(refused).rejects.toThrow(/another HA callout, \/etc\/ctdb\/statd-callout/);
    expect(f.ran).toEqual([]);
  });

  it('reverts the map entry to what it was, and judges "as before" by it alone', async () => {
    const f = fakeCtx(() => undefined);
    const before: TrackObserved = { link: null, calloutCurrent: false, statd: null, dirs: false };
    await trackLockHolders.revert(f.ctx, ARGS, before);
    expect(f.ran).toEqual([['rm', '-f', '/run/baton/nsm/198.18.197.200']]);
    const now: TrackObserved = { link: null, calloutCurrent: true, statd: { pid: 5, uid: 0, args: [], callout: DEFAULT_NSM_CALLOUT }, dirs: true };
    expect(trackLockHolders.restored!(before, now, ARGS)).toBe(true);
    expect(trackLockHolders.restored!(before, { ...now, link: ARGS.state_dir }, ARGS)).toBe(false);
  });
});

describe('untrack_lock_holders', () => {
  it('removes the map entry only, and puts it back on revert', async () => {
    const f = fakeCtx(node({ link: ARGS.state_dir }));
    const before = await untrackLockHolders.probe(f.ctx, { vip: ARGS.vip });
    expect(before).toEqual({ link: ARGS.state_dir });
    expect(untrackLockHolders.satisfied(before, { vip: ARGS.vip })).toBe(false);
    expect(untrackLockHolders.satisfied({ link: null }, { vip: ARGS.vip })).toBe(true);
    f.ran.length = 0;
    // The entry removed and read back in one exec: what the read says is the state after.
    expect(await untrackLockHolders.apply(f.ctx, { vip: ARGS.vip }, before)).toEqual({ link: ARGS.state_dir });
    await untrackLockHolders.revert(f.ctx, { vip: ARGS.vip }, before);
    expect(f.ran).toEqual([
      ['rm', '-f', '/run/baton/nsm/198.18.197.200'],
      ['readlink', '/run/baton/nsm/198.18.197.200'],
      ['ln', '-sfn', ARGS.state_dir, '/run/baton/nsm/198.18.197.200'],
    ]);
    const gone = fakeCtx(node({}));
    expect(await untrackLockHolders.apply(gone.ctx, { vip: ARGS.vip }, before)).toEqual({ link: null });
  });
});

describe('notify_lock_holders', () => {
  const state = (n: number) => ` ${n}\n`;

  it('writes a larger odd state number, then notifies from a copy of the list; statd is not touched', async () => {
    let written = 0;
    const f = fakeCtx((a) => {
      if (a[0] === 'getent') return { stdout: '198.18.197.200 nfs-vip nfs-a\n' };
      if (a[0] === 'od') return { stdout: state(written || 1795000001) };
      if (isScript(a, 'baton-statd-state')) written = Number(a.at(-1));
      if (isScript(a, 'baton-nsm-notify')) return { stdout: '1\n' };
      return undefined;
    });
    await notifyLockHolders.apply(f.ctx, ARGS, {});
    expect(written).toBeGreaterThan(1795000001);
    expect(written % 2).toBe(1);
    const notify = f.ran.find((a) => isScript(a, 'baton-nsm-notify'))!;
    expect(notify.slice(4)).toEqual([ARGS.state_dir, '/run/baton/nsm-notify/198.18.197.200', 'sm-notify', '-f', '-n', '-v', ARGS.vip, '-P', '/run/baton/nsm-notify/198.18.197.200']);
    expect(f.ran.some((a) => a.includes('rpc.statd') || a[0] === 'kill' || isScript(a, 'baton-statd-stop'))).toBe(false);
    expect(f.logs.join('\n')).toMatch(/SM_NOTIFY sent to 1 lock holder/);
    expect(notifyLockHolders.oneShot).toBe(true);
    expect(notifyLockHolders.reversible!(ARGS)).toBe(false);
  });

  it('refuses a VIP without a host name before writing anything', async () => {
    const f = fakeCtx((a) => (a[0] === 'getent' ? { code: 2 } : undefined));
    await expect(notifyLockHolders.apply(f.ctx, ARGS, {})).rejects.toThrow(/has no host name/);
    expect(f.ran.some((a) => isScript(a, 'baton-statd-state') || isScript(a, 'baton-nsm-notify'))).toBe(false);
  });

  it('says what is left to do when sm-notify fails', async () => {
    let written = 0;
    const f = fakeCtx((a) => {
      if (a[0] === 'od') return { stdout: state(written || 1795000001) };
      if (isScript(a, 'baton-statd-state')) written = Number(a.at(-1));
      if (isScript(a, 'baton-nsm-notify')) return { code: 1, stderr: 'sm-notify: Failed to open directory sm' };
      return undefined;
    });
    await expect(notifyLockHolders.apply(f.ctx, ARGS, {})).rejects.toThrow(/now holds \d+; the holders were not notified/);
  });
});
