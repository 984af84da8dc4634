/**
 * Runs commands on a node over one reused SSH connection (ssh2).
 *
 * Each argv runs under a tiny POSIX sh wrapper, passed as quoted positional arguments:
 *   exec sh -c 'WRAPPER' baton ENV... -- ARGV...
 * The wrapper reports its pid on stderr's first line, exports ENV as data, then `exec`s the
 * command. sshd puts every non-pty session in its own session (setsid in session.c,
 * do_exec_no_pty), so that pid is also the process group: on timeout we kill the group over
 * a second channel. We do not rely on the SSH "signal" channel request: OpenSSH only
 * honours it from 7.9 on, and not for every session type.
 */
import type { ConnectionSpec } from '../inventory/model.js';
import { appendFileSync } from 'node:fs';
import { explainSudoFailure, withBecome } from './become.js';
import { ChannelQueue } from './channel-queue.js';
import { quoteArg, quoteArgv } from './quote.js';
import { dial, type SshClient } from './ssh-dial.js';
import { AgentSession, agentCommand, newBoundary, type AgentInterpreters } from './ssh-agent-mux.js';
import { resolveTarget, resolveTargetAsync, type ResolvedTarget } from './ssh-config.js';
import { UnreachableError, type ExecOptions, type ExecResult, type Transport } from './transport.js';

/**
 * `BATON_TRACE_EXEC=FILE`: one line per command (ms since the process started, host, ms it took,
 * argv), and one per connection and agent start (`@connect`, `@agent`), to see where a move's
 * time goes (docs/speed.md).
 */
const TRACE_FILE = process.env.BATON_TRACE_EXEC;
const trace = (t0: number, host: string, what: string) => {
  if (TRACE_FILE) appendFileSync(TRACE_FILE, `${t0.toFixed(0)} ${host} ${(performance.now() - t0).toFixed(1)} ${what.slice(0, 160).replace(/\n/g, ' ')}\n`);
};
/** `BATON_SSH_AGENT=0`: one SSH channel per command, as before the agent (ssh-agent-mux.ts): to compare, or for a node where it misbehaves. */
const AGENT_BY_DEFAULT = process.env.BATON_SSH_AGENT !== '0';

export interface SshTransportOptions {
  /** The CLI's --accept-new: record unknown host keys instead of refusing. Changed keys are always refused. */
  acceptNewHostKeys?: boolean;
  /** Channels open at once on the connection; OpenSSH's MaxSessions default is 10. */
  maxChannels?: number;
  keepaliveIntervalMs?: number;
  /** ssh client config; undefined = ~/.ssh/config, null = ignore any. */
  sshConfigFile?: string | null;
  /** Between SIGTERM and SIGKILL when a command is killed. */
  killGraceMs?: number;
  /** Run commands without stdin through one agent on the node (ssh-agent-mux.ts). Default: on, unless BATON_SSH_AGENT=0. */
  agent?: boolean;
  /** The agent's interpreters (default the system's `/usr/bin/python3`, then `perl` from the login shell's PATH); tests name missing ones. */
  agentInterpreters?: AgentInterpreters;
  log?: (msg: string) => void;
}

const PID_TAG = 'baton-pid:';
const WRAPPER = `printf '${PID_TAG}%s\\n' "$$" >&2; while [ "$1" != -- ]; do export "$1"; shift; done; shift; exec "$@"`;
const KILLER =
  'p=$1; g=$2; kill -TERM -"$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || exit 0; i=0; ' +
  'while kill -0 -"$p" 2>/dev/null || kill -0 "$p" 2>/dev/null; do ' +
  'if [ "$i" -ge "$g" ]; then kill -KILL -"$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; exit 0; fi; ' +
  'sleep 0.1; i=$((i+1)); done';
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The exec request for argv: what the remote login shell will parse. */
export function remoteCommand(argv: readonly string[], env: Record<string, string> = {}): string {
  return `exec sh -c ${quoteArg(WRAPPER)} baton ${quoteArgv([...envPairs(argv, env), '--', ...argv])}`;
}

/** The environment as NAME=VALUE words, once argv and env are known to fit a command line (no NUL, sane names). */
function envPairs(argv: readonly string[], env: Record<string, string>): string[] {
  for (const a of argv) if (a.includes('\0')) throw new TypeError('exec: an argument contains a NUL byte, which no command line can carry');
  return Object.entries(env).map(([k, v]) => {
    if (!ENV_NAME.test(k)) throw new TypeError(`exec: invalid environment variable name ${JSON.stringify(k)}`);
    if (v.includes('\0')) throw new TypeError(`exec: environment value of ${k} contains a NUL byte`);
    return `${k}=${v}`;
  });
}

export class SshTransport implements Transport {
  readonly kind = 'ssh' as const;
  readonly host: string;
  private readonly queue: ChannelQueue;
  private connecting: Promise<SshClient[]> | undefined;
  private target: ResolvedTarget | undefined;
  private closed = false;
  /** close() was called: never connect again (the pool makes a new transport for a host it needs again). */
  private ended = false;
  private readonly log: (msg: string) => void;
  /** The agent of the current connection, once asked for; null when the node cannot run it. */
  private agenting: Promise<AgentSession | null> | undefined;
  private agentOff: boolean;

  constructor(
    readonly spec: ConnectionSpec,
    private readonly opts: SshTransportOptions = {},
  ) {
    this.host = spec.host;
    this.queue = new ChannelQueue(opts.maxChannels ?? 10);
    this.log = opts.log ?? (() => {});
    this.agentOff = !(opts.agent ?? AGENT_BY_DEFAULT);
  }

  /** Most channels that were ever open at once (for tests and -v). */
  get peakChannels(): number {
    return this.queue.peakInUse;
  }

  /** Where the connection goes, after ssh config and inventory were merged. */
  resolved(): ResolvedTarget {
    this.target ??= resolveTarget(this.spec, { sshConfigFile: this.opts.sshConfigFile, acceptNewHostKeys: this.opts.acceptNewHostKeys });
    return this.target;
  }

  connect(): Promise<void> {
    return this.client().then(() => {
      // The agent starts now, while the run does its other opening work (locks on other nodes,
      // the placement read), not in front of this node's first command.
      void this.agentSession().catch(() => undefined);
    });
  }

  private client(): Promise<SshClient> {
    // Closed on purpose (the run is over): a command still on its way (a read started early
    // and no longer wanted) must not open a new connection that nothing would ever close.
    if (this.ended) return Promise.reject(new UnreachableError(this.host, `the connection to ${this.host} was closed (the run is over)`));
    if (!this.connecting) {
      this.closed = false;
      const p = (async () => {
        let t: ResolvedTarget;
        try {
          t = this.target ??= await resolveTargetAsync(this.spec, { sshConfigFile: this.opts.sshConfigFile, acceptNewHostKeys: this.opts.acceptNewHostKeys });
        } catch (e) {
          throw new UnreachableError(this.host, `cannot work out how to reach ${this.host}: ${(e as Error).message}`);
        }
        const dialled = performance.now();
        const chain = await dial(t, { keepaliveIntervalMs: this.opts.keepaliveIntervalMs, log: this.log });
        trace(dialled, this.host, '@connect');
        const c = chain[chain.length - 1]!;
        // A dropped connection is reopened by the next exec rather than failing forever.
        c.on('close', () => {
          if (this.connecting === p) this.connecting = undefined;
          for (const j of chain.slice(0, -1).reverse()) j.end();
        });
        c.on('error', (err: Error) => this.log(`${this.host}: connection error: ${err.message}`));
        return chain;
      })();
      this.connecting = p;
      p.catch(() => {
        if (this.connecting === p) this.connecting = undefined;
      });
    }
    return this.connecting.then((chain) => chain[chain.length - 1]!);
  }

  async close(): Promise<void> {
    const p = this.connecting;
    this.connecting = undefined;
    this.agenting = undefined;
    this.closed = true;
    this.ended = true;
    if (!p) return;
    let chain: SshClient[];
    try {
      chain = await p;
    } catch {
      return;
    }
    await Promise.all(
      chain.reverse().map(
        (c) =>
          new Promise<void>((resolve) => {
            c.once('close', () => resolve());
            c.end();
            // ssh2 emits close once the socket is gone; don't hang shutdown on a dead peer.
            setTimeout(resolve, 2000).unref();
          }),
      ),
    );
  }

  async exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) throw new TypeError('exec: empty argv');
    const plan = withBecome(argv, opts, this.spec);
    const agent = opts.stdin === undefined ? await this.agentSession() : null;
    const t0 = performance.now();
    const r = agent ? await this.runOnAgent(agent, argv, plan.argv, plan.env ?? {}, opts) : await this.runOnChannel(argv, remoteCommand(plan.argv, plan.env), opts);
    trace(t0, this.host, argv.join(' '));
    if (plan.user !== undefined && r.code !== 0) r.stderr = explainSudoFailure(r.stderr, plan.user, this.host);
    return r;
  }

  /** One command on an SSH channel of its own (waiting for a free one). */
  private async runOnChannel(argv: string[], command: string, opts: ExecOptions): Promise<ExecResult> {
    const release = await this.queue.acquire();
    try {
      return await this.run(await this.client(), argv, command, opts);
    } finally {
      release();
    }
  }

  /**
   * The connection's agent, started on first use; null (and not tried again on this transport)
   * when the node cannot run it. Rejects like exec when the node cannot be reached.
   */
  private agentSession(): Promise<AgentSession | null> {
    if (this.agentOff) return Promise.resolve(null);
    if (!this.agenting) {
      const p: Promise<AgentSession | null> = (async () => {
        const client = await this.client();
        const started = performance.now();
        // The agent holds one channel while it lives; commands with stdin and kills use the others.
        const release = await this.queue.acquire();
        const boundary = newBoundary();
        let channel: import('ssh2').ClientChannel;
        try {
          channel = await this.openExec(client, agentCommand(boundary, this.opts.agentInterpreters));
        } catch (e) {
          release();
          if (this.closed || !this.connecting) throw this.lost(e, 'starting the command agent');
          return this.giveUpAgent(e);
        }
        channel.on('close', release);
        try {
          const session = await AgentSession.start(channel, boundary, () => {
            if (this.agenting === p) this.agenting = undefined;
          });
          trace(started, this.host, '@agent');
          return session;
        } catch (e) {
          if (this.closed || !this.connecting) throw this.lost(e, 'starting the command agent');
          return this.giveUpAgent(e);
        }
      })();
      this.agenting = p;
      p.catch(() => {
        if (this.agenting === p) this.agenting = undefined;
      });
    }
    return this.agenting;
  }

  private giveUpAgent(why: unknown): null {
    this.agentOff = true;
    this.log(`${this.host}: one SSH channel per command from now on: the command agent did not start (${(why as Error)?.message ?? why})`);
    return null;
  }

  /** One command through the agent, with the timeout and abort semantics of run(). */
  private runOnAgent(agent: AgentSession, shown: string[], argv: string[], env: Record<string, string>, opts: ExecOptions): Promise<ExecResult> {
    envPairs(argv, env);
    const started = performance.now();
    const grace = Math.ceil((this.opts.killGraceMs ?? 2000) / 100);
    const run = agent.run(argv, env, opts.shared === true);
    return new Promise<ExecResult>((resolve, reject) => {
      let timedOut = false;
      let timer: NodeJS.Timeout | undefined;
      let giveUp: NodeJS.Timeout | undefined;
      const result = (code: number | null, signal: string | null, stdout: string, stderr: string): ExecResult => ({
        argv: shown,
        code: timedOut ? null : code,
        signal,
        stdout,
        stderr,
        timedOut,
        durationMs: performance.now() - started,
      });
      const stop = (): void => {
        if (timedOut) return;
        timedOut = true;
        agent.kill(run, grace);
        // Something may keep the command from ending (uninterruptible I/O): stop waiting for it.
        giveUp = setTimeout(() => {
          agent.forget(run);
          finish();
          resolve(result(null, null, '', ''));
        }, grace * 100 + 5000);
      };
      const finish = (): void => {
        clearTimeout(timer);
        clearTimeout(giveUp);
        opts.signal?.removeEventListener('abort', stop);
      };
      run.done.then(
        (f) => {
          finish();
          resolve(result(f.code, f.signal, f.stdout.toString('utf8'), f.stderr.toString('utf8')));
        },
        (e: unknown) => {
          finish();
          reject(this.lost(e, `running \`${shown.join(' ')}\``));
        },
      );
      if (opts.timeoutMs !== undefined) timer = setTimeout(stop, opts.timeoutMs);
      if (opts.signal) {
        if (opts.signal.aborted) stop();
        else opts.signal.addEventListener('abort', stop, { once: true });
      }
    });
  }

  /** Exit statuses seen on a channel before run() got to listen (see openExec). */
  private readonly exits = new WeakMap<object, { code: number | null; signal: string | null }>();

  private openExec(client: SshClient, command: string): Promise<import('ssh2').ClientChannel> {
    return new Promise((resolve, reject) => {
      try {
        client.exec(command, (err, stream) => {
          if (err) return reject(err);
          // A fast command's exit-status can arrive in the same read as the channel's
          // confirmation and be emitted before the awaiting code runs: record it now. (Data is
          // buffered by the stream until read; an event is not.)
          stream.on('exit', (c: number | null, sig?: string) => this.exits.set(stream, { code: c ?? null, signal: sig ? `SIG${sig}` : null }));
          resolve(stream);
        });
      } catch (e) {
        // ssh2 throws synchronously when the connection is already gone.
        reject(e);
      }
    });
  }

  private lost(err: unknown, doing: string): UnreachableError {
    const t = this.target;
    const at = t ? ` (${t.user}@${t.hostName}:${t.port})` : '';
    return new UnreachableError(
      this.host,
      `lost the connection to ${this.host}${at} while ${doing}: ${(err as Error)?.message ?? err}. The command's outcome on the node is unknown; check it there before re-running.`,
    );
  }

  private async run(client: SshClient, argv: string[], command: string, opts: ExecOptions): Promise<ExecResult> {
    const started = performance.now();
    let stream: import('ssh2').ClientChannel;
    try {
      stream = await this.openExec(client, command);
    } catch (e) {
      if (this.closed || !this.connecting) throw this.lost(e, `starting \`${argv.join(' ')}\``);
      throw new Error(`on ${this.host}: could not open an SSH channel for \`${argv.join(' ')}\`: ${(e as Error).message}`);
    }
    return new Promise<ExecResult>((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let head = Buffer.alloc(0);
      let pid: number | undefined;
      let pidSeen = false;
      let code: number | null = null;
      let signal: string | null = null;
      let exited = false;
      let timedOut = false;
      let finished = false;
      let timer: NodeJS.Timeout | undefined;
      let forceClose: NodeJS.Timeout | undefined;

      const killRemote = () => {
        if (pid === undefined || finished) return;
        const grace = Math.ceil((this.opts.killGraceMs ?? 2000) / 100);
        this.killGroup(client, pid, grace).finally(() => {
          // Something outside the group may still hold the channel's pipes open; stop waiting for it.
          if (!finished) forceClose = setTimeout(() => stream.close(), 1000);
        });
      };
      const stop = () => {
        if (timedOut || finished) return;
        timedOut = true;
        killRemote();
      };

      stream.stderr.on('data', (b: Buffer) => {
        if (pidSeen) return void err.push(b);
        head = Buffer.concat([head, b]);
        const nl = head.indexOf(0x0a);
        if (nl < 0 && head.length < 64) return;
        pidSeen = true;
        const line = head.subarray(0, nl < 0 ? 0 : nl).toString('latin1');
        if (line.startsWith(PID_TAG)) {
          pid = Number(line.slice(PID_TAG.length));
          err.push(head.subarray(nl + 1));
        } else {
          err.push(head);
        }
        if (timedOut) killRemote();
      });
      stream.on('data', (b: Buffer) => out.push(b));
      stream.on('error', () => {});
      stream.on('close', () => {
        finished = true;
        const exit = this.exits.get(stream);
        if (exit) {
          exited = true;
          code = exit.code;
          signal = exit.signal;
        }
        clearTimeout(timer);
        clearTimeout(forceClose);
        opts.signal?.removeEventListener('abort', stop);
        if (!pidSeen && head.length) err.push(head);
        const result: ExecResult = {
          argv,
          code: timedOut ? null : code,
          signal,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
          timedOut,
          durationMs: performance.now() - started,
        };
        if (!exited && !timedOut) {
          // No exit status: either the connection died under us, or the server withheld it.
          setImmediate(() => (this.connecting ? resolve(result) : reject(this.lost('connection closed', `running \`${argv.join(' ')}\``))));
          return;
        }
        resolve(result);
      });

      if (opts.timeoutMs !== undefined) timer = setTimeout(stop, opts.timeoutMs);
      if (opts.signal) {
        if (opts.signal.aborted) stop();
        else opts.signal.addEventListener('abort', stop, { once: true });
      }
      if (opts.stdin !== undefined) stream.end(opts.stdin);
      else stream.end();
    });
  }

  /** TERM the remote process group, then KILL it after `graceTicks` tenths of a second. */
  private async killGroup(client: SshClient, pid: number, graceTicks: number): Promise<void> {
    const release = await this.queue.acquire(true);
    try {
      const ch = await this.openExec(client, `exec sh -c ${quoteArg(KILLER)} baton ${quoteArgv([String(pid), String(graceTicks)])}`);
      await new Promise<void>((resolve) => {
        ch.on('close', () => resolve());
        ch.on('data', () => {});
        ch.stderr.on('data', () => {});
        ch.end();
      });
    } catch (e) {
      this.log(`${this.host}: could not kill timed-out process group ${pid}: ${(e as Error).message}`);
    } finally {
      release();
    }
  }
}
