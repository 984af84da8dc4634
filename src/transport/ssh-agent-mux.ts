/**
 * Many commands over one SSH channel, through a small agent on the node (ssh-agent-script.ts).
 *
 * Why: each SSH exec costs a channel (open, confirm, exec request and reply, exit status, EOF,
 * close), a forked sshd session child, and the login shell and baton's sh wrapper before the
 * command itself: three processes and some 4–6 ms of CPU on the node per command, which a move
 * pays ~35 times per service group, on nodes that are at that moment busy moving storage. The
 * agent forks and execs the command itself: one process per command. Ansible's pipelining and
 * mitogen keep a process on the node for the same reason.
 *
 * Commands still start the moment they are sent and each result comes back the moment its
 * command ended (nothing waits for a batch). What one channel per command gave is kept: each
 * command in a session of its own (a timeout or an abort kills its whole process group, TERM
 * then KILL), stdout and stderr apart, an exit status or a signal; a result is complete when the
 * command exited and its output pipes closed. Commands with stdin keep their own channel.
 */
import { randomBytes } from 'node:crypto';
import { batchArgv, batchCommandsOf } from './batch.js';
import { quoteArg } from './quote.js';
import { AGENT_PYTHON, AGENT_SCRIPT } from './ssh-agent-script.js';

/** A fresh boundary: 128 random bits, so no command's output holds it by chance. */
export const newBoundary = (): string => `--baton-agent-${randomBytes(16).toString('hex')}--`;

/** The agent's interpreters: the system's `/usr/bin/python3` (a PATH python may be a wrapper such as pyenv's, adding its variables to every command), then `perl` from the login shell's PATH. Tests name missing ones. */
export interface AgentInterpreters {
  python?: string;
  perl?: string;
}

/**
 * The exec request that starts the agent: the Python one where the node has python3, else the
 * Perl one (ssh-agent-script.ts); exit 127 from the login shell means neither.
 */
export function agentCommand(boundary: string, using: AgentInterpreters = {}): string {
  const python = quoteArg(using.python ?? '/usr/bin/python3');
  const perl = quoteArg(using.perl ?? 'perl');
  const b = quoteArg(boundary);
  const script = quoteArg(AGENT_SCRIPT);
  return `command -v ${python} >/dev/null 2>&1 && exec ${python} -I -S -c ${quoteArg(AGENT_PYTHON)} ${perl} ${script} ${b}; exec ${perl} -e ${script} -- ${b}`;
}

const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');

/**
 * One run request: env words, `--`, argv words, each hex-encoded. A batch's `sh -c` script
 * (transport/batch.ts) goes as its commands (`Q`), run by the agent one after another: no shell
 * and no fork per command on the node, where each costs a move ~5 ms of the node's CPU
 * (docs/speed.md), and the same answer.
 */
export function runLine(id: number, argv: readonly string[], env: Record<string, string> = {}): string {
  const envWords = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const commands = batchCommandsOf(argv);
  // Only a script read back exactly as batchArgv writes it: anything else runs as it is.
  if (commands && commands.length > 0 && sameArgv(batchArgv(commands), argv)) {
    const words = [...envWords, '--', ...commands.flatMap((c) => [`${c.mayFail ? 'f' : 's'}${c.argv.length}`, ...c.argv])];
    return `Q ${id} ${words.map(hex).join(' ')}\n`;
  }
  return `R ${id} ${[...envWords, '--', ...argv].map(hex).join(' ')}\n`;
}

const sameArgv = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((w, i) => w === b[i]);

export const killLine = (id: number, graceTicks: number): string => `K ${id} ${graceTicks}\n`;

export interface AgentFrame {
  id: number;
  code: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
}

const SIGNALS: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 6: 'SIGABRT', 9: 'SIGKILL', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM' };

/** Splits the agent's stdout into its ready line and frames; a read may end anywhere in a frame. */
export class AgentParser {
  private buf: Buffer = Buffer.alloc(0);
  private readySeen = false;
  private readonly ready: Buffer;
  private readonly head: Buffer;
  private readonly errMark: Buffer;
  private readonly endMark: Buffer;

  constructor(
    boundary: string,
    private readonly onReady: () => void,
    private readonly onFrame: (f: AgentFrame) => void,
  ) {
    this.ready = Buffer.from(`${boundary} ready\n`);
    this.head = Buffer.from(`\n${boundary} `);
    this.errMark = Buffer.from(`\n${boundary} e\n`);
    this.endMark = Buffer.from(`\n${boundary} .\n`);
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    if (!this.readySeen) {
      const at = this.buf.indexOf(this.ready);
      if (at < 0) return;
      this.readySeen = true;
      this.buf = this.buf.subarray(at + this.ready.length);
      this.onReady();
    }
    for (;;) {
      const start = this.buf.indexOf(this.head);
      if (start < 0) return;
      const nl = this.buf.indexOf(0x0a, start + this.head.length);
      if (nl < 0) return;
      const err = this.buf.indexOf(this.errMark, nl + 1);
      if (err < 0) return;
      const end = this.buf.indexOf(this.endMark, err + this.errMark.length);
      if (end < 0) return;
      const [id, how, n] = this.buf.subarray(start + this.head.length, nl).toString('latin1').split(' ');
      const num = Number(n);
      const frame: AgentFrame = {
        id: Number(id),
        code: how === 'c' ? num : null,
        signal: how === 's' ? (SIGNALS[num] ?? `SIG${num}`) : null,
        stdout: this.buf.subarray(nl + 1, err),
        stderr: this.buf.subarray(err + this.errMark.length, end),
      };
      this.buf = this.buf.subarray(end + this.endMark.length);
      this.onFrame(frame);
    }
  }
}

/** The channel the agent runs on, as much of it as AgentSession needs. */
export interface AgentChannel {
  write(data: string): unknown;
  end(): unknown;
  close(): unknown;
  on(event: 'data', f: (b: Buffer) => void): unknown;
  on(event: 'close' | 'exit', f: () => void): unknown;
  stderr: { on(event: 'data', f: (b: Buffer) => void): unknown };
}

interface Pending {
  resolve: (f: AgentFrame) => void;
  reject: (e: unknown) => void;
  /** The callers still waiting for the result (more than one when a read was shared). */
  waiting: Set<number>;
}

/** One caller's command: `ticket` names the caller for kill and forget (a shared read has several). */
export interface AgentRun {
  id: number;
  ticket: number;
  done: Promise<AgentFrame>;
}

/** One agent on one channel: sends requests, routes frames back to their callers. */
export class AgentSession {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private dead: unknown;
  private stderrTail = '';
  /** Request lines not yet written: sent together once this turn of the event loop is over. */
  private outbox: string[] = [];
  /** Shared reads in the outbox, by argv and environment. */
  private sharedReads = new Map<string, { id: number; done: Promise<AgentFrame> }>();
  private nextTicket = 1;

  private constructor(private readonly channel: AgentChannel) {}

  /**
   * Starts on a channel already running `agentCommand(boundary)`. Resolves once the node printed
   * the ready line; rejects (with the agent's stderr: "perl: not found", say) when the channel
   * ends first. `onGone`: the agent can take no more commands (its channel closed).
   */
  static start(channel: AgentChannel, boundary: string, onGone: () => void, readyTimeoutMs = 15_000): Promise<AgentSession> {
    return new Promise((resolve, reject) => {
      const s = new AgentSession(channel);
      let ready = false;
      const timer = setTimeout(() => {
        if (ready) return;
        channel.close();
        reject(new Error(`the command agent did not start within ${readyTimeoutMs} ms`));
      }, readyTimeoutMs);
      const parser = new AgentParser(
        boundary,
        () => {
          ready = true;
          clearTimeout(timer);
          resolve(s);
        },
        (f) => s.settle(f),
      );
      channel.on('data', (b) => parser.push(b));
      channel.stderr.on('data', (b) => (s.stderrTail = (s.stderrTail + b.toString('utf8')).slice(-2000)));
      channel.on('close', () => {
        clearTimeout(timer);
        const why = new Error(`the command agent's channel closed${s.stderrTail.trim() ? `: ${s.stderrTail.trim()}` : ''}`);
        if (!ready) return reject(why);
        s.fail(why);
        onGone();
      });
    });
  }

  /**
   * Sends one command; `done` settles with its frame, or rejects if the agent goes away first.
   *
   * `shared`: the command only reads the node (a fact: its addresses, its storage view, Ganesha's
   * exports). A caller asking for the same shared read, with the same environment, while the first
   * request still waits in this turn's outbox gets that one's result: the command starts after
   * both asked, so what it reads is as fresh for one as for the other. The items of a play ask the
   * same questions of a node at the same moment; each answer costs the node a process or more.
   */
  run(argv: readonly string[], env?: Record<string, string>, shared = false): AgentRun {
    const ticket = this.nextTicket++;
    const key = shared ? JSON.stringify([argv, env ?? {}]) : undefined;
    const queued = key === undefined ? undefined : this.sharedReads.get(key);
    if (queued && this.pending.has(queued.id)) {
      this.pending.get(queued.id)!.waiting.add(ticket);
      return { ...queued, ticket };
    }
    const id = this.nextId++;
    if (this.dead !== undefined) return { id, ticket, done: Promise.reject(this.dead) };
    const done = new Promise<AgentFrame>((resolve, reject) => this.pending.set(id, { resolve, reject, waiting: new Set([ticket]) }));
    if (key !== undefined) this.sharedReads.set(key, { id, done });
    this.send(runLine(id, argv, env));
    return { id, ticket, done };
  }

  /** This caller gives up on the command: it is killed once no other caller waits for it. */
  kill(run: Pick<AgentRun, 'id' | 'ticket'>, graceTicks: number): void {
    const p = this.pending.get(run.id);
    if (this.dead !== undefined || !p || !this.lastOut(p, run.ticket)) return;
    this.send(killLine(run.id, graceTicks));
  }

  /**
   * Requests made in one turn of the event loop leave in one write: the items of a play resume
   * together (their results came in one read) and ask the node their next commands together, and
   * each write is an SSH packet to encrypt and a loopback or network send that costs more than the
   * bytes. Flushed on `setImmediate`, right after the I/O callbacks of this turn: no timer, so a
   * lone command leaves as soon as it did before.
   */
  private send(line: string): void {
    this.outbox.push(line);
    if (this.outbox.length === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const lines = this.outbox;
    this.outbox = [];
    this.sharedReads.clear();
    if (this.dead === undefined && lines.length > 0) this.channel.write(lines.join(''));
  }

  /** This caller stops waiting for the command (its result, if it ever comes, is dropped once nobody waits). */
  forget(run: Pick<AgentRun, 'id' | 'ticket'>): void {
    const p = this.pending.get(run.id);
    if (p && this.lastOut(p, run.ticket)) this.pending.delete(run.id);
  }

  /** Takes the caller off the command's waiting list: true when it was the last one on it. */
  private lastOut(p: Pending, ticket: number): boolean {
    p.waiting.delete(ticket);
    return p.waiting.size === 0;
  }

  private settle(f: AgentFrame): void {
    const p = this.pending.get(f.id);
    if (!p) return;
    this.pending.delete(f.id);
    p.resolve(f);
  }

  private fail(why: unknown): void {
    if (this.dead !== undefined) return;
    this.dead = why;
    for (const p of this.pending.values()) p.reject(why);
    this.pending.clear();
  }
}
