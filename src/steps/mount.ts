/**
 * `mount`: mount a filesystem, from a device or from the loop device of a shared image this
 * node imported (`source_image`). Already mounted as asked → nothing to do. Something else on
 * the mount point, or mounts below it, are refused rather than hidden. A peer that has the same
 * image mounted is split brain (two ext4 mounts of one disk corrupt it): `heldBy` tells the engine.
 *
 *   - mount: { source_image: /srv/san/disk1.img, path: /srv/disk1, fstype: ext4 }
 *   - mount: { source: /dev/sdb1, path: /export, fstype: xfs, options: noatime }
 */
import { CommandFailedError, StepRefusedError, batchedOk, type StepContext, type StepKind } from './contract.js';
import { runBatch } from '../transport/batch.js';
import {
  mountAt,
  MOUNT_USERS_SCAN,
  normPath,
  parseMountUsers,
  loopStateOf,
  parseStorageView,
  readMounts,
  readStorageView,
  runnerOf,
  storageViewArgv,
  submountsOf,
  type MountEntry,
  type MountUser,
  type StorageView,
} from '../facts/storage.js';
import { sleep } from '../util/limit.js';

export interface MountArgs {
  /** Device to mount, as given (a symlink such as /dev/disk/by-uuid/… is resolved). */
  source?: string;
  /** Mount the loop device this node attached for this image (import_volume provider loop). */
  source_image?: string;
  path: string;
  fstype: string;
  /** Comma-separated mount options, as for `mount -o`. */
  options?: string;
  /** Hosts checked for having the image mounted (default: every other inventory host). */
  peers?: string[];
}

/** What is mounted at a path, as recorded for a later mount back. */
export interface MountedFs {
  source: string;
  fstype: string;
  options: string;
  superOptions: string;
  /** Its device number, `major:minor` (absent in journals written before it was recorded). */
  dev?: string;
}

export interface MountObserved {
  /** The device `source`/`source_image` names on this node; null when the image is not attached here. */
  device: string | null;
  /** That device's number, `major:minor`, when it is a block device (absent for a loop image's). */
  deviceNumber?: string | null;
  mounted: MountedFs | null;
  submounts: string[];
}

export const toMounted = (e: MountEntry | undefined): MountedFs | null =>
  e ? { source: e.source, fstype: e.fstype, options: e.options, superOptions: e.superOptions, dev: e.dev } : null;

/**
 * Is this mount of that device? mount(8) records a device-mapper device under its /dev/mapper
 * name (an LV given as /dev/VG/LV, a multipath LUN), which is neither the path given nor what
 * `readlink -f` makes of it (/dev/dm-3): the device number says it, where both are known.
 */
export function mountedFrom(m: Pick<MountedFs, 'source' | 'dev'>, device: string | null, deviceNumber?: string | null): boolean {
  if (device !== null && m.source === device) return true;
  return Boolean(deviceNumber && m.dev && m.dev === deviceNumber);
}

export function mountArgv(source: string, path: string, fstype: string, options?: string): string[] {
  return ['mount', '-t', fstype, ...(options ? ['-o', options] : []), source, normPath(path)];
}

/**
 * Options that tell mount(8) or fstab what to do, or are the kernel's defaults, and never show in
 * mountinfo (`async`, `exec`, `suid`, `dev` are what their absence there means).
 */
const NOT_SHOWN = new Set(['defaults', 'auto', 'noauto', 'nofail', '_netdev', 'loop', 'user', 'nouser', 'users', 'owner', 'group', 'comment', 'x-systemd', 'async', 'exec', 'suid', 'dev']);

/** Every option asked for shows in the mount's per-mount or superblock options. */
export function optionsMatch(mounted: MountedFs, options?: string): boolean {
  if (!options) return true;
  const have = new Set([...mounted.options.split(','), ...mounted.superOptions.split(',')]);
  return options
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o && !NOT_SHOWN.has(o) && !o.startsWith('x-'))
    .every((o) => have.has(o));
}

function sourceLabel(a: MountArgs): string {
  return a.source_image ? `the loop device of ${a.source_image}` : String(a.source);
}

/**
 * The device a path names, symlinks resolved (/dev/disk/by-id/…, /dev/VG/LV), and its number
 * (`stat -L`, hex major and minor), in one exec. A path that is no block device (yet) keeps its
 * name and has no number.
 */
const RESOLVE_DEVICE = `d=$(readlink -f -- "$1") && [ -n "$d" ] || d=$1
printf '%s\\n' "$d"
[ -b "$d" ] && stat -L -c '%t:%T' -- "$d" 2>/dev/null
exit 0`;

export const resolveDeviceArgv = (source: string): string[] => ['sh', '-c', RESOLVE_DEVICE, 'baton-resolve-device', source];

/** `resolveDeviceArgv`'s output: the path and `major:minor` in decimal, as mountinfo writes it. */
export function parseResolvedDevice(stdout: string, source: string): { device: string; deviceNumber: string | null } {
  const [path, hex] = stdout.split('\n').map((l) => l.trim());
  const m = /^([0-9a-f]+):([0-9a-f]+)$/i.exec(hex ?? '');
  return { device: path || source, deviceNumber: m ? `${parseInt(m[1]!, 16)}:${parseInt(m[2]!, 16)}` : null };
}

async function resolveDevice(ctx: StepContext, a: MountArgs): Promise<{ device: string; deviceNumber: string | null }> {
  if (!a.source) throw new Error('mount needs `source` or `source_image`');
  // Only device paths are resolved; "tmpfs", "server:/path" and such stay as written.
  if (!a.source.startsWith('/')) return { device: a.source, deviceNumber: null };
  const r = await ctx.run(resolveDeviceArgv(a.source));
  return parseResolvedDevice(r.stdout, a.source);
}

/** The key mount and unmount share: what is mounted at this path, on whichever node. */
export const mountResource = (a: { path: string }): string => `mount ${normPath(a.path)}`;

export const mountStep: StepKind<MountArgs, MountObserved> = {
  kind: 'mount',
  inverse: 'unmount',
  role: 'takeover',
  defaultTimeoutS: 60,
  resource: mountResource,

  /**
   * A peer with the image mounted anywhere (a loop device of it under any path), or with the
   * same device mounted (a shared LUN has the same /dev/disk/by-id or /dev/VG/LV name on every
   * node). A source that is no device path (tmpfs, server:/path) is nobody's to hold.
   */
  async heldBy(peer, a) {
    if (a.source_image) {
      const view = await readStorageView(runnerOf(peer));
      const loops = loopStateOf(view, a.source_image);
      const mounts = view.mounts.filter((m) => loops.attached.includes(m.source));
      return mounts.length ? `has ${a.source_image} mounted (${mounts.map((m) => `${m.source} on ${m.mountPoint}`).join(', ')})` : null;
    }
    if (!a.source?.startsWith('/')) return null;
    const { device, deviceNumber } = await resolveDevice(peer, a);
    const mounts = (await readMounts(runnerOf(peer))).filter((m) => m.source === a.source || mountedFrom(m, device, deviceNumber));
    return mounts.length ? `has ${a.source} mounted (${mounts.map((m) => `${m.source} on ${m.mountPoint}`).join(', ')})` : null;
  },

  async probe(ctx, a) {
    // A loop image's device and the mount table come in one exec (one round trip).
    if (a.source_image) {
      const view = await readStorageView(runnerOf(ctx));
      const device = loopStateOf(view, a.source_image).held[0] ?? null;
      return { device, mounted: toMounted(mountAt(view.mounts, a.path)), submounts: submountsOf(view.mounts, a.path) };
    }
    const [{ device, deviceNumber }, mounts] = await Promise.all([resolveDevice(ctx, a), readMounts(runnerOf(ctx))]);
    return { device, deviceNumber, mounted: toMounted(mountAt(mounts, a.path)), submounts: submountsOf(mounts, a.path) };
  },

  satisfied(o, a) {
    return o.device !== null && o.mounted !== null && mountedFrom(o.mounted, o.device, o.deviceNumber) && o.mounted.fstype === a.fstype && optionsMatch(o.mounted, a.options);
  },

  async apply(ctx, a, before) {
    const path = normPath(a.path);
    if (before.device === null) {
      throw new Error(`on ${ctx.host.name}: ${a.source_image} is not attached on this node; import it first (import_volume provider: loop)`);
    }
    if (before.mounted) {
      const m = before.mounted;
      throw new StepRefusedError(
        `${ctx.host.name}: ${path} already has ${m.source} (${m.fstype}, ${m.options}) mounted, not ${before.device} (${a.fstype}${a.options ? `, ${a.options}` : ''}); ` +
          `unmount it first if it should be replaced`,
      );
    }
    if (before.submounts.length) {
      throw new StepRefusedError(`${ctx.host.name}: will not mount on ${path}: mounts below it would be hidden: ${before.submounts.join(', ')}`);
    }
    // The mount table (and the image's device) read back in the same exec: the step's probe.
    const mount = mountArgv(before.device, path, a.fstype, a.options);
    const [mounted, viewed] = await runBatch((argv, opts) => ctx.run(argv, opts), [{ argv: mount }, { argv: storageViewArgv() }]);
    batchedOk(ctx.host.name, mounted, mount);
    if (viewed?.code !== 0) return undefined;
    const view = parseStorageView(viewed.stdout);
    const device = a.source_image ? (loopStateOf(view, a.source_image).held[0] ?? null) : before.device;
    const number = a.source_image ? {} : { deviceNumber: before.deviceNumber ?? null };
    return { device, ...number, mounted: toMounted(mountAt(view.mounts, a.path)), submounts: submountsOf(view.mounts, a.path) };
  },

  // Mounted or not is what a revert must restore; the loop device's number may differ.
  restored: (before, now) => (before.mounted === null) === (now.mounted === null),

  async revert(ctx, a, before) {
    if (before.mounted) return;
    const mounts = await readMounts(runnerOf(ctx));
    const now = mountAt(mounts, a.path);
    // Only what this step mounted is taken away; an apply that never ran left nothing to undo.
    if (now && (before.device === null || mountedFrom(now, before.device, before.deviceNumber))) await unmountPath(ctx, a.path, { killTimeoutS: DEFAULT_KILL_TIMEOUT_S, killUsers: true });
  },

  describe(a) {
    const src = a.source_image ? 'LOOPDEV' : String(a.source);
    return { summary: `mount ${sourceLabel(a)} on ${a.path} (${a.fstype})`, commands: [mountArgv(src, a.path, a.fstype, a.options)] };
  },
};

// ---------------------------------------------------------------- unmount with busy users

export const DEFAULT_KILL_TIMEOUT_S = 10;

/** Processes an unmount never signals: the NFS servers and what keeps the node reachable. */
const NEVER_KILLED = new Set(['ganesha.nfsd', 'nfsd', 'sshd', 'dbus-daemon', 'systemd', 'init', 'tgtd']);
/**
 * One round of a busy-aware unmount, in one exec: signal the users named by the caller (if
 * any) and give them ~100 ms to exit; umount; when it is busy and AUTO is set, TERM the users
 * the scan finds at once (never PID 1 nor a NEVER-listed command: the NFS server, sshd…) and
 * try again — the common case, a daemon baton started on the mount (statd), then costs one
 * round trip, not three. Prints `signalled<TAB>PID<TAB>COMM<TAB>HOW` for what it TERMed, and
 * when still busy the users (exit 32, umount's own "busy" status). "not mounted" counts as done.
 */
const UMOUNT_TRY = `P=$1 SIG=$2 AUTO=$3 NEVER=$4
shift 4
try() {
  n=$1
  while :; do
    err=$(umount -- "$P" 2>&1) && return 0
    case $err in *"not mounted"*) return 0 ;; esac
    n=$((n - 1))
    case $err in *busy*) [ "$n" -gt 0 ] && { sleep 0.02; continue; }; return 32 ;; *) return 1 ;; esac
  done
}
users() {
${MOUNT_USERS_SCAN}
}
if [ -n "$SIG" ]; then kill -"$SIG" "$@" 2>/dev/null; try 6; else try 1; fi
rc=$?
if [ "$rc" -eq 32 ] && [ -n "$AUTO" ]; then
  v=$(users | awk -F '\\t' -v never=",$NEVER," '$1 != 1 && index(never, "," $2 ",") == 0 { print "signalled\\t" $0 }')
  if [ -n "$v" ]; then
    printf '%s\\n' "$v"
    kill -TERM $(printf '%s\\n' "$v" | cut -f2) 2>/dev/null
    try 6; rc=$?
  fi
fi
[ "$rc" -eq 0 ] && exit 0
printf '%s\\n' "$err" >&2
[ "$rc" -eq 1 ] && exit 1
users
exit 32`;

export const umountTryArgv = (path: string, signal?: { sig: string; pids: number[] }, auto?: { never: Iterable<string> }): string[] => [
  'sh',
  '-c',
  UMOUNT_TRY,
  'baton-umount',
  normPath(path),
  signal?.sig ?? '',
  auto ? '1' : '',
  auto ? [...auto.never].join(',') : '',
  ...(signal?.pids ?? []).map(String),
];

/** The `signalled` lines of a round: what the node TERMed on its own. */
export function parseSignalled(stdout: string): MountUser[] {
  return parseMountUsers(
    stdout
      .split('\n')
      .filter((l) => l.startsWith('signalled\t'))
      .map((l) => l.slice('signalled\t'.length))
      .join('\n'),
  );
}

/** Between tries of a busy unmount: a signalled process exits in milliseconds, and the clients are waiting. */
const POLL_MS = 20;

export interface UnmountOptions {
  /** Bound on the whole unmount, signals included. */
  killTimeoutS: number;
  /** Signal the processes that keep the mount busy (TERM, then KILL). */
  killUsers: boolean;
}

const usersText = (users: MountUser[]) => users.map((u) => `${u.pid} (${u.comm}: ${u.how.join(',')})`).join(', ');

/**
 * `umount PATH`; while it is busy, find the users by walking /proc, send TERM, then KILL after
 * half the time, and retry, for at most killTimeoutS. Then give up with the users named: a
 * failover that hangs on a busy mount is worse than one that stops and says why.
 */
export async function unmountPath(ctx: StepContext, path: string, o: UnmountOptions): Promise<{ killed: MountUser[]; view?: StorageView }> {
  const p = normPath(path);
  const t0 = Date.now();
  const budget = Math.min(o.killTimeoutS * 1000, ctx.timeoutMs ?? Infinity);
  const killAt = t0 + budget / 2;
  const signalled = new Map<number, MountUser>();
  let users: MountUser[] = [];
  let signal: { sig: 'TERM' | 'KILL'; pids: number[] } | undefined;
  for (;;) {
    // One exec per round: the signal decided last round (or, first, a TERM the node sends the
    // users it finds), the umount, and on "busy" the users.
    const first = signalled.size === 0 && !signal;
    // The node's storage view follows in the same exec: once the umount succeeds it is the
    // unmount step's probe, read after the change.
    const attempt = umountTryArgv(p, signal, first && o.killUsers ? { never: NEVER_KILLED } : undefined);
    const [tried, viewed] = await runBatch((argv, opts) => ctx.run(argv, opts), [{ argv: attempt, mayFail: true }, { argv: storageViewArgv() }]);
    const r = tried ?? batchedOk(ctx.host.name, tried, attempt);
    if (r.code !== 0 && r.code !== 32) throw new CommandFailedError(ctx.host.name, r);
    for (const u of parseSignalled(r.stdout)) {
      if (!signalled.has(u.pid)) ctx.log(`${p} is busy: sent TERM to ${usersText([u])}`);
      signalled.set(u.pid, u);
    }
    if (r.code === 0) return { killed: [...signalled.values()], ...(viewed?.code === 0 ? { view: parseStorageView(viewed.stdout) } : {}) };
    if (!/busy/i.test(r.stderr)) throw new CommandFailedError(ctx.host.name, r);
    users = parseMountUsers(r.stdout.split('\n').filter((l) => !l.startsWith('signalled\t')).join('\n')).filter((u) => u.pid !== 1);
    signal = undefined;
    if (!o.killUsers) {
      throw new Error(`on ${ctx.host.name}: ${p} is busy (\`umount ${p}\`: ${r.stderr.trim()}); used by: ${usersText(users) || 'no process found'}; kill_users is off: stop them and re-run`);
    }
    // The NFS server (and the node's own daemons) keep a mount busy while an export of it is
    // active: killing them would take every other export and client down with this one.
    const server = users.filter((u) => NEVER_KILLED.has(u.comm));
    if (server.length && server.length === users.length) {
      throw new Error(
        `on ${ctx.host.name}: ${p} is busy and held only by ${usersText(server)}, which baton never kills: ` +
          `an NFS export of ${p} is probably still active. Unexport it first (the unexport step comes before unmount); nothing was killed`,
      );
    }
    const now = Date.now();
    if (now - t0 >= budget) break;
    const sig = now >= killAt ? 'KILL' : 'TERM';
    const targets = users.filter((u) => !NEVER_KILLED.has(u.comm) && (sig === 'KILL' || !signalled.has(u.pid)));
    if (targets.length) {
      ctx.log(`${p} is busy: sending ${sig} to ${usersText(targets)}`);
      for (const u of targets) signalled.set(u.pid, u);
      signal = { sig, pids: targets.map((u) => u.pid) };
    } else {
      await sleep(POLL_MS);
    }
  }
  const held = users.length
    ? `still used by ${usersText(users)} after SIGTERM and SIGKILL (a process in uninterruptible sleep, e.g. on a dead NFS server, cannot be killed)`
    : 'no process holds it: look for mounts below it, an NFS export of it (unexport first), or a loop device backed by a file on it';
  throw new Error(`on ${ctx.host.name}: could not unmount ${p} within ${Math.round(budget / 1000)} s: ${held}; \`umount ${p}\` says "target is busy"`);
}
