/**
 * Facts the health checks read that no change step needs: every address of a node, free space,
 * whether a process runs. Pure argv builders and parsers (unit-tested on output captured on
 * Debian 12), then small readers. Nothing here changes a node.
 */
import type { StepContext } from '../steps/contract.js';

// ---------------------------------------------------------------- addresses

/** Every address on every interface, one per line (parsed by facts/net.ts' parseIpAddr). */
export const allAddrShowArgv = (): string[] => ['ip', '-o', 'addr', 'show'];

// ---------------------------------------------------------------- free space

/** POSIX output (one line per filesystem, no wrapping) in 1024-byte blocks. */
export const dfArgv = (path: string): string[] => ['df', '-P', '-k', '--', path];

export interface DiskFree {
  filesystem: string;
  mountPoint: string;
  totalKb: number;
  usedKb: number;
  availKb: number;
  /**
   * Free space as a share of what non-root users can use (avail / (used + avail)), the
   * complement of df's own Capacity column, so "10 % free" means df shows 90 %.
   */
  freePercent: number;
}

/**
 * `df -P -k PATH`:
 *   Filesystem     1024-blocks    Used Available Capacity Mounted on
 *   /dev/loop0           59365      14     54763       1% /srv/disk1
 * The mount point may contain spaces: it is everything after the Capacity column.
 */
export function parseDfP(stdout: string): DiskFree {
  const lines = stdout.split('\n').filter((l) => l.trim());
  const line = lines[lines.length - 1];
  const m = line ? /^(.*\S)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)%\s+(\/.*)$/.exec(line) : null;
  if (!m || lines.length < 2) throw new Error(`unexpected \`df -P\` output: ${JSON.stringify(stdout.slice(0, 300))}`);
  const [, filesystem, total, used, avail, , mountPoint] = m as unknown as string[];
  const usedKb = Number(used);
  const availKb = Number(avail);
  const usable = usedKb + availKb;
  return {
    filesystem: filesystem!,
    mountPoint: mountPoint!,
    totalKb: Number(total),
    usedKb,
    availKb,
    freePercent: usable === 0 ? 0 : Math.round((availKb / usable) * 1000) / 10,
  };
}

export async function readDiskFree(ctx: StepContext, path: string): Promise<DiskFree> {
  return parseDfP((await ctx.run(dfArgv(path))).stdout);
}

// ---------------------------------------------------------------- processes

/** pgrep matches the process name exactly (-x): `ganesha.nfsd` and not `ganesha.nfsd-helper`. */
export const pgrepArgv = (name: string): string[] => ['pgrep', '-x', '--', name];

/** pgrep prints one pid per line; exit 1 means none. */
export function parsePgrep(stdout: string): number[] {
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^\d+$/.test(l))
    .map(Number);
}

/**
 * The pid in a pid file, printed only if that process exists. Exit 3: no readable pid file;
 * exit 1: a pid whose process is gone (a stale pid file). Constant script, path as $1.
 */
export const PIDFILE_SCRIPT = 'read -r pid < "$1" 2>/dev/null || exit 3; case "$pid" in ""|*[!0-9]*) exit 3;; esac; [ -d "/proc/$pid" ] || { echo "$pid"; exit 1; }; echo "$pid"';
export const pidfileArgv = (pidfile: string): string[] => ['sh', '-c', PIDFILE_SCRIPT, 'baton-pidfile', pidfile];

export type PidfileState = { state: 'running'; pid: number } | { state: 'stale'; pid: number } | { state: 'missing' };

export function parsePidfile(stdout: string, code: number | null): PidfileState {
  const pid = Number(stdout.trim());
  if (code === 0 && pid > 0) return { state: 'running', pid };
  if (code === 1 && pid > 0) return { state: 'stale', pid };
  return { state: 'missing' };
}

/** `systemctl is-active UNIT`, or exit 127 where there is no systemd (the lab's nodes). */
export const SYSTEMCTL_SCRIPT = 'command -v systemctl >/dev/null 2>&1 || exit 127; exec systemctl is-active -- "$1"';
export const systemctlIsActiveArgv = (unit: string): string[] => ['sh', '-c', SYSTEMCTL_SCRIPT, 'baton-systemctl', unit];

/** is-active prints one word (active, inactive, failed, activating…); undefined: no systemctl, or systemd not running. */
export function parseIsActive(stdout: string, code: number | null): string | undefined {
  if (code === 127) return undefined;
  const word = stdout.trim().split('\n')[0]?.trim();
  // "System has not been booted with systemd" goes to stderr with an empty stdout.
  return word ? word : undefined;
}
