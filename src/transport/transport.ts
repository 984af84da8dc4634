/**
 * How a command reaches a node. Steps never build shell strings: they hand an argv
 * array to a transport, and the transport alone decides how to carry it (a local
 * spawn without a shell, or an SSH exec request with every argument quoted).
 */

export interface ExecOptions {
  /** Kill the command (on the node, not only our side of it) after this long. */
  timeoutMs?: number;
  /** Bytes fed to the command's standard input, then EOF. */
  stdin?: string | Buffer;
  /**
   * Extra environment for the command. Values are passed as data, never as code — but over SSH
   * they travel on the remote command line, visible in the node's process list while it starts:
   * never put a secret here; pass secrets on stdin.
   */
  env?: Record<string, string>;
  /** Aborts the command like a timeout does. */
  signal?: AbortSignal;
  /**
   * Run as another user through `sudo -n -u USER --` (become.ts): the play's or step's
   * `become: true` (+ `become_user`). Absent or false: as the connecting user, unless the
   * inventory's ansible_become says otherwise (it wins, as in Ansible).
   */
  become?: { user?: string } | false;
  /**
   * The command only reads the node (a fact). Callers asking for the same read in the same turn
   * of the event loop may get one execution's result (ssh-agent-mux.ts): it started after all of
   * them asked. Never for a command that changes anything, nor one with stdin.
   */
  shared?: boolean;
}

/** Every exit status: for a command whose status is the caller's to judge (okCodes). */
export const ANY_EXIT_STATUS: readonly number[] = Array.from({ length: 256 }, (_, i) => i);

export interface ExecResult {
  argv: string[];
  /** Exit status; null when the command was killed by a signal or timed out. */
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

export interface Transport {
  /** Inventory name of the node this transport reaches. */
  readonly host: string;
  readonly kind: 'local' | 'ssh';
  /** Open the connection. Idempotent: a second call reuses the first. */
  connect(): Promise<void>;
  /** Run one command. Resolves with its result whatever its exit status; rejects only when the node could not be reached. */
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Close the connection. Idempotent. */
  close(): Promise<void>;
}

/** The node could not be reached at all (DNS, TCP, auth, host key). */
export class UnreachableError extends Error {
  constructor(
    readonly host: string,
    message: string,
    /**
     * The host answered, only not as baton needs: it refused the connection, our login or our
     * key for it. It is up; a watcher must not take it for dead (and fence it).
     */
    readonly answered = false,
  ) {
    super(message);
    this.name = 'UnreachableError';
  }
}
