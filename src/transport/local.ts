import { spawn } from 'node:child_process';
import type { ConnectionSpec } from '../inventory/model.js';
import { explainSudoFailure, withBecome, type BecomePlan } from './become.js';
import type { ExecOptions, ExecResult, Transport } from './transport.js';

/** How long a timed-out process group gets between SIGTERM and SIGKILL. */
export const KILL_GRACE_MS = 2000;

/**
 * Runs commands on the controller itself. argv is spawned directly, never through a shell,
 * so no argument can be parsed as shell code.
 */
export class LocalTransport implements Transport {
  readonly kind = 'local' as const;

  constructor(
    readonly host: string,
    private readonly opts: { killGraceMs?: number; become?: ConnectionSpec['become'] } = {},
  ) {}

  async connect(): Promise<void> {}

  async close(): Promise<void> {}

  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) return Promise.reject(new TypeError('exec: empty argv'));
    let plan: BecomePlan;
    try {
      plan = withBecome(argv, opts, { become: this.opts.become });
    } catch (e) {
      return Promise.reject(e);
    }
    const started = performance.now();
    const grace = this.opts.killGraceMs ?? KILL_GRACE_MS;
    return new Promise<ExecResult>((resolve) => {
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let timedOut = false;
      let spawnError: Error | undefined;
      let timer: NodeJS.Timeout | undefined;
      let killTimer: NodeJS.Timeout | undefined;

      // detached puts the child in its own process group, so a timeout can kill what
      // it started too (a `sh -c` wrapper's children would otherwise survive it).
      const child = spawn(plan.argv[0]!, plan.argv.slice(1), {
        detached: true,
        env: plan.env ? { ...process.env, ...plan.env } : process.env,
        stdio: ['pipe', 'pipe', 'pipe'],
      });

      const killGroup = (sig: NodeJS.Signals) => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, sig);
        } catch {
          // ESRCH: the group is already gone.
        }
      };
      const stop = () => {
        if (timedOut) return;
        timedOut = true;
        killGroup('SIGTERM');
        killTimer = setTimeout(() => killGroup('SIGKILL'), grace);
      };
      if (opts.timeoutMs !== undefined) timer = setTimeout(stop, opts.timeoutMs);
      if (opts.signal) {
        if (opts.signal.aborted) queueMicrotask(stop);
        else opts.signal.addEventListener('abort', stop, { once: true });
      }

      child.stdout.on('data', (b: Buffer) => stdout.push(b));
      child.stderr.on('data', (b: Buffer) => stderr.push(b));
      // A command that never reads stdin closes it early; writing then gets EPIPE, which is not our failure.
      child.stdin.on('error', () => {});
      if (opts.stdin !== undefined) child.stdin.end(opts.stdin);
      else child.stdin.end();

      child.on('error', (err) => {
        spawnError = err;
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        clearTimeout(killTimer);
        opts.signal?.removeEventListener('abort', stop);
        // The leader is gone, but a child that ignored TERM may still hold the group.
        if (timedOut) killGroup('SIGKILL');
        let err = Buffer.concat(stderr).toString('utf8');
        // Node reports a failed spawn as a negative errno "exit code". Report what a shell would
        // (127 not found, 126 not executable): a missing binary is a failed command, not an
        // unreachable host.
        if (spawnError) {
          err += `${err && !err.endsWith('\n') ? '\n' : ''}${argv[0]}: ${spawnError.message}\n`;
          code = (spawnError as NodeJS.ErrnoException).code === 'ENOENT' ? 127 : 126;
        }
        if (plan.user !== undefined && code !== 0) err = explainSudoFailure(err, plan.user, this.host);
        resolve({
          argv,
          code: timedOut ? null : code,
          signal: timedOut ? (signal ?? null) : signal,
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: err,
          timedOut,
          durationMs: performance.now() - started,
        });
      });
    });
  }
}
