import net from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error the package ships no types
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { decodeReply, encodeNullCall, frameRecord, nullCall, NFS_PROGRAM, RecordReader } from '../../src/net/oncrpc.js';
import { dfArgv, parseDfP, parseIsActive, parsePgrep, parsePidfile, pgrepArgv, pidfileArgv, systemctlIsActiveArgv } from '../../src/facts/health.js';
import { EXIT_CODE, worstStatus, type CheckResult } from '../../src/engine/check.js';
import { escapeLabelValue, formatNagios, formatProm, makeReport, writeFileAtomic } from '../../src/report/check.js';
import { vipHolder } from '../../src/steps/vip-holder.js';
import { diskFree } from '../../src/steps/disk-free.js';

const words = (...w: number[]) => Buffer.concat(w.map((x) => Buffer.from([x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255])));

describe('ONC RPC NULL call', () => {
  it('encodes CALL, rpcvers 2, program, version, procedure 0, AUTH_NONE credential and verifier', () => {
    expect(encodeNullCall(0x01020304, NFS_PROGRAM, 3)).toEqual(words(0x01020304, 0, 2, 100003, 3, 0, 0, 0, 0, 0));
  });

  it('frames a message as one last fragment', () => {
    const f = frameRecord(Buffer.alloc(40));
    expect(f.readUInt32BE(0)).toBe(0x80000028);
    expect(f.length).toBe(44);
  });

  it('reassembles fragments split anywhere in the byte stream', () => {
    const r = new RecordReader();
    const a = Buffer.concat([words(0x00000004), words(7), words(0x80000004), words(9)]);
    expect(r.push(a.subarray(0, 3))).toBeUndefined();
    expect(r.push(a.subarray(3, 10))).toBeUndefined();
    expect(r.push(a.subarray(10))).toEqual(words(7, 9));
  });

  it('decodes accepted SUCCESS, PROG_MISMATCH, PROG_UNAVAIL and denied replies', () => {
    expect(decodeReply(words(5, 1, 0, 0, 0, 0))).toEqual({ xid: 5, accepted: true, stat: 'SUCCESS' });
    expect(decodeReply(words(5, 1, 0, 0, 0, 2, 3, 4))).toEqual({ xid: 5, accepted: true, stat: 'PROG_MISMATCH', mismatch: { low: 3, high: 4 } });
    expect(decodeReply(words(5, 1, 0, 0, 0, 1))).toMatchObject({ accepted: true, stat: 'PROG_UNAVAIL' });
    // A verifier with a body (8 bytes) is skipped.
    expect(decodeReply(words(5, 1, 0, 1, 8, 0xaa, 0xbb, 0))).toMatchObject({ stat: 'SUCCESS' });
    expect(decodeReply(words(5, 1, 1, 0, 2, 2))).toEqual({ xid: 5, accepted: false, reject: 'RPC_MISMATCH', mismatch: { low: 2, high: 2 } });
    expect(decodeReply(words(5, 1, 1, 1, 5))).toEqual({ xid: 5, accepted: false, reject: 'AUTH_ERROR', auth: 'AUTH_TOOWEAK' });
    expect(() => decodeReply(words(5, 0))).toThrow(/not an RPC reply/);
    expect(() => decodeReply(words(5, 1, 0, 0))).toThrow(/truncated/);
  });

  /** A tiny RPC server: answers each call with `reply(xid, vers)`, in two fragments to exercise reassembly. */
  function server(reply: (xid: number, vers: number) => Buffer | undefined): Promise<{ port: number; close: () => void; calls: Buffer[] }> {
    const calls: Buffer[] = [];
    const srv = net.createServer((sock) => {
      const reader = new RecordReader();
      sock.on('data', (d: Buffer) => {
        const msg = reader.push(d);
        if (!msg) return;
        calls.push(msg);
        const body = reply(msg.readUInt32BE(0), msg.readUInt32BE(16));
        if (!body) return sock.destroy();
        const half = 8;
        sock.write(Buffer.concat([words(half), body.subarray(0, half), words((0x80000000 | (body.length - half)) >>> 0), body.subarray(half)]));
      });
    });
    return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ port: (srv.address() as net.AddressInfo).port, close: () => srv.close(), calls })));
  }

  it('talks to a server: SUCCESS for version 4, PROG_MISMATCH for 3, a dropped connection, a silent server', async () => {
    const s = await server((xid, vers) => (vers === 4 ? words(xid, 1, 0, 0, 0, 0) : vers === 3 ? words(xid, 1, 0, 0, 0, 2, 4, 4) : undefined));
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const ok = await nullCall({ host: '127.0.0.1', port: s.port, prog: NFS_PROGRAM, vers: 4, timeoutMs: 2000 });
      expect(ok).toMatchObject({ ok: true, message: 'NULL call answered' });
      expect(s.calls[0]!.readUInt32BE(12)).toBe(NFS_PROGRAM);
      const v3 = await nullCall({ host: '127.0.0.1', port: s.port, prog: NFS_PROGRAM, vers: 3, timeoutMs: 2000 });
      expect(v3).toMatchObject({ ok: false, message: 'program version not served (server offers 4..4)' });
      const dropped = await nullCall({ host: '127.0.0.1', port: s.port, prog: NFS_PROGRAM, vers: 2, timeoutMs: 2000 });
      expect(dropped).toMatchObject({ ok: false, message: expect.stringMatching(/closed the connection without a reply/) });
      const t0 = Date.now();
      const mute = await nullCall({ host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port, prog: NFS_PROGRAM, vers: 4, timeoutMs: 300 });
      expect(mute).toMatchObject({ ok: false, message: expect.stringMatching(/no answer .* within 300 ms/) });
      expect(Date.now() - t0).toBeLessThan(1500);
    } finally {
      s.close();
      silent.close();
    }
  });
});

describe('health facts', () => {
  it('df -P on this machine and on a lab disk', () => {
    expect(dfArgv('/var/lib/nfs')).toEqual(['df', '-P', '-k', '--', '/var/lib/nfs']);
    // Captured on Debian 12 (coreutils 9.1).
    const root = 'Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/vda         264212084 23628040  82762872      23% /\n';
    expect(parseDfP(root)).toEqual({ filesystem: '/dev/vda', mountPoint: '/', totalKb: 264212084, usedKb: 23628040, availKb: 82762872, freePercent: 77.8 });
    const spaced = 'Filesystem     1024-blocks  Used Available Capacity Mounted on\n/dev/loop0           59365    14     54763       1% /srv/my disk\n';
    expect(parseDfP(spaced)).toMatchObject({ mountPoint: '/srv/my disk', freePercent: 100 });
    expect(() => parseDfP('df: /nope: No such file or directory\n')).toThrow(/unexpected `df -P` output/);
  });

  it('pgrep, pid files, systemctl', () => {
    expect(pgrepArgv('ganesha.nfsd')).toEqual(['pgrep', '-x', '--', 'ganesha.nfsd']);
    expect(parsePgrep('812\n1043\n')).toEqual([812, 1043]);
    expect(parsePgrep('')).toEqual([]);
    expect(pidfileArgv('/run/x.pid').slice(-1)).toEqual(['/run/x.pid']);
    expect(pidfileArgv('/run/$(reboot).pid')[2]).not.toContain('reboot');
    expect(parsePidfile('812\n', 0)).toEqual({ state: 'running', pid: 812 });
    expect(parsePidfile('812\n', 1)).toEqual({ state: 'stale', pid: 812 });
    expect(parsePidfile('', 3)).toEqual({ state: 'missing' });
    expect(systemctlIsActiveArgv('nfs-ganesha.service').slice(-1)).toEqual(['nfs-ganesha.service']);
    expect(parseIsActive('inactive\n', 3)).toBe('inactive');
    expect(parseIsActive('', 127)).toBeUndefined();
  });
});

describe('check kinds judge what they observed', () => {
  it('vip_holder: none, one, split brain, unasked hosts', () => {
    const a = { address: '198.18.80.200' };
    expect(vipHolder.problem({ holders: [], asked: ['n1', 'n2'], unreachable: {} }, a)).toBe('no node holds 198.18.80.200');
    expect(vipHolder.problem({ holders: ['n1'], asked: ['n1', 'n2'], unreachable: {} }, a)).toBeUndefined();
    expect(vipHolder.problem({ holders: ['n1', 'n2'], asked: ['n1', 'n2'], unreachable: {} }, a)).toBe('198.18.80.200 held by n1 and n2 (split brain)');
    expect(vipHolder.problem({ holders: [], asked: ['n1', 'n2'], unreachable: { n2: 'timeout' } }, a)).toBe('no node holds 198.18.80.200 (not asked: n2)');
    expect(vipHolder.satisfied({ holders: ['n1', 'n2'], asked: [], unreachable: {} }, a)).toBe(false);
  });

  it('disk_free: critical under the minimum, warning under the warning level', () => {
    const seen = (pct: number) => ({ filesystem: 'x', mountPoint: '/', totalKb: 1000, usedKb: 1000 - pct * 10, availKb: pct * 10, freePercent: pct });
    const a = { path: '/', min_free_percent: 5, warning_percent: 10 };
    expect(diskFree.problem(seen(50), a)).toBeUndefined();
    expect(diskFree.severityOf!(seen(7), a)).toBe('warning');
    expect(diskFree.problem(seen(7), a)).toMatch(/under the warning level 10%/);
    expect(diskFree.severityOf!(seen(3), a)).toBe('critical');
    expect(diskFree.severityOf!(seen(3), { ...a, severity: 'warning' })).toBe('warning');
  });
});

const res = (over: Partial<CheckResult>): CheckResult => ({
  play: 0,
  host: 'n1',
  kind: 'vip_holder',
  stepId: 'p0.s0',
  instance: 'p0.s0',
  name: 'vip_holder',
  label: 'vip_holder',
  status: 'OK',
  severity: 'critical',
  message: 'fine',
  durationMs: 12,
  ...over,
});

describe('severity ranking and exit codes', () => {
  it('OK < WARNING < UNKNOWN < CRITICAL; Nagios codes 0 1 2 3', () => {
    expect(worstStatus([])).toBe('OK');
    expect(worstStatus(['OK', 'WARNING'])).toBe('WARNING');
    expect(worstStatus(['WARNING', 'UNKNOWN', 'OK'])).toBe('UNKNOWN');
    expect(worstStatus(['UNKNOWN', 'CRITICAL', 'WARNING'])).toBe('CRITICAL');
    expect(EXIT_CODE).toEqual({ OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 });
    expect(makeReport('x.yml', [res({}), res({ status: 'UNKNOWN' })], 10, 0).exitCode).toBe(3);
  });
});

describe('Nagios output', () => {
  it('first line: worst status, problems worst first, OK count, perfdata; then one line per problem', () => {
    const results = [
      res({ kind: 'tcp', label: 'tcp', name: 'tcp', stepId: 'p0.s9' }),
      res({ status: 'WARNING', kind: 'disk_free', name: 'space', label: 'space', stepId: 'p0.s4', host: 'n2', message: '7% free on /' }),
      res({ status: 'CRITICAL', message: '198.18.80.200 held by n1 and n2 (split brain)' }),
      res({ status: 'OK', kind: 'service_running', label: 'ganesha', stepId: 'p0.s2', host: 'n1' }),
      res({ status: 'OK', kind: 'service_running', label: 'ganesha', stepId: 'p0.s2', host: 'n2' }),
    ];
    const out = formatNagios(makeReport('nfs-health.yml', results, 183.4, 0));
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toBe('BATON CHECK CRITICAL - vip_holder: 198.18.80.200 held by n1 and n2 (split brain); space: 7% free on /; 3 OK | checks=5 critical=1 warning=1 unknown=0 duration=0.183s');
    // Two problem lines, then the per-check perfdata after a `|`, one check per line.
    expect(lines).toHaveLength(3 + 5);
    expect(lines[1]).toBe('CRITICAL n1 vip_holder [vip_holder]: 198.18.80.200 held by n1 and n2 (split brain) (12 ms)');
    expect(lines[3]).toBe("| 'tcp'=0;1;2;0;3 'tcp time'=0.012s;;;0");
    expect(lines.slice(4)).toEqual([
      "'space'=1;1;2;0;3 'space time'=0.012s;;;0",
      "'vip_holder'=2;1;2;0;3 'vip_holder time'=0.012s;;;0",
      "'ganesha@n1'=0;1;2;0;3 'ganesha@n1 time'=0.012s;;;0",
      "'ganesha@n2'=0;1;2;0;3 'ganesha@n2 time'=0.012s;;;0",
    ]);
    expect(formatNagios(makeReport('x', results, 1, 0), true).trimEnd().split('\n')).toHaveLength(6 + 5);
  });

  it('a check that ran on several hosts is labelled with its host; pipes and newlines cannot break the line', () => {
    const results = [res({ status: 'CRITICAL', kind: 'service_running', label: 'ganesha', host: 'n1', message: 'a|b\nc' }), res({ kind: 'service_running', label: 'ganesha', host: 'n2' })];
    const first = formatNagios(makeReport('x', results, 1, 0)).split('\n')[0]!;
    expect(first).toBe('BATON CHECK CRITICAL - ganesha@n1: a/b / c; 1 OK | checks=2 critical=1 warning=0 unknown=0 duration=0.001s');
  });

  it('all OK: says who holds the VIP', () => {
    const results = [res({ message: '198.18.80.200 held by n1' }), res({ kind: 'service_running', label: 'ganesha', name: 'ganesha', stepId: 'p0.s2', durationMs: 13.8 })];
    expect(formatNagios(makeReport('x', results, 50, 0))).toBe(
      'BATON CHECK OK - 2 OK; 198.18.80.200 held by n1 | checks=2 critical=0 warning=0 unknown=0 duration=0.050s\n' +
        "| 'vip_holder'=0;1;2;0;3 'vip_holder time'=0.012s;;;0\n" +
        "'ganesha'=0;1;2;0;3 'ganesha time'=0.0138s;;;0\n",
    );
  });
});

describe('Prometheus textfile', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-prom-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('escapes label values as the text format says', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });

  it('one gauge per check with its status, run duration and timestamp; a parser reads the escaped labels back', () => {
    const results = [res({}), res({ status: 'CRITICAL', host: 'n2', kind: 'tcp', name: 'port "2049" \\ of\nn2' }), res({ status: 'UNKNOWN', host: 'n2', kind: 'tcp', name: 'port "2049" \\ of\nn2' })];
    const text = formatProm(makeReport('/x/playbooks/nfs-health.yml', results, 183, 1_700_000_000.5));
    expect(text).toContain('# TYPE baton_check_status gauge');
    expect(text).toContain('baton_check_status{playbook="nfs-health",host="n1",check="vip_holder",name="vip_holder"} 0');
    const fam = parsePrometheusTextFormat(text) as Array<{ name: string; metrics: Array<{ value: string; labels: Record<string, string> }> }>;
    const status = fam.find((f) => f.name === 'baton_check_status')!.metrics;
    expect(status.map((m) => [m.labels.name, m.value])).toEqual([
      ['vip_holder', '0'],
      ['port "2049" \\ of\nn2', '2'],
      ['port "2049" \\ of\nn2 #2', '3'],
    ]);
    expect(fam.find((f) => f.name === 'baton_check_duration_seconds')!.metrics[0]!.value).toBe('0.183');
    expect(fam.find((f) => f.name === 'baton_check_last_run_timestamp_seconds')!.metrics[0]!.value).toBe('1700000000.5');
    expect(fam.find((f) => f.name === 'baton_check_overall_status')!.metrics[0]!.value).toBe('2');
  });

  it('is written atomically: the final name only, no temporary file left behind', () => {
    const file = path.join(tmp, 'baton.prom');
    writeFileAtomic(file, 'a 1\n');
    writeFileAtomic(file, 'a 2\n');
    expect(readFileSync(file, 'utf8')).toBe('a 2\n');
    expect(readdirSync(tmp)).toEqual(['baton.prom']);
    expect(() => writeFileAtomic(path.join(tmp, 'no/such/dir.prom'), 'x')).toThrow(/ENOENT/);
  });
});
