import { UnreachableError } from '../transport/transport.js';
import { CommandFailedError } from '../steps/contract.js';

/** One readable line (plus command output) for any error a step can throw. */
export function describeError(err: unknown): string {
  if (err instanceof CommandFailedError) {
    const out = err.result.stdout.trim();
    return out && !err.result.stderr.trim() ? `${err.message}\n${out}` : err.message;
  }
  if (err instanceof UnreachableError) return `${err.host} unreachable: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
