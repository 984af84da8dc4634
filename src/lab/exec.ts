/**
 * Running commands for the lab: argv arrays only (no shell), with errors that say which part of
 * the lab failed, the command, its stderr and what baton did about it.
 */
import { spawn } from 'node:child_process';
import { BatonError, ExitCode } from '../util/errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** What the command was for, e.g. "node n1" or "switch"; shown in errors. */
  where?: string;
  /** What baton does if this fails, e.g. "stopped; nothing of the lab was removed". */
  onFailure?: string;
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export class LabError extends BatonError {
  constructor(message: string) {
    super(message, ExitCode.FAILED_NOT_ROLLED_BACK);
    this.name = 'LabError';
  }
}

/** Shell-style rendering of argv, for messages only (never executed). */
export function showArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Run argv and return its result whatever the exit code. */
export function runRaw(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    if (!cmd) return reject(new Error('runRaw: empty argv'));
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: `${stderr}${err.message}` });
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (timedOut) stderr += `\n(killed after ${opts.timeoutMs} ms)`;
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

export function commandError(argv: readonly string[], r: RunResult, opts: RunOptions): LabError {
  const where = opts.where ? `${opts.where}: ` : '';
  const err = r.stderr.trim() || r.stdout.trim() || '(no output)';
  const what = opts.onFailure ? `\nbaton: ${opts.onFailure}` : '';
  return new LabError(`${where}\`${showArgv(argv)}\` exited ${r.code}: ${err}${what}`);
}

/** Run argv; throw a LabError naming the command and its stderr if it exits non-zero. */
export async function run(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await runRaw(argv, opts);
  if (r.code !== 0) throw commandError(argv, r, opts);
  return r.stdout;
}

/** Run argv, ignoring failure (cleanup of things that may already be gone). */
export async function tryRun(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return runRaw(argv, opts);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll until `check` returns true or the time is up; returns whether it became true. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= end) return false;
    await sleep(stepMs);
  }
}

/** POSIX shell single-quoting, for the few generated scripts (values baked in at generation). */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
