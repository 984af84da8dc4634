/**
 * Read-only facts about a node's NFS service: what NFS-Ganesha exports (D-Bus), what the kernel
 * server exports (exportfs -v, /var/lib/nfs/etab), statd's state number, the NFSv4 server scope
 * a server was configured with, and whether a path is a mount point.
 *
 * Pure argv builders and parsers first (unit-tested against output captured on Debian 12), then
 * small readers that run them through a StepContext. Nothing here changes a node.
 */
import type { StepContext } from '../steps/contract.js';
import { STATD_PID_FROM_FILE } from './nsm.js';

// ---------------------------------------------------------------- NFS-Ganesha over D-Bus

export const GANESHA_BUS_NAME = 'org.ganesha.nfsd';
export const GANESHA_EXPORT_MGR = '/org/ganesha/nfsd/ExportMgr';
export const GANESHA_ADMIN = '/org/ganesha/nfsd/admin';

/** Ganesha grace events (FACTS.md): the node released an IP, or took one over. */
export const GRACE_RELEASE_IP = 2;
export const GRACE_TAKE_IP = 5;

function dbusSend(object: string, method: string, ...args: string[]): string[] {
  return ['dbus-send', '--system', '--print-reply', `--dest=${GANESHA_BUS_NAME}`, object, method, ...args];
}

export const ganeshaShowExportsArgv = (): string[] => dbusSend(GANESHA_EXPORT_MGR, 'org.ganesha.nfsd.exportmgr.ShowExports');

/** AddExport(conf_path, selector): Ganesha reads the EXPORT block(s) the selector picks from the file. */
export const ganeshaAddExportArgv = (confPath: string, exportId: number): string[] =>
  dbusSend(GANESHA_EXPORT_MGR, 'org.ganesha.nfsd.exportmgr.AddExport', `string:${confPath}`, `string:EXPORT(Export_ID=${exportId})`);

export const ganeshaRemoveExportArgv = (exportId: number): string[] =>
  dbusSend(GANESHA_EXPORT_MGR, 'org.ganesha.nfsd.exportmgr.RemoveExport', `uint16:${exportId}`);

export const ganeshaGraceArgv = (event: number, ip: string): string[] =>
  dbusSend(GANESHA_ADMIN, 'org.ganesha.nfsd.admin.grace', `string:${event}:${ip}`);

export interface GaneshaExport {
  id: number;
  path: string;
}

/**
 * ShowExports' reply: a timestamp struct, then an array of structs whose first two members are
 * `uint16 ID` and `string "PATH"` (then per-protocol flags and a timestamp). Export 0 is the
 * NFSv4 pseudo root. Only a uint16 directly followed by a string starts an export.
 */
export function parseShowExports(stdout: string): GaneshaExport[] {
  const out: GaneshaExport[] = [];
  const lines = stdout.split('\n').map((l) => l.trim());
  for (let i = 0; i < lines.length - 1; i++) {
    const id = /^uint16 (\d+)$/.exec(lines[i]!);
    const path = /^string "(.*)"$/.exec(lines[i + 1]!);
    if (id && path) out.push({ id: Number(id[1]), path: path[1]! });
  }
  return out;
}

export interface AddExportReply {
  added: number;
  /** Config errors Ganesha reported while still adding the export (unknown parameters, …). */
  errors: string[];
}

/** `string "1 exports added"`, or `"1 exports added. Errors found:\nConfig File (…): …\n"`. */
export function parseAddExportReply(stdout: string): AddExportReply {
  const m = /string "(\d+) exports? added(?:\. Errors found:)?([\s\S]*?)"\s*$/.exec(stdout.trim());
  if (!m) return { added: 0, errors: [stdout.trim()].filter(Boolean) };
  const errors = m[2]!
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return { added: Number(m[1]), errors };
}

/** grace's reply: `boolean true` and a message ("Started grace period"). */
export function parseGraceReply(stdout: string): { ok: boolean; message: string } {
  const ok = /boolean true/.test(stdout);
  const msg = /string "([^"]*)"/.exec(stdout)?.[1] ?? '';
  return { ok, message: msg };
}

/**
 * The NFSv4 server scope Ganesha was configured with: `Server_Scope` in the `NFSv4 {}` block
 * (ganesha-core-config(8), 4.3; default ""). Ganesha offers no D-Bus call that reports it, so
 * the only run-time source is the config file the running daemon was started with.
 * Block and parameter names are case-insensitive in Ganesha's config; %include is not followed.
 */
export function parseGaneshaServerScope(conf: string): string {
  const text = conf.replace(/#[^\n]*/g, '');
  const block = /(?:^|[\s;}])NFSv4\s*\{([^}]*)\}/i.exec(text);
  if (!block) return '';
  const m = /(?:^|[\s;])Server_Scope\s*=\s*("([^"]*)"|[^;\s]+)\s*;/i.exec(block[1]!);
  if (!m) return '';
  return m[2] ?? m[1]!;
}

/** The `-f CONF` of a running ganesha.nfsd, from its NUL-separated /proc/PID/cmdline. */
export function ganeshaConfFromCmdline(cmdline: string): string {
  const argv = cmdline.split('\0').filter((a) => a !== '');
  const i = argv.indexOf('-f');
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : '/etc/ganesha/ganesha.conf';
}

/**
 * Prints the running Ganesha's cmdline (NUL-separated) and then, after a line `--conf--`, the
 * config file it was started with. Constant script: nothing from arguments is interpreted.
 */
export const GANESHA_RUNNING_CONF_SCRIPT = [
  // The shell's own read where it can: the export step asks this for every group it exports.
  'pid=; read -r pid 2>/dev/null < /run/ganesha/ganesha.pid',
  '[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || pid=$(pgrep -o -x ganesha.nfsd) || { echo "ganesha.nfsd is not running" >&2; exit 3; }',
  'cmd=$(tr "\\0" "\\n" < "/proc/$pid/cmdline") || exit 3',
  'conf=; f=',
  'while IFS= read -r a; do [ -n "$f" ] && { conf=$a; break; }; [ "$a" = -f ] && f=1; done <<EOF',
  '$cmd',
  'EOF',
  'conf=${conf:-/etc/ganesha/ganesha.conf}',
  'printf "%s\\n--conf--\\n" "$conf"',
  'while IFS= read -r l || [ -n "$l" ]; do printf "%s\\n" "$l"; done < "$conf"',
].join('\n');

export const ganeshaRunningConfArgv = (): string[] => ['sh', '-c', GANESHA_RUNNING_CONF_SCRIPT, 'baton-ganesha-conf'];

export function parseGaneshaRunningConf(stdout: string): { confPath: string; scope: string } {
  const sep = stdout.indexOf('\n--conf--\n');
  if (sep < 0) return { confPath: '', scope: '' };
  return { confPath: stdout.slice(0, sep).trim(), scope: parseGaneshaServerScope(stdout.slice(sep + '\n--conf--\n'.length)) };
}

// ---------------------------------------------------------------- kernel NFS server (nfs-utils)

export const exportfsExportArgv = (client: string, dir: string, options: string[]): string[] => [
  'exportfs',
  '-o',
  options.join(','),
  `${client}:${dir}`,
];
export const exportfsUnexportArgv = (client: string, dir: string): string[] => ['exportfs', '-u', `${client}:${dir}`];
export const exportfsFlushArgv = (): string[] => ['exportfs', '-f'];
export const exportfsListArgv = (): string[] => ['exportfs', '-v'];

/** The kernel NFS server's thread count: at 0 (nfsd stopped) it serves nothing, whatever etab lists. */
export const NFSD_THREADS = '/proc/fs/nfsd/threads';

/**
 * The thread count (a first line `threads=N`, N empty when it cannot be read) and `exportfs -v`,
 * in one exec: `exportfs -v` reads etab only, which still lists the exports of a stopped nfsd.
 */
export const kernelServerArgv = (threadsFile = NFSD_THREADS): string[] => [
  'sh',
  '-c',
  't=; { read -r t < "$1"; } 2>/dev/null; printf \'threads=%s\\n\' "$t"; exec exportfs -v',
  'baton-nfsd',
  threadsFile,
];

export interface KernelServer {
  /** False only when the thread count reads 0: the server is stopped. */
  up: boolean;
  exports: KernelExport[];
}

export function parseKernelServer(stdout: string): KernelServer {
  const nl = stdout.indexOf('\n');
  const first = nl < 0 ? stdout : stdout.slice(0, nl);
  const m = /^threads=(\S*)$/.exec(first);
  return { up: !m || m[1]!.trim() !== '0', exports: parseExportfsV(m ? stdout.slice(nl + 1) : stdout) };
}

/** Drop the locks nfsd holds on files under DIR (FACTS.md): DIR is data, the script is constant. */
export const unlockFilesystemArgv = (dir: string): string[] => [
  'sh',
  '-c',
  'printf "%s\\n" "$1" > /proc/fs/nfsd/unlock_filesystem',
  'baton-unlock',
  dir,
];

export interface KernelExport {
  path: string;
  client: string;
  options: string[];
}

/**
 * `exportfs -v`: `PATH<TAB>CLIENT(opts)`, PATH padded with spaces to 14 characters (nfs-utils'
 * `printf("%-14s\t%s")`), and when PATH is longer, PATH alone on a line and
 * `<TAB><TAB>CLIENT(opts)` on the next. PATH is printed as it is, spaces included; etab (the same
 * shape without padding) writes them as octal escapes (\040), undone here.
 */
export function parseExportfsV(stdout: string): KernelExport[] {
  const out: KernelExport[] = [];
  let pending: string | undefined;
  const clientOf = (text: string) => /^\s*([^\s(]*)\(([^)]*)\)\s*$/.exec(text);
  const push = (path: string, c: RegExpExecArray) => out.push({ path: unescapeOctal(path), client: c[1] || '*', options: c[2]!.split(',').filter(Boolean) });
  for (const raw of stdout.split('\n')) {
    if (!raw.trim()) continue;
    if (/^\s/.test(raw)) {
      // The client line of a long PATH printed on the line before.
      const c = clientOf(raw);
      if (c && pending !== undefined) push(pending, c);
      pending = undefined;
      continue;
    }
    const tab = raw.indexOf('\t');
    const c = tab > 0 ? clientOf(raw.slice(tab + 1)) : null;
    if (c) {
      // The padding is spaces after PATH: a PATH ending in spaces cannot be told from it.
      push(raw.slice(0, tab).replace(/ +$/, ''), c);
      pending = undefined;
    } else {
      pending = raw.replace(/\s+$/, '');
    }
  }
  return out;
}

/** /var/lib/nfs/etab: one `PATH<TAB>CLIENT(opts)` line per export (exportfs's own record). */
export const parseEtab = parseExportfsV;

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The value of an option such as `fsid=101` in an option list. */
export function optionValue(options: string[], name: string): string | undefined {
  for (let i = options.length - 1; i >= 0; i--) {
    const [k, v] = options[i]!.split('=', 2);
    if (k === name) return v ?? '';
  }
  return undefined;
}

/** `scope=` in the `[nfsd]` section of /etc/nfs.conf (rpc.nfsd --scope), or '' when unset. */
export function parseNfsConfScope(conf: string): string {
  let section = '';
  let scope = '';
  for (const raw of conf.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const sec = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (sec) {
      section = sec[1]!.toLowerCase();
      continue;
    }
    const kv = /^([\w-]+)\s*=\s*(.*)$/.exec(line);
    if (section === 'nfsd' && kv && kv[1]!.toLowerCase() === 'scope') scope = kv[2]!.trim();
  }
  return scope;
}

// ---------------------------------------------------------------- statd (NSM)

/** statd's `state` file holds one native-endian 32-bit integer (nfs-utils support/nsm). */
export const statdStateReadArgv = (stateDir: string): string[] => ['od', '-An', '-tu4', '-N4', `${stateDir}/state`];

export function parseStatdState(stdout: string): number | undefined {
  const m = /^\s*(\d+)\s*$/.exec(stdout);
  return m ? Number(m[1]) : undefined;
}

/**
 * The next state number after a failover: odd (statd: odd = up), larger than the previous one,
 * and at least the epoch seconds made odd — as CTDB does, so two nodes that never saw each other's
 * number still move forward. The state number is a signed 32-bit int on the wire.
 */
export function nextStatdState(previous: number | undefined, nowSeconds: number): number {
  const epoch = Math.floor(nowSeconds) | 1;
  const prev = previous ?? 0;
  const bumped = prev % 2 === 1 ? prev + 2 : prev + 1;
  const next = Math.max(epoch, bumped);
  if (next > 0x7fffffff) throw new Error(`statd state number ${next} would overflow a 32-bit int`);
  return next;
}

/**
 * Write N as statd does (4 bytes, the node's byte order) atomically: to a temporary file, then
 * renamed over `state`. The script is constant; the directory and the bytes (as printf escapes,
 * in both orders) are positional data. The node's byte order is the kernel's word
 * (/sys/kernel/cpu_byteorder), else found by reading 1 back through od. The shell's own printf
 * writes the bytes: this runs once per group moved.
 *   $1 the directory  $2 the bytes little-endian  $3 big-endian  $4 N (for whoever reads a trace)
 */
export const STATD_STATE_WRITE_SCRIPT = [
  'set -eu',
  'f="$1/state"',
  'o=; read -r o 2>/dev/null < /sys/kernel/cpu_byteorder || o=',
  'case "$o" in',
  '  little) b=$2 ;;',
  '  big) b=$3 ;;',
  '  *) if [ "$(printf \'\\001\\000\\000\\000\' | od -An -tu4 | tr -d " ")" = 1 ]; then b=$2; else b=$3; fi ;;',
  'esac',
  'printf "$b" > "$f.baton-new"',
  'mv -f "$f.baton-new" "$f"',
].join('\n');

/** N's four bytes as printf escapes (`\\ooo` each), least significant first or last. */
function byteEscapes(n: number, order: 'le' | 'be'): string {
  const bytes = [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
  return (order === 'le' ? bytes : bytes.reverse()).map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
}

export const statdStateWriteArgv = (stateDir: string, n: number): string[] => {
  const v = Math.trunc(n);
  return ['sh', '-c', STATD_STATE_WRITE_SCRIPT, 'baton-statd-state', stateDir, byteEscapes(v, 'le'), byteEscapes(v, 'be'), String(v)];
};

/** Make sure the state directory has statd's layout (`sm/`, `sm.bak/`). */
export const statdDirsArgv = (stateDir: string): string[] => ['mkdir', '-p', `${stateDir}/sm`, `${stateDir}/sm.bak`];

/** The pids of the node's rpc.statd: from its pid file, else by name. */
export const STATD_PIDS_SCRIPT =
  `${STATD_PID_FROM_FILE} && { echo "$p"; exit 0; }; pgrep -x rpc.statd || true`;
export const statdPidsArgv = (): string[] => ['sh', '-c', STATD_PIDS_SCRIPT, 'baton-statd-pids'];

export function parsePids(stdout: string): number[] {
  return [...new Set(stdout.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number))];
}

export const statdStartArgv = (stateDir: string, name: string): string[] => ['rpc.statd', '--no-notify', '-P', stateDir, '-n', name];

/** `-n`: sm-notify must not bump the state number again: restart_statd wrote the new one. */
export const smNotifyArgv = (stateDir: string, vip: string): string[] => ['sm-notify', '-f', '-n', '-v', vip, '-P', stateDir];

/**
 * One line of a statd monitor record (`sm/MON_NAME`), as statd writes it on SM_MON: the NLM
 * callback address as a hex int in memory order, prog, vers, proc, the 16-byte private cookie
 * in hex, then mon_name and my_name (nfs-utils support/nsm, nsm_create_monitor_record).
 */
export function statdMonitorRecord(r: { callbackIPv4: string; prog?: number; vers?: number; proc?: number; priv?: Buffer; monName: string; myName: string }): string {
  const octets = r.callbackIPv4.split('.').map(Number);
  // s_addr holds the bytes in network order; printed as a little-endian int they come reversed.
  const addr = octets.map((o) => o.toString(16).padStart(2, '0')).reverse().join('');
  const hex8 = (n: number) => n.toString(16).padStart(8, '0');
  const priv = (r.priv ?? Buffer.alloc(16)).toString('hex').padEnd(32, '0').slice(0, 32);
  return `${addr} ${hex8(r.prog ?? 100021)} ${hex8(r.vers ?? 4)} ${hex8(r.proc ?? 16)} ${priv} ${r.monName} ${r.myName}\n`;
}

// ---------------------------------------------------------------- mount points

export const findmntArgv = (path: string): string[] => ['findmnt', '-n', '-J', '-o', 'TARGET,SOURCE,FSTYPE', '-M', path];

export interface MountFact {
  target: string;
  source: string;
  fstype: string;
}

/** findmnt -J for one mount point; empty stdout (exit 1) means nothing is mounted there. */
export function parseFindmnt(stdout: string): MountFact | undefined {
  if (!stdout.trim()) return undefined;
  const j = JSON.parse(stdout) as { filesystems?: MountFact[] };
  const fs = j.filesystems?.[j.filesystems.length - 1];
  return fs ? { target: fs.target, source: fs.source, fstype: fs.fstype } : undefined;
}

// ---------------------------------------------------------------- readers

export async function readGaneshaExports(ctx: StepContext): Promise<GaneshaExport[]> {
  const r = await ctx.run(ganeshaShowExportsArgv(), { shared: true });
  return parseShowExports(r.stdout);
}

export async function readMountAt(ctx: StepContext, path: string): Promise<MountFact | undefined> {
  const r = await ctx.run(findmntArgv(path), { okCodes: [0, 1] });
  return r.code === 0 ? parseFindmnt(r.stdout) : undefined;
}

export async function readKernelExports(ctx: StepContext): Promise<KernelExport[]> {
  const r = await ctx.run(exportfsListArgv());
  return parseExportfsV(r.stdout);
}

/** The NFSv4 server scope the running Ganesha was started with ('' = unset: the hostname is used). */
export async function readGaneshaScope(ctx: StepContext): Promise<{ confPath: string; scope: string }> {
  return parseGaneshaRunningConf((await ctx.run(ganeshaRunningConfArgv(), { shared: true })).stdout);
}

/** The kernel server's scope from /etc/nfs.conf (what rpc.nfsd was or will be started with). */
export async function readKernelScope(ctx: StepContext): Promise<string> {
  const r = await ctx.run(['cat', '/etc/nfs.conf'], { okCodes: [0, 1] });
  return r.code === 0 ? parseNfsConfScope(r.stdout) : '';
}
