/**
 * Network facts and steps without root: parsers on output captured from lab nodes (Debian 12,
 * iproute2 6.1, iputils 20221126), argv builders for both arping flavours, and the steps' decisions
 * on a scripted StepContext.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { answerBatches } from '../helpers/fake-batch.js';
import {
  addrShowArgv,
  arpingVersionArgv,
  boundedDuplicateCheckArgv,
  canonicalAddress,
  detachedArgv,
  duplicateCheckArgv,
  duplicateVerdict,
  garpArgv,
  hostsWithMac,
  parseArpReplies,
  parseArpingFlavour,
  parseBoundedDuplicateCheck,
  parseIpAddr,
  parseSs,
  ssKillArgv,
  ssListArgv,
} from '../../src/facts/net.js';
import { CommandFailedError, StepRefusedError, type StepContext } from '../../src/steps/contract.js';
import { addArgv, delArgv, raiseVip } from '../../src/steps/raise-vip.js';
import { lowerVip, releaseArgv, stopReleaseListArgv } from '../../src/steps/lower-vip.js';
import { garp, garpPidFile, stopGarpArgv } from '../../src/steps/garp.js';
import type { Inventory } from '../../src/inventory/model.js';
import type { ExecResult } from '../../src/transport/transport.js';

const IP_ADDR_N1 = [
  '2: eth0    inet 198.18.30.11/24 scope global eth0\\       valid_lft forever preferred_lft forever',
  '2: eth0    inet 198.18.30.201/32 scope global eth0\\       valid_lft forever preferred_lft forever',
  '2: eth0    inet 198.18.30.200/24 scope global secondary eth0:vip\\       valid_lft forever preferred_lft forever',
  '2: eth0    inet6 2001:2::10/64 scope global dadfailed tentative \\       valid_lft forever preferred_lft forever',
  '2: eth0    inet6 fe80::ba:12ff:fe1e:101/64 scope link \\       valid_lft forever preferred_lft forever',
  '',
].join('\n');
const IP_ADDR_TENTATIVE = '2: eth0    inet6 2001:2::10/64 scope global tentative \\       valid_lft forever preferred_lft forever\n';
const ARPING_V = 'arping from iputils 20221126\nlibcap: yes, IDN: yes, NLS: no, error.h: yes, getrandom(): yes, __fpending(): yes\n';
const ARPING_DUP = [
  'ARPING 198.18.30.200 from 0.0.0.0 eth0',
  'Unicast reply from 198.18.30.200 [02:BA:12:1E:01:02]  0.560ms',
  'Sent 1 probes (1 broadcast(s))',
  'Received 1 response(s)',
  '',
].join('\n');
const ARPING_FREE = 'ARPING 198.18.30.201 from 0.0.0.0 eth0\nSent 2 probes (2 broadcast(s))\nReceived 0 response(s)\n';
const HABETS_REPLY = '60 bytes from 00:11:85:4c:01:01 (88.1.180.225): index=0 time=13.910 msec\n';
const SS = 'ESTAB 0      0      [::ffff:198.18.30.200]:2049 [::ffff:198.18.30.101]:44286\n';

describe('facts/net parsers', () => {
  it('parses ip -o addr: family, prefix, label, flags', () => {
    const a = parseIpAddr(IP_ADDR_N1);
    expect(a).toHaveLength(5);
    expect(a[0]).toEqual({ iface: 'eth0', family: 'inet', address: '198.18.30.11', prefix: 24, label: 'eth0', flags: [] });
    expect(a[1]).toMatchObject({ address: '198.18.30.201', prefix: 32, label: 'eth0' });
    expect(a[2]).toEqual({ iface: 'eth0', family: 'inet', address: '198.18.30.200', prefix: 24, label: 'eth0:vip', flags: ['secondary'] });
    expect(a[3]).toEqual({ iface: 'eth0', family: 'inet6', address: '2001:2::10', prefix: 64, flags: ['dadfailed', 'tentative'] });
    expect(a[4]).toMatchObject({ family: 'inet6', address: 'fe80::ba:12ff:fe1e:101', flags: [] });
    expect(parseIpAddr('')).toEqual([]);
  });

  it('a point-to-point address (`inet A peer B/N`) is read as A, its prefix from the peer', () => {
    const a = parseIpAddr('5: tun0    inet 198.18.30.201 peer 198.18.30.202/32 scope global tun0\\       valid_lft forever preferred_lft forever\n');
    expect(a).toEqual([{ iface: 'tun0', family: 'inet', address: '198.18.30.201', prefix: 32, label: 'tun0', flags: [] }]);
  });

  it('compares IPv6 addresses in canonical form', () => {
    expect(canonicalAddress('2001:2:0::10')).toBe(canonicalAddress('2001:2::10'));
    expect(canonicalAddress('2001:0002::0010')).toBe('2001:2:0:0:0:0:0:10');
    expect(canonicalAddress('::ffff:198.18.30.200')).toBe('0:0:0:0:0:ffff:c612:1ec8');
    expect(canonicalAddress('198.18.30.200')).toBe('198.18.30.200');
  });

  it('tells the arping flavours apart', () => {
    expect(parseArpingFlavour(ARPING_V, 0)).toBe('iputils');
    expect(parseArpingFlavour('arping: option requires an argument -- \'V\'\nARPing 2.23, by Thomas Habets <thomas@habets.se>\n', 0)).toBe('habets');
    expect(parseArpingFlavour('', 127)).toBe('none');
    expect(parseArpingFlavour('arping 1.0 from somewhere else', 0)).toBe('unknown');
  });

  it('reads the MACs that answered, from either flavour', () => {
    expect(parseArpReplies(ARPING_DUP)).toEqual(['02:ba:12:1e:01:02']);
    expect(parseArpReplies(ARPING_FREE)).toEqual([]);
    expect(parseArpReplies(HABETS_REPLY)).toEqual(['00:11:85:4c:01:01']);
  });

  it('parses ss -H -n -t', () => {
    expect(parseSs(SS)).toEqual([{ state: 'ESTAB', local: '[::ffff:198.18.30.200]:2049', peer: '[::ffff:198.18.30.101]:44286' }]);
    expect(parseSs('')).toEqual([]);
  });

  it('maps a MAC to inventory hosts by their mac var, case-insensitively', () => {
    const inv = inventory({ n1: '02:BA:12:1E:01:01', n2: '02:ba:12:1e:01:02', c1: undefined });
    expect(hostsWithMac(inv, '02:ba:12:1e:01:02')).toEqual(['n2']);
    expect(hostsWithMac(inv, '02:ba:12:1e:01:01')).toEqual(['n1']);
    expect(hostsWithMac(inv, '02:00:00:00:00:00')).toEqual([]);
  });
});

describe('facts/net argv', () => {
  it('duplicate check: iputils -D, Habets -0, and what their exit codes mean', () => {
    expect(duplicateCheckArgv('iputils', 'eth0', '198.18.30.200')).toEqual(['arping', '-D', '-c', '1', '-w', '2', '-I', 'eth0', '198.18.30.200']);
    expect(duplicateCheckArgv('iputils', 'eth0', '198.18.30.200', 3)).toEqual(['arping', '-D', '-c', '3', '-w', '4', '-I', 'eth0', '198.18.30.200']);
    expect(duplicateCheckArgv('habets', 'eth0', '198.18.30.200')).toEqual(['arping', '-0', '-c', '1', '-i', 'eth0', '198.18.30.200']);
    expect([0, 1, 2].map((c) => duplicateVerdict('iputils', c))).toEqual(['free', 'duplicate', 'error']);
    expect([0, 1, 2].map((c) => duplicateVerdict('habets', c))).toEqual(['duplicate', 'free', 'error']);
    expect(duplicateVerdict('iputils', null)).toBe('error');
  });

  it('gratuitous ARP for iputils (-U/-A, whole-second -i) and Habets (-U [-P] -S, -W seconds)', () => {
    const o = { iface: 'eth0', address: '198.18.30.200', count: 5, intervalMs: 1000, mode: 'request' as const };
    expect(garpArgv('iputils', o)).toEqual(['arping', '-q', '-U', '-c', '5', '-i', '1', '-I', 'eth0', '198.18.30.200']);
    expect(garpArgv('iputils', { ...o, mode: 'reply', intervalMs: 1500 })).toEqual(['arping', '-q', '-A', '-c', '5', '-i', '2', '-I', 'eth0', '198.18.30.200']);
    expect(garpArgv('iputils', { ...o, intervalMs: 200 })).toContain('1');
    expect(garpArgv('habets', { ...o, intervalMs: 500 })).toEqual(['arping', '-q', '-U', '-S', '198.18.30.200', '-i', 'eth0', '-c', '5', '-W', '0.5', '198.18.30.200']);
    expect(garpArgv('habets', { ...o, mode: 'reply' })).toEqual(['arping', '-q', '-U', '-P', '-S', '198.18.30.200', '-i', 'eth0', '-c', '5', '-W', '1', '198.18.30.200']);
  });

  it('ip addr add/del, with -6 and label only where they apply', () => {
    expect(addrShowArgv('eth0')).toEqual(['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(addArgv('198.18.30.200', 24, 'eth0')).toEqual(['ip', 'addr', 'add', '198.18.30.200/24', 'dev', 'eth0']);
    expect(addArgv('198.18.30.200', 24, 'eth0', 'eth0:nfs')).toEqual(['ip', 'addr', 'add', '198.18.30.200/24', 'dev', 'eth0', 'label', 'eth0:nfs']);
    expect(addArgv('2001:2::10', 64, 'eth0', 'eth0:nfs')).toEqual(['ip', '-6', 'addr', 'add', '2001:2::10/64', 'dev', 'eth0']);
    expect(delArgv('2001:2::10', 64, 'eth0')).toEqual(['ip', '-6', 'addr', 'del', '2001:2::10/64', 'dev', 'eth0']);
  });

  it('ss: the VIP is the local (src) end on its holder; IPv6 in brackets; listeners spared', () => {
    expect(ssKillArgv('198.18.30.200')).toEqual(['ss', '-H', '-K', '-t', 'state', 'connected', 'src', '198.18.30.200']);
    expect(ssListArgv('2001:2::10')).toEqual(['ss', '-H', '-n', '-t', 'state', 'connected', 'src', '[2001:2::10]']);
  });

  it('lower_vip resets before it deletes, in one command, values as positional args', () => {
    const a = { address: '198.18.30.200', prefix: 24, interface: 'eth0' };
    const argv = releaseArgv(a, 24);
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv[2]).not.toContain('198.18');
    expect(argv.slice(3)).toEqual(['baton-lower-vip', '198.18.30.200', 'ip', 'addr', 'del', '198.18.30.200/24', 'dev', 'eth0']);
    expect(releaseArgv({ ...a, reset_connections: false }, 24)).toEqual(['ip', 'addr', 'del', '198.18.30.200/24', 'dev', 'eth0']);
  });

  it('the release runs reset, delete, then the reads, in one shell, values as positional args (real sh, stub ss and ip)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-release-'));
    try {
      const log = path.join(dir, 'log');
      for (const tool of ['ss', 'ip']) {
        writeFileSync(path.join(dir, tool), `#!/bin/sh\necho "${tool} $*" >> '${log}'\n[ "$1" = -o ] && echo "2: eth0    inet 198.18.30.12/24 scope global eth0"\nexit 0\n`, { mode: 0o755 });
      }
      const a = { address: '198.18.30.200', prefix: 24, interface: 'eth0' };
      const run = (argv: string[]) => execFileSync(argv[0]!, argv.slice(1), { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, encoding: 'utf8' });
      const argv = stopReleaseListArgv(a, 24);
      expect(argv[2]).not.toContain('198.18');
      expect(argv.slice(3)).toEqual(['baton-lower-vip', garpPidFile(a.address, 'eth0'), '198.18.30.200', 'eth0', '1', 'ip', 'addr', 'del', '198.18.30.200/24', 'dev', 'eth0']);
      const out = run(argv);
      expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([
        'ss -H -K -t state connected src 198.18.30.200',
        'ip addr del 198.18.30.200/24 dev eth0',
        'ss -H -n -t state connected src 198.18.30.200',
        'ip -o addr show dev eth0',
      ]);
      expect(out).toMatch(/^--baton--addr\n2: eth0 {4}inet 198\.18\.30\.12\/24/m);
      rmSync(log);
      run(stopReleaseListArgv({ ...a, reset_connections: false }, 24));
      expect(readFileSync(log, 'utf8')).not.toContain('-K');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stopping an announcer kills only a recorded arping, and is a no-op without a pid file (real sh)', async () => {
    const pidFile = `/tmp/baton-garp-stop-test-${process.pid}.pid`;
    const [cmd, , script, name] = stopGarpArgv('x', 'y');
    const sh = (file: string) => promisify(execFile)(cmd!, ['-c', script!, name!, file]);
    await sh(pidFile); // no file: exit 0
    writeFileSync(pidFile, `${process.pid}\n`); // a pid that is not an arping: left alone
    await sh(pidFile);
    expect(existsSync(pidFile)).toBe(false);
  });

  it('detachedArgv returns at once and leaves the command running (real sh)', async () => {
    const marker = `/tmp/baton-detach-test-${process.pid}`;
    const t0 = Date.now();
    const [cmd, ...args] = detachedArgv(['sh', '-c', 'sleep 0.4; echo done > "$1"', 'x', marker]);
    await promisify(execFile)(cmd!, args);
    expect(Date.now() - t0).toBeLessThan(300);
    expect(existsSync(marker)).toBe(false);
    await new Promise((r) => setTimeout(r, 700));
    expect(readFileSync(marker, 'utf8').trim()).toBe('done');
    rmSync(marker);
  });
});

// ------------------------------------------------------------ steps on a scripted context

function inventory(macs: Record<string, string | undefined>): Inventory {
  const hosts = new Map(Object.entries(macs).map(([name, mac]) => [name, { name, vars: mac ? { mac } : {}, groups: ['all'] }]));
  return { file: 'test', hosts, groups: new Map() };
}

type Script = (argv: string[]) => Partial<ExecResult> | undefined;

function fakeCtx(script: Script, force = false) {
  const ran: string[][] = [];
  const logs: string[] = [];
  const ctx: StepContext = {
    host: { name: 'n2', vars: {}, groups: ['all'] },
    transport: { host: 'n2', kind: 'ssh', connect: async () => {}, exec: async () => { throw new Error('unused'); }, close: async () => {} },
    inventory: inventory({ n1: '02:ba:12:1e:01:01', n2: '02:ba:12:1e:01:02' }),
    vars: {},
    force,
    log: (m) => logs.push(m),
    transportFor: async () => { throw new Error('unused'); },
    markDown: () => {},
    async run(argv, opts = {}) {
      // A batch is answered command by command, each recorded as if it had run alone.
      const one = (a: string[]): ExecResult => {
        ran.push(a);
        return { argv: a, code: 0, signal: null, stdout: '', stderr: '', timedOut: false, durationMs: 1, ...(isBoundedCheck(a) ? boundedCheck(script, a) : script(a)) };
      };
      const r = answerBatches(one)(argv);
      if (!(opts.okCodes ?? [0]).includes(r.code!)) throw new CommandFailedError('n2', r);
      return r;
    },
  };
  return { ctx, ran, logs };
}

/**
 * raise_vip's duplicate check is one script (flavour, then a bounded arping): answer it as the
 * node would, from the fake's answers to `arping -V` and to the arping it runs.
 */
const isBoundedCheck = (argv: string[]) => argv[0] === 'sh' && argv[3] === 'baton-dup-check';
function boundedCheck(script: Script, argv: string[]): Partial<ExecResult> {
  // The flavour the connection already knew ($6), else the node's answer to the version probe.
  const v = argv[9] ? { code: 0, stdout: argv[9], stderr: '' } : { code: 0, stdout: '', stderr: '', ...script(arpingVersionArgv()) };
  const flavour = v.code === 127 ? 'none' : parseArpingFlavour(v.stdout + v.stderr, v.code);
  if (flavour === 'none' || flavour === 'unknown') return { code: 0, stdout: `flavour ${flavour}\n` };
  const [, , , iface, address, probes, , w] = argv as [string, string, string, string, string, string, string, string];
  const probe = flavour === 'habets' ? ['arping', '-0', '-c', probes, '-i', iface, address] : ['arping', '-D', '-c', probes, '-w', w, '-I', iface, address];
  const a = { code: 0, stdout: '', stderr: '', ...script(probe) };
  return { code: 0, stdout: `flavour ${flavour}\n${a.stdout}exit ${a.code}\n`, stderr: a.stderr };
}

const isShow = (argv: string[]) => argv[0] === 'ip' && argv[2] === 'addr' && argv[3] === 'show';
const isVersion = (argv: string[]) => argv[0] === 'sh' && argv[2]?.includes('arping -V');
const V4 = { address: '198.18.30.200', prefix: 24, interface: 'eth0' };

describe('bounded duplicate check', () => {
  it('is one exec with the values as parameters, bounded at 200 ms (a second more per extra probe)', () => {
    const argv = boundedDuplicateCheckArgv('eth0', '198.18.30.200');
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv.slice(3)).toEqual(['baton-dup-check', 'eth0', '198.18.30.200', '1', '0.200', '2', '']);
    expect(boundedDuplicateCheckArgv('eth0', '198.18.30.200', 1, 'iputils').at(-1)).toBe('iputils');
    expect(argv[2]).not.toContain('198.18.30.200');
    expect(boundedDuplicateCheckArgv('eth0', '198.18.30.200', 3).slice(7, 9)).toEqual(['2.200', '4']);
  });

  it('reads exit 124 (stopped by the bound, no reply) as free in both flavours, and any reply as a duplicate', () => {
    expect(parseBoundedDuplicateCheck('flavour iputils\nARPING 198.18.30.200 from 0.0.0.0 eth0\nexit 124\n').verdict).toBe('free');
    expect(parseBoundedDuplicateCheck('flavour habets\nexit 124\n').verdict).toBe('free');
    expect(parseBoundedDuplicateCheck('flavour iputils\nexit 0\n').verdict).toBe('free');
    const dup = parseBoundedDuplicateCheck(`flavour iputils\n${ARPING_DUP}\nexit 1\n`);
    expect(dup).toMatchObject({ verdict: 'duplicate', macs: ['02:ba:12:1e:01:02'], code: 1 });
    // Habets' arping stopped by the bound after printing a reply: still a duplicate.
    expect(parseBoundedDuplicateCheck('flavour habets\n60 bytes from 02:ba:12:1e:01:09 (198.18.30.200): index=0 time=0.4 msec\nexit 124\n').verdict).toBe('duplicate');
    expect(parseBoundedDuplicateCheck('flavour habets\nexit 0\n').verdict).toBe('duplicate');
    expect(parseBoundedDuplicateCheck('flavour iputils\nexit 2\n', 'arping: Device eth9 not available.')).toMatchObject({ verdict: 'error', output: 'arping: Device eth9 not available.' });
    expect(parseBoundedDuplicateCheck('flavour none\n')).toMatchObject({ flavour: 'none', verdict: 'error' });
    expect(parseBoundedDuplicateCheck('').verdict).toBe('error');
  });

  it('runs for real on this machine: a missing interface is an error, not "free", with the flavour found or given', async () => {
    const exec = async (argv: string[]) => promisify(execFile)(argv[0]!, argv.slice(1)).catch((e: { stdout: string; stderr: string }) => e);
    const first = await exec(boundedDuplicateCheckArgv('baton-no-such-if0', '198.18.30.250'));
    const found = parseBoundedDuplicateCheck(first.stdout, first.stderr);
    expect(found.verdict).not.toBe('free');
    const v = await exec(arpingVersionArgv());
    const flavour = parseArpingFlavour(v.stdout + v.stderr, 0);
    if (flavour !== 'iputils' && flavour !== 'habets') return; // no arping here: the lab tests need it, this one does not
    expect(found.flavour).toBe(flavour);
    const given = await exec(boundedDuplicateCheckArgv('baton-no-such-if0', '198.18.30.250', 1, flavour));
    expect(parseBoundedDuplicateCheck(given.stdout, given.stderr)).toMatchObject({ flavour, verdict: 'error' });
  });
});

describe('raise_vip', () => {
  it('is satisfied only with the prefix asked, not tentative, and the label when one is asked', () => {
    expect(raiseVip.satisfied({ present: true, prefix: 24 }, V4)).toBe(true);
    expect(raiseVip.satisfied({ present: true, prefix: 32 }, V4)).toBe(false);
    expect(raiseVip.satisfied({ present: false }, V4)).toBe(false);
    expect(raiseVip.satisfied({ present: true, prefix: 24, label: 'eth0:vip' }, { ...V4, label: 'eth0:nfs' })).toBe(false);
    const v6 = { address: '2001:2::10', prefix: 64, interface: 'eth0' };
    expect(raiseVip.satisfied({ present: true, prefix: 64, tentative: true, dadfailed: false }, v6)).toBe(false);
    expect(raiseVip.satisfied({ present: true, prefix: 64, tentative: false, dadfailed: false }, v6)).toBe(true);
  });

  it('probes the VIP with its label and IPv6 DAD state', async () => {
    const { ctx } = fakeCtx((argv) => (isShow(argv) ? { stdout: IP_ADDR_N1 } : undefined));
    expect(await raiseVip.probe(ctx, V4)).toEqual({ present: true, prefix: 24, label: 'eth0:vip' });
    expect(await raiseVip.probe(ctx, { address: '2001:2:0::10', prefix: 64, interface: 'eth0' })).toEqual({ present: true, prefix: 64, tentative: true, dadfailed: true });
    expect(await raiseVip.probe(ctx, { ...V4, address: '198.18.30.99' })).toEqual({ present: false });
    const t = fakeCtx((argv) => (isShow(argv) ? { stdout: IP_ADDR_TENTATIVE } : undefined));
    expect(await raiseVip.probe(t.ctx, { address: '2001:2::10', prefix: 64, interface: 'eth0' })).toMatchObject({ tentative: true, dadfailed: false });
  });

  it('refuses when another node answers, naming its MAC and inventory host, and adds nothing', async () => {
    const { ctx, ran } = fakeCtx((argv) => {
      if (isVersion(argv)) return { stdout: ARPING_V };
      if (argv[0] === 'arping') return { code: 1, stdout: ARPING_DUP.replace('02:BA:12:1E:01:02', '02:BA:12:1E:01:01') };
      return undefined;
    });
    const err = await raiseVip.preconditions!(ctx, V4).then(() => raiseVip.apply(ctx, V4, { present: false })).catch((e) => e);
    expect(err).toBeInstanceOf(StepRefusedError);
    expect(err.message).toContain('02:ba:12:1e:01:01 (n1)');
    expect(err.message).toMatch(/split brain/);
    expect(ran.some((a) => a[0] === 'ip' && a[2] === 'add')).toBe(false);
  });

  it('with --force raises anyway and logs who answers', async () => {
    const { ctx, ran, logs } = fakeCtx((argv) => {
      if (isVersion(argv)) return { stdout: ARPING_V };
      if (argv[0] === 'arping') return { code: 1, stdout: ARPING_DUP };
      return undefined;
    }, true);
    await raiseVip.preconditions!(ctx, V4).then(() => raiseVip.apply(ctx, V4, { present: false }));
    expect(ran.at(-2)).toEqual(addArgv('198.18.30.200', 24, 'eth0'));
    expect(logs.join()).toContain('02:ba:12:1e:01:02 (n2)');
  });

  it('on one connection arping is asked which kind it is once: later raises and garp go straight to work', async () => {
    let asked = 0;
    const { ctx, ran } = fakeCtx((argv) => {
      if (isVersion(argv)) {
        asked++;
        return { stdout: ARPING_V };
      }
      if (isShow(argv)) return { stdout: IP_ADDR_N1 };
      return undefined; // arping -D exit 0: nobody answered
    });
    for (const address of ['198.18.30.201', '198.18.30.202', '198.18.30.203']) {
      await raiseVip.preconditions!(ctx, { ...V4, address }).then(() => raiseVip.apply(ctx, { ...V4, address }, { present: false }));
    }
    expect(asked).toBe(1);
    const checks = ran.filter(isBoundedCheck);
    expect(checks.map((a) => a[9])).toEqual(['', 'iputils', 'iputils']);
    const before = ran.length;
    await garp.apply(ctx, { address: '198.18.30.200', interface: 'eth0' }, {});
    expect(asked).toBe(1);
    // The address check alone, not wrapped in a batch with a version probe.
    expect(ran[before]).toEqual(['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
    // Another connection (another node, or the next run) asks again.
    const other = fakeCtx((argv) => (isVersion(argv) ? (asked++, { stdout: ARPING_V }) : isShow(argv) ? { stdout: IP_ADDR_N1 } : undefined));
    await garp.apply(other.ctx, { address: '198.18.30.200', interface: 'eth0' }, {});
    expect(asked).toBe(2);
  });

  it('tells an arping error from a duplicate', async () => {
    const { ctx } = fakeCtx((argv) => {
      if (isVersion(argv)) return { stdout: ARPING_V };
      if (argv[0] === 'arping') return { code: 2, stderr: 'arping: Device eth9 not available.' };
      return undefined;
    });
    const err = await raiseVip.preconditions!(ctx, { ...V4, interface: 'eth9' }).catch((e) => e);
    expect(err).not.toBeInstanceOf(StepRefusedError);
    expect(err.message).toMatch(/duplicate check .* failed on n2/);
    expect(err.message).toContain('Device eth9 not available');
  });

  it('refuses without arping (unless forced): it cannot check for a duplicate', async () => {
    const { ctx } = fakeCtx((argv) => (isVersion(argv) ? { code: 127 } : undefined));
    await expect(raiseVip.preconditions!(ctx, V4)).rejects.toThrow(/arping is not installed/);
  });

  it('revert removes only what is there, and does nothing when apply never ran', async () => {
    const stop = stopGarpArgv('198.18.30.200', 'eth0');
    const none = fakeCtx((argv) => (isShow(argv) ? { stdout: '' } : undefined));
    await raiseVip.revert(none.ctx, V4, { present: false });
    expect(none.ran.filter((a) => !isShow(a))).toEqual([stop]);
    const some = fakeCtx((argv) => (isShow(argv) ? { stdout: IP_ADDR_N1 } : undefined));
    await raiseVip.revert(some.ctx, V4, { present: false });
    expect(some.ran.filter((a) => !isShow(a))).toEqual([stop, delArgv('198.18.30.200', 24, 'eth0')]);
  });
});

describe('lower_vip and garp', () => {
  it('lower_vip revert with the VIP absent before does nothing', async () => {
    const { ctx, ran } = fakeCtx(() => undefined);
    await lowerVip.revert(ctx, V4, { present: false });
    expect(ran).toEqual([]);
  });

  it('garp refuses to announce an address this node does not hold', async () => {
    const { ctx } = fakeCtx((argv) => (isShow(argv) ? { stdout: '' } : undefined));
    await expect(garp.apply(ctx, { address: '198.18.30.200', interface: 'eth0' }, {})).rejects.toBeInstanceOf(StepRefusedError);
  });

  it('garp starts arping detached (background) with the flavour found on the node', async () => {
    const { ctx, ran } = fakeCtx((argv) => {
      if (isShow(argv)) return { stdout: IP_ADDR_N1 };
      if (isVersion(argv)) return { stdout: 'ARPing 2.23, by Thomas Habets <thomas@habets.se>' };
      return undefined;
    });
    await garp.apply(ctx, { address: '198.18.30.200', interface: 'eth0' }, {});
    // A previous announcer of the address is stopped first, and this one records its pid.
    expect(ran.at(-2)).toEqual(stopGarpArgv('198.18.30.200', 'eth0'));
    const last = ran.at(-1)!;
    expect(last.slice(0, 5)).toEqual(detachedArgv([]).slice(0, 4).concat('sh'));
    // Five rounds of one packet each, a second apart (Habets' arping returns at once: pause 1).
    const i = last.indexOf(garpPidFile('198.18.30.200', 'eth0'));
    expect(last.slice(i + 1, i + 3)).toEqual(['sh', '-c']);
    expect(last.slice(i + 4)).toEqual(['baton-garp', '5', '1', '1', 'arping', '-q', '-U', '-S', '198.18.30.200', '-i', 'eth0', '-c', '1', '-W', '1', '198.18.30.200']);
  });

  it('garp in the foreground runs arping itself', async () => {
    const { ctx, ran } = fakeCtx((argv) => {
      if (isShow(argv)) return { stdout: IP_ADDR_N1 };
      if (isVersion(argv)) return { stdout: ARPING_V };
      return undefined;
    });
    await garp.apply(ctx, { address: '198.18.30.200', interface: 'eth0', count: 3, background: false }, {});
    const last = ran.at(-1)!;
    expect(last.slice(0, 2)).toEqual(['sh', '-c']);
    expect(last.slice(3)).toEqual(['baton-garp', '3', '1', '0', 'arping', '-q', '-U', '-c', '1', '-i', '1', '-I', 'eth0', '198.18.30.200']);
  });

  it('an announcement outlives a link that is down for its first rounds: a failed round does not end it', async () => {
    const { ctx, ran } = fakeCtx((argv) => {
      if (isShow(argv)) return { stdout: IP_ADDR_N1 };
      if (isVersion(argv)) return { stdout: ARPING_V };
      return undefined;
    });
    await garp.apply(ctx, { address: '198.18.30.200', interface: 'eth0', count: 3, interval_ms: 100, background: false }, {});
    const loop = ran.at(-1)!;
    // Run the very loop baton sent, with a stand-in "arping" that fails twice (link down), then works.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-garp-'));
    try {
      const one = ['sh', '-c', 'n=$(cat "$1" 2>/dev/null || echo 0); echo $((n + 1)) > "$1"; [ "$n" -ge 2 ]', 'fake-arping', path.join(dir, 'n')];
      const r = spawnSync(loop[0]!, [...loop.slice(1, 7), ...one], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(readFileSync(path.join(dir, 'n'), 'utf8').trim()).toBe('3');
      // Every round failing is a failed announcement.
      const bad = spawnSync(loop[0]!, [...loop.slice(1, 7), 'false'], { encoding: 'utf8' });
      expect(bad.status).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('garp for IPv6 without ndsend logs a note instead of failing', async () => {
    const { ctx, logs } = fakeCtx((argv) => {
      if (isShow(argv)) return { stdout: '2: eth0    inet6 2001:2::10/64 scope global \\       valid_lft forever preferred_lft forever\n' };
      if (argv[0] === 'sh' && argv.includes('ndsend')) return { code: 1 };
      return undefined;
    });
    await garp.apply(ctx, { address: '2001:2::10', interface: 'eth0' }, {});
    expect(logs.join()).toMatch(/no tool to send an unsolicited neighbour advertisement/);
  });

  it('describes every kind with its exact commands', () => {
    expect(raiseVip.describe(V4).commands).toEqual([['timeout', '0.200', ...duplicateCheckArgv('iputils', 'eth0', '198.18.30.200')], addArgv('198.18.30.200', 24, 'eth0')]);
    expect(lowerVip.describe(V4).commands).toEqual([releaseArgv(V4, 24)]);
    expect(garp.describe({ address: '198.18.30.200', interface: 'eth0' }).summary).toMatch(/5 × gratuitous ARP request, in the background/);
  });
});
