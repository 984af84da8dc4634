import os from 'node:os';
import path from 'node:path';

/** `$BATON_STATE_DIR`, else `$XDG_STATE_HOME/baton`, else `~/.local/state/baton` (XDG's default). */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BATON_STATE_DIR) return path.resolve(env.BATON_STATE_DIR);
  const xdg = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(xdg, 'baton');
}

export const runsDir = (dir = stateDir()) => path.join(dir, 'runs');
export const locksDir = (dir = stateDir()) => path.join(dir, 'locks');
