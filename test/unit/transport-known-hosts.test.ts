import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  appendKnownHost,
  checkHostKey,
  fingerprint,
  hashHostName,
  keyTypeOf,
  knownHostsName,
  loadKnownHosts,
  parseKnownHosts,
  patternsMatch,
} from '../../src/transport/known-hosts.js';

let dir: string;
let keyA: { line: string; blob: Buffer; fp: string };
let keyB: { line: string; blob: Buffer; fp: string };

function genKey(name: string, type = 'ed25519') {
  const f = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', f]);
  const line = readFileSync(`${f}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const fp = execFileSync('ssh-keygen', ['-lf', `${f}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
  return { line, blob: Buffer.from(line.split(' ')[1]!, 'base64'), fp };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'baton-kh-'));
  keyA = genKey('a');
  keyB = genKey('b');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('known_hosts', () => {
  test('fingerprints match ssh-keygen -l', () => {
    expect(fingerprint(keyA.blob)).toBe(keyA.fp);
    expect(keyTypeOf(keyA.blob)).toBe('ssh-ed25519');
  });

  test('names: port 22 bare, others bracketed', () => {
    expect(knownHostsName('nas1', 22)).toBe('nas1');
    expect(knownHostsName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
  });

  test('patterns: comma lists, wildcards, negation, case', () => {
    expect(patternsMatch('nas1,nas2', 'nas2')).toBe(true);
    expect(patternsMatch('NAS1', 'nas1')).toBe(true);
    expect(patternsMatch('nas*', 'nas9')).toBe(true);
    expect(patternsMatch('nas?', 'nas10')).toBe(false);
    expect(patternsMatch('nas*,!nas3', 'nas3')).toBe(false);
    expect(patternsMatch('[10.0.0.1]:2222', '[10.0.0.1]:2222')).toBe(true);
    expect(patternsMatch('10.0.0.1', '[10.0.0.1]:2222')).toBe(false);
    expect(patternsMatch('nas1.example', 'nas1xexample')).toBe(false);
  });

  test('hashed entries written by ssh-keygen -H are matched', () => {
    const f = join(dir, 'kh-hash');
    writeFileSync(f, `[nas1]:2222 ${keyA.line}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', f], { stdio: 'ignore' });
    const text = readFileSync(f, 'utf8');
    expect(text).toMatch(/^\|1\|/);
    const entries = loadKnownHosts([f]);
    expect(checkHostKey(entries, ['[nas1]:2222'], keyA.blob).status).toBe('known');
    expect(checkHostKey(entries, ['nas1'], keyA.blob).status).toBe('unknown');
    // and ours can be found by ssh-keygen -F
    const ours = join(dir, 'kh-ours');
    writeFileSync(ours, `${hashHostName('nas2', Buffer.alloc(20, 7))} ${keyB.line}\n`);
    expect(execFileSync('ssh-keygen', ['-F', 'nas2', '-f', ours], { encoding: 'utf8' })).toContain('found');
  });

  test('verdicts: known, changed (with file:line), revoked, unknown', () => {
    const text = `# c\n\nnas1,10.0.0.1 ${keyA.line} comment here\n@revoked * ${keyB.line}\n@cert-authority *.example ${keyA.line}\n`;
    const entries = parseKnownHosts(text, 'F');
    expect(checkHostKey(entries, ['10.0.0.1'], keyA.blob)).toMatchObject({ status: 'known', entry: { file: 'F', line: 3 } });
    expect(checkHostKey(entries, ['nas1'], keyB.blob).status).toBe('revoked');
    const c = genKey('c');
    const v = checkHostKey(entries, ['nas1'], c.blob);
    expect(v).toMatchObject({ status: 'mismatch', expected: [{ line: 3 }] });
    expect(checkHostKey(entries, ['nas9'], c.blob).status).toBe('unknown');
    // a cert-authority line is not a host key
    expect(checkHostKey(entries, ['x.example'], keyA.blob).status).toBe('unknown');
  });

  // An RSA key takes seconds to generate on a busy 2-core machine: not a timed test.
  test('a key of another type than the known one is unknown, not accepted', { timeout: 60_000 }, () => {
    const rsa = genKey('r', 'rsa');
    const entries = parseKnownHosts(`nas1 ${keyA.line}\n`, 'F');
    const v = checkHostKey(entries, ['nas1'], rsa.blob);
    expect(v.status).toBe('unknown');
    expect(v.status === 'unknown' && v.otherTypes.length).toBe(1);
  });

  test('appendKnownHost writes a line ssh-keygen -F finds, fixing a missing final newline', () => {
    const f = join(dir, 'sub', 'known_hosts');
    appendKnownHost(f, '[h]:2200', keyA.blob);
    writeFileSync(f, readFileSync(f, 'utf8').trimEnd());
    appendKnownHost(f, 'h2', keyB.blob);
    expect(readFileSync(f, 'utf8').split('\n')).toEqual([`[h]:2200 ${keyA.line}`, `h2 ${keyB.line}`, '']);
    expect(execFileSync('ssh-keygen', ['-F', '[h]:2200', '-f', f], { encoding: 'utf8' })).toContain(keyA.line);
  });
});
