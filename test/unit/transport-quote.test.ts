import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { quoteArg, quoteArgv } from '../../src/transport/quote.js';
import { remoteCommand } from '../../src/transport/ssh.js';

const NASTY = ['', "it's", "'", "''", '"', '$(id)', '`id`', '; rm -rf x', 'a\nb', '*', '-n', 'if', 'A=b', '~', 'ünï ☃', '\\', '\t', '!', '#x'];

/** What a real POSIX sh makes of a command line: its argv, NUL-separated. */
function shellSplit(line: string): string[] {
  const out = execFileSync('sh', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

describe('quoteArg', () => {
  test('wraps in single quotes and escapes embedded ones', () => {
    expect(quoteArg('')).toBe("''");
    expect(quoteArg('plain')).toBe("'plain'");
    expect(quoteArg("it's")).toBe(`'it'\\''s'`);
  });

  test('sh reads every quoted argument back byte for byte', () => {
    expect(shellSplit(quoteArgv(NASTY))).toEqual(NASTY);
  });
});

describe('remoteCommand', () => {
  test('the wrapper runs argv literally with env passed as data', () => {
    const cmd = remoteCommand(['printf', '%s|', ...NASTY], { V: '$(echo no)' });
    // Run what the remote login shell would run, locally.
    const r = execFileSync('sh', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(r).toBe(NASTY.map((a) => `${a}|`).join(''));
    expect(execFileSync('sh', ['-c', remoteCommand(['sh', '-c', 'printf %s "$V"'], { V: '$(echo no)' })], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })).toBe('$(echo no)');
  });

  test('refuses what no command line can carry', () => {
    expect(() => remoteCommand(['a\0b'])).toThrow(/NUL/);
    expect(() => remoteCommand(['true'], { 'X;id': '1' })).toThrow(/invalid environment variable name/);
  });
});
