/**
 * The keeper's wire format: newline-delimited JSON over a Unix socket, one object per line.
 * Requests carry an `id` chosen by the client; replies echo it. Ids are per client
 * connection, so two CLI runs talking to one keeper never mix their replies.
 */
import type { ConnectionSpec } from '../../inventory/model.js';
import type { ExecResult } from '../transport.js';

export interface ConnectOpts {
  acceptNewHostKeys?: boolean;
}

export type Request =
  | { id: number; op: 'connect'; spec: ConnectionSpec; opts?: ConnectOpts }
  | { id: number; op: 'exec'; spec: ConnectionSpec; opts?: ConnectOpts; argv: string[]; stdinB64?: string; env?: Record<string, string>; timeoutMs?: number; become?: { user?: string } | false }
  | { id: number; op: 'abort'; target: number }
  | { id: number; op: 'status' };

export interface WireError {
  name: string;
  host?: string;
  message: string;
}

export interface KeeperStatus {
  pid: number;
  idleSeconds: number;
  startedAt: number;
  lastRequestAt: number;
  connections: { host: string; target: string; connected: boolean; lastUsedAt: number }[];
}

export type Reply =
  | { id: number; ok: true }
  | { id: number; result: ExecResult }
  | { id: number; status: KeeperStatus }
  | { id: number; error: WireError };

/** Splits a byte stream into lines and hands each parsed object to `onMessage`. */
export function lineReader(onMessage: (msg: unknown) => void, onBad: (why: string) => void): (chunk: Buffer) => void {
  let buf = '';
  return (chunk) => {
    buf += chunk.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.trim()) continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        // The line may hold a password: say that it was bad, never what it said.
        onBad(`unparseable line of ${line.length} characters`);
        continue;
      }
      onMessage(msg);
    }
  };
}
