/**
 * Storage facts: read-only commands (argv builders), pure parsers of their output, and small
 * readers that run them. Steps import these; nothing here changes a node.
 */
import type { ExecOptions, ExecResult, Transport } from '../transport/transport.js';
import { CommandFailedError, type StepContext } from '../steps/contract.js';

/** Runs a read-only argv somewhere (this node through ctx.run, or a peer through its transport). */
/** Runs a command; `shared`: it only reads the node (ExecOptions.shared). */
export type Runner = (argv: string[], okCodes?: readonly number[], opts?: Pick<ExecOptions, 'shared'>) => Promise<ExecResult>;

export function runnerOf(ctx: StepContext): Runner {
  return (argv, okCodes, opts) => ctx.run(argv, { okCodes, ...opts });
}

export function runnerOfTransport(t: Transport): Runner {
  return async (argv, okCodes = [0], opts) => {
    const r = await t.exec(argv, { timeoutMs: 15_000, ...opts });
    if (r.timedOut || r.code === null || !okCodes.includes(r.code)) throw new CommandFailedError(t.host, r);
    return r;
  };
}

// ---------------------------------------------------------------- loop devices

/**
 * `losetup --list --json`: every loop device. `-j FILE` is not used because util-linux 2.38
 * ignores `--json` together with `-j` and prints its plain format.
 */
export const losetupListArgv = (): string[] => ['losetup', '--list', '--json', '--output', 'NAME,BACK-FILE'];

export interface LoopDevice {
  name: string;
  backFile: string;
}

/** Parses `losetup --list --json`; no loop device at all prints nothing. */
export function parseLosetupJson(stdout: string): LoopDevice[] {
  if (!stdout.trim()) return [];
  const doc = JSON.parse(stdout) as { loopdevices?: Array<Record<string, unknown>> };
  return (doc.loopdevices ?? []).map((d) => ({
    name: String(d['name'] ?? ''),
    // A backing file removed after attach reads "PATH (deleted)".
    backFile: String(d['back-file'] ?? '').replace(/ \(deleted\)$/, ''),
  }));
}

export const loopsOfImage = (devices: LoopDevice[], image: string): string[] =>
  devices.filter((d) => d.backFile === image).map((d) => d.name).sort();

/**
 * Loop devices are global kernel objects: nodes that share a kernel (containers, the lab's
 * namespace nodes) all see every one of them. So baton records which node attached a device in a
 * claim under /run, which is private to the node and gone at reboot, as a loop device is.
 */
export const LOOP_CLAIM_DIR = '/run/baton/loop';

/** Prints `DIR/loopN:IMAGE` per claim; exit 2 when the directory does not exist (nothing claimed). */
export const loopClaimsArgv = (): string[] => ['grep', '-r', '-H', '-s', '', LOOP_CLAIM_DIR];

export function parseLoopClaims(stdout: string): Array<{ device: string; image: string }> {
  const out: Array<{ device: string; image: string }> = [];
  for (const line of stdout.split('\n')) {
    // DIR/loopN:IMAGE: the claim's file name has no ':' or '/'; IMAGE may have both.
    const m = /^(.*?\/)?([^/:]+):(.+)$/.exec(line);
    if (m) out.push({ device: `/dev/${m[2]}`, image: m[3]! });
  }
  return out;
}

export interface LoopState {
  /** Devices backed by the image, as the kernel shows them (every node sharing the kernel). */
  attached: string[];
  /** Of those, the ones this node attached. */
  held: string[];
}

export function loopStateOf(view: StorageView, image: string): LoopState {
  const attached = loopsOfImage(view.loops, image);
  const held = view.claims.filter((c) => c.image === image && attached.includes(c.device)).map((c) => c.device).sort();
  return { attached, held };
}

export async function readLoopState(run: Runner, image: string): Promise<LoopState> {
  return loopStateOf(await readStorageView(run), image);
}

/**
 * Loop devices, this node's claims on them and its mount table, in one exec: a volume or mount
 * step needs all three, and each round trip to the node is time the clients wait. Sections are
 * separated by marker lines no section can contain (each claim line starts with its file's path;
 * mountinfo lines start with a number; loop lines with /dev/ or `{`).
 *
 * The loop devices and the claims are read by the shell itself (`read`, a builtin): sysfs's
 * `backing_file` of each loop device is what losetup prints, and the claims are one line each.
 * A volume or mount step reads this view before and after its change, on its node and its peers:
 * twelve times a group's move, and `losetup` and `grep` were two more processes each time, on a
 * machine whose parallel moves run out of CPU (docs/speed.md). Without sysfs, losetup's JSON.
 */
const STORAGE_VIEW = `if [ -d /sys/block ]; then
  for d in /sys/block/loop*; do
    [ -r "$d/loop/backing_file" ] && IFS= read -r f < "$d/loop/backing_file" && printf '/dev/%s %s\\n' "\${d##*/}" "$f"
  done
else
  losetup --list --json --output NAME,BACK-FILE || exit 3
fi
printf '\\n%s\\n' --baton--claims
for f in "$1"/*; do
  [ -f "$f" ] || continue
  while IFS= read -r l || [ -n "$l" ]; do printf '%s:%s\\n' "$f" "$l"; done < "$f"
done
printf '\\n%s\\n' --baton--mountinfo
exec cat /proc/self/mountinfo`;

export const storageViewArgv = (): string[] => ['sh', '-c', STORAGE_VIEW, 'baton-storage-view', LOOP_CLAIM_DIR];

export interface StorageView {
  loops: LoopDevice[];
  claims: Array<{ device: string; image: string }>;
  mounts: MountEntry[];
}

export function parseStorageView(stdout: string): StorageView {
  const [loops = '', rest = ''] = stdout.split(/^--baton--claims$/m, 2);
  const [claims = '', mountinfo = ''] = rest.split(/^--baton--mountinfo$/m, 2);
  return { loops: loops.trimStart().startsWith('{') ? parseLosetupJson(loops) : parseLoopLines(loops), claims: parseLoopClaims(claims), mounts: parseMountinfo(mountinfo) };
}

/** `/dev/loopN BACKING-FILE` per line, as the storage view reads sysfs. */
export function parseLoopLines(text: string): LoopDevice[] {
  const out: LoopDevice[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\/dev\/loop\d+) (.+)$/.exec(line);
    // A backing file removed after attach reads "PATH (deleted)", as losetup shows it.
    if (m) out.push({ name: m[1]!, backFile: m[2]!.replace(/ \(deleted\)$/, '') });
  }
  return out;
}

export async function readStorageView(run: Runner): Promise<StorageView> {
  return parseStorageView((await run(storageViewArgv(), [0], { shared: true })).stdout);
}

// ---------------------------------------------------------------- mounts

/** Read in the node's own mount namespace (the `cat` process is the "self"). */
export const mountinfoArgv = (): string[] => ['cat', '/proc/self/mountinfo'];

export interface MountEntry {
  id: number;
  parent: number;
  /** The filesystem's device number as mountinfo gives it, `major:minor` (`254:3` for an LV). */
  dev: string;
  root: string;
  mountPoint: string;
  /** Per-mount (VFS) options: rw, relatime, nosuid… */
  options: string;
  fstype: string;
  source: string;
  /** Per-superblock (filesystem) options: errors=remount-ro, data=ordered… */
  superOptions: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
export const unescapeMountinfo = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const f = line.split(' ');
    const dash = f.indexOf('-', 6);
    if (dash < 0 || f.length < dash + 4) continue;
    out.push({
      id: Number(f[0]),
      parent: Number(f[1]),
      dev: f[2]!,
      root: unescapeMountinfo(f[3]!),
      mountPoint: unescapeMountinfo(f[4]!),
      options: f[5]!,
      fstype: f[dash + 1]!,
      source: unescapeMountinfo(f[dash + 2]!),
      superOptions: f[dash + 3]!,
    });
  }
  return out;
}

/** The mount visible at exactly `path` (the last one mounted there wins, as the kernel shows it). */
export function mountAt(entries: MountEntry[], path: string): MountEntry | undefined {
  const p = normPath(path);
  return entries.filter((e) => e.mountPoint === p).at(-1);
}

/** Mount points strictly below `path`. */
export function submountsOf(entries: MountEntry[], path: string): string[] {
  const p = normPath(path);
  const prefix = p === '/' ? '/' : `${p}/`;
  return entries.filter((e) => e.mountPoint.startsWith(prefix) && e.mountPoint !== p).map((e) => e.mountPoint);
}

export const normPath = (p: string): string => (p.length > 1 ? p.replace(/\/+$/, '') : p);

export async function readMounts(run: Runner): Promise<MountEntry[]> {
  return parseMountinfo((await run(mountinfoArgv())).stdout);
}

// ---------------------------------------------------------------- users of a mount

/**
 * Who uses a mount, in one pass of one `find` over /proc (plus one grep of the maps): kernel
 * speed, no process started per pid as a shell loop would (135–320 ms measured on a lab node;
 * this: a few ms). It reads only symlinks and maps, never stats a path under the mount, so it
 * cannot hang on a dead NFS mount. Not `fuser -m`: it names every user of the *filesystem* the
 * path is on (the root filesystem's users for a path that is not a mount point, the users of
 * a bind mount elsewhere), and unmount would signal them. The path's glob characters are escaped
 * for -lname. Prints `PID<TAB>COMM<TAB>HOW` (cwd root exe fd map).
 * The scan reads the path from $P, so a change that unmounts can run it in its own exec.
 */
export const MOUNT_USERS_SCAN = `Q=$(printf '%s\\n' "$P" | sed 's/[][*?\\\\]/\\\\&/g')
{
  find /proc/[0-9]*/cwd /proc/[0-9]*/root /proc/[0-9]*/exe -maxdepth 0 \\( -lname "$Q" -o -lname "$Q/*" \\) -print 2>/dev/null
  find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 \\( -lname "$Q" -o -lname "$Q/*" \\) -print 2>/dev/null
  grep -lsF -e " $P/" /proc/[0-9]*/maps 2>/dev/null
} | awk -F/ -v self="$$" '
  { pid = $3; how = ($4 == "maps") ? "map" : $4
    if (pid == self) next
    if (!(pid in seen)) { order[n++] = pid; seen[pid] = "" }
    if (index(" " seen[pid] " ", " " how " ") == 0) seen[pid] = seen[pid] (seen[pid] == "" ? "" : " ") how }
  END { for (i = 0; i < n; i++) { p = order[i]; c = ""; f = "/proc/" p "/comm"
          if ((getline c < f) <= 0) c = ""; close(f); printf "%s\\t%s\\t%s\\n", p, c, seen[p] } }'
`;

const MOUNT_USERS = `P=$1
${MOUNT_USERS_SCAN}
exit 0`;

export const mountUsersArgv = (path: string): string[] => ['sh', '-c', MOUNT_USERS, 'baton', normPath(path)];

export interface MountUser {
  pid: number;
  comm: string;
  /** cwd, root, exe, fd, map */
  how: string[];
}

export function parseMountUsers(stdout: string): MountUser[] {
  const out: MountUser[] = [];
  for (const line of stdout.split('\n')) {
    const [pid, comm, how] = line.split('\t');
    if (!pid || !/^\d+$/.test(pid)) continue;
    out.push({ pid: Number(pid), comm: comm ?? '', how: (how ?? '').split(' ').filter(Boolean) });
  }
  return out;
}

// ---------------------------------------------------------------- ZFS

export const zpoolListArgv = (pool: string): string[] => ['zpool', 'list', '-H', '-o', 'name,health', pool];

/** `zpool list -H` prints NAME<TAB>HEALTH; a pool that is not imported exits 1 ("no such pool"). */
export function parseZpoolList(stdout: string, pool: string): { name: string; health: string } | undefined {
  for (const line of stdout.split('\n')) {
    const [name, health] = line.split('\t');
    if (name === pool) return { name, health: (health ?? '').trim() };
  }
  return undefined;
}

// ---------------------------------------------------------------- LVM

export const lvmSystemIdArgv = (): string[] => ['lvm', 'systemid'];

/** `lvm systemid` prints `  system ID: NAME` (empty name when none is set). */
export function parseLvmSystemId(stdout: string): string {
  const m = /system ID:\s*(\S*)/.exec(stdout);
  return m ? m[1]! : '';
}

/** `--foreign` so a VG owned by another host's system ID is listed too (it is what we take over). */
export const vgsArgv = (vg: string): string[] => ['vgs', '--noheadings', '--foreign', '--separator', '|', '-o', 'vg_name,vg_systemid', vg];
export const lvsArgv = (vg: string): string[] => ['lvs', '--noheadings', '--foreign', '--separator', '|', '-o', 'lv_name,lv_active', vg];

export function parseVgs(stdout: string, vg: string): { name: string; systemId: string } | undefined {
  for (const line of stdout.split('\n')) {
    const [name, sid] = line.trim().split('|');
    if (name === vg) return { name, systemId: (sid ?? '').trim() };
  }
  return undefined;
}

export function parseLvs(stdout: string): Array<{ name: string; active: boolean }> {
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [name, active] = l.split('|');
      return { name: name!.trim(), active: (active ?? '').trim() === 'active' };
    });
}

// ---------------------------------------------------------------- DRBD

export const drbdRoleArgv = (res: string): string[] => ['drbdadm', 'role', res];
export const drbdStatusArgv = (res: string): string[] => ['drbdadm', 'status', res];

export type DrbdRole = 'Primary' | 'Secondary' | 'Unknown';

/** DRBD 9 prints `Primary`; DRBD 8.4 prints `Primary/Secondary` (local role first). */
export function parseDrbdRole(stdout: string): DrbdRole {
  const first = stdout.trim().split(/[\s/]/)[0];
  return first === 'Primary' || first === 'Secondary' ? first : 'Unknown';
}

export interface DrbdPeer {
  name: string;
  /** Connection state; DRBD 9 shows it only when it is not Connected. */
  connection: string;
  role?: string;
}

export interface DrbdStatus {
  role: DrbdRole;
  disk?: string;
  peers: DrbdPeer[];
}

/**
 * `drbdadm status RES` (DRBD 9): `RES role:R`, `  disk:D`, then per peer `  NAME role:R` when
 * connected or `  NAME connection:StandAlone|Connecting…` when not.
 */
export function parseDrbdStatus(stdout: string): DrbdStatus {
  const lines = stdout.split('\n').filter((l) => l.trim());
  const kv = (s: string) => Object.fromEntries([...s.matchAll(/(\S+?):(\S+)/g)].map((m) => [m[1]!, m[2]!]));
  const head = kv(lines[0] ?? '');
  const status: DrbdStatus = { role: parseDrbdRole(head['role'] ?? ''), peers: [] };
  for (const line of lines.slice(1)) {
    const indent = line.length - line.trimStart().length;
    const words = line.trim().split(/\s+/);
    const fields = kv(line);
    if (indent === 2 && words[0]!.startsWith('disk:')) status.disk = fields['disk'];
    else if (indent === 2 && !words[0]!.includes(':')) {
      status.peers.push({ name: words[0]!, connection: fields['connection'] ?? 'Connected', role: fields['role'] });
    }
  }
  return status;
}

export const drbdConnected = (s: DrbdStatus): boolean => s.peers.length > 0 && s.peers.every((p) => p.connection === 'Connected');
