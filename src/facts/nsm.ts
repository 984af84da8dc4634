/**
 * NFSv3 lock holders per service group (docs/statd.md). A node runs one rpc.statd for every
 * group it serves, and NFS-Ganesha registers each lock holder with it by the client's address
 * only (SM_MON mon_name = the client's IP, my_name = the node's host name: nfs-ganesha
 * src/Protocols/NLM/nsm.c and src/SAL/nlm_owner.c, NSM_Use_Caller_Name off by default), so
 * nothing statd records says which VIP the client used. rpc.statd runs its HA callout (`-H`,
 * or `ha-callout` in [statd] of /etc/nfs.conf) with `add-client MON_NAME MY_NAME` right after it
 * wrote the record, while the holder's lock request (and so its TCP connection to the VIP) is
 * still open (nfs-utils utils/statd/monitor.c, sm_mon_1_svc), and `del-client` on SM_UNMON.
 * baton's callout looks up the node's end of the client's connections, and for each VIP that a
 * group holds on this node writes the record into that group's holder list on its volume. The
 * VIP → list map lives in the node's /run (symlinks), made by `track_lock_holders`.
 *
 * Pure argv builders, the callout's text and parsers here; nothing in this file changes a node.
 */
import { canonicalAddress, isIPv6 } from './net.js';

/** The node-local map: /run/baton/nsm/VIP -> the group's NSM state directory on its volume. */
export const NSM_MAP_DIR = '/run/baton/nsm';

/**
 * Where the callout is installed by default: on a path of the node's own (in the lab, /var/lib/nfs
 * is each node's; /run is often mounted noexec). `callout:` in the step chooses another.
 */
export const DEFAULT_NSM_CALLOUT = '/var/lib/nfs/baton-nsm-callout';

/**
 * An address as `ss` prints it (RFC 5952: IPv6 lower case, the longest run of zero groups as
 * `::`), so the callout can compare it with a connection's local address as text.
 */
export function ssForm(address: string): string {
  const a = address.trim();
  if (!isIPv6(a)) return a;
  const groups = canonicalAddress(a).split(':');
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** The map entry of a VIP. */
export function nsmLinkPath(vip: string): string {
  return `${NSM_MAP_DIR}/${ssForm(vip)}`;
}

/**
 * baton's rpc.statd HA callout. statd runs it as `CALLOUT EVENT MON_NAME MY_NAME` and waits for
 * it (its lock request waits too): it does a few small things and never fails statd.
 *
 * add-client: the client's addresses (MON_NAME itself, or resolved when Ganesha sends caller
 * names), then the local end of the node's established TCP connections from them: a local
 * address with a map entry is a group's VIP, and the record goes into that group's `sm/`. When
 * no connection tells (NLM over UDP), every group held here gets it: a holder notified once too
 * often reclaims nothing, a holder left out loses its locks.
 * del-client: Ganesha unmonitors a client once it holds no lock on this node at all, so the
 * record leaves every group held here.
 * The record has statd's own layout (address, prog, vers, proc, priv, mon_name, my_name), which
 * sm-notify reads; it is written aside and renamed in.
 */
export const NSM_CALLOUT_SCRIPT = `#!/bin/sh
# baton's rpc.statd HA callout (installed by baton's track_lock_holders step; do not edit: the
# step rewrites it). Records each NFSv3 lock holder in the holder list of the service group
# whose VIP it used; map: ${NSM_MAP_DIR}/VIP -> the group's NSM directory on its volume.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
map=${NSM_MAP_DIR}
event=$1 client=$2 me=$3
case $event in add-client|del-client) ;; *) exit 0 ;; esac
case $client in ''|.*|*/*|*[!A-Za-z0-9.:_-]*) exit 0 ;; esac
case $me in *[!A-Za-z0-9.:_-]*) me=baton ;; esac
[ -d "$map" ] || exit 0
unmap() { a=\${1#[}; a=\${a%]}; a=\${a#::ffff:}; printf '%s\\n' "$a"; }
case $client in
  *:*) addrs=$(unmap "$client") ;;
  *[!0-9.]*) addrs=$(getent ahosts "$client" 2>/dev/null | while read -r a _; do unmap "$a"; done | sort -u) ;;
  *) addrs=$client ;;
esac
groups=
if [ "$event" = add-client ]; then
  for l in $(ss -Htn state established 2>/dev/null | while read -r _ _ local peer _; do
      p=$(unmap "\${peer%:*}")
      for a in $addrs; do [ "$p" = "$a" ] && unmap "\${local%:*}"; done
    done | sort -u); do
    [ -L "$map/$l" ] && groups="$groups $l"
  done
fi
[ -n "$groups" ] || groups=$(ls -A "$map" 2>/dev/null)
for v in $groups; do
  d=$(readlink "$map/$v") || continue
  [ -d "$d/sm" ] || continue
  if [ "$event" = add-client ]; then
    printf '0100007f 000186b5 00000004 00000010 00000000000000000000000000000000 %s %s\\n' "$client" "$me" > "$d/.baton-$client.new" &&
      mv -f "$d/.baton-$client.new" "$d/sm/$client" &&
      logger -t baton-nsm-callout "$client holds NFSv3 locks through $v: recorded in $d/sm" 2>/dev/null
  else
    rm -f "$d/sm/$client"
  fi
done
exit 0
`;

// ---------------------------------------------------------------- the node's rpc.statd

/**
 * `p` = the pid in rpc.statd's pid file, and true, when that process lives (read by the shell
 * itself: the scripts below run once per group moved). The scripts fall back to `pgrep` on false.
 */
export const STATD_PID_FROM_FILE = 'p=; read -r p 2>/dev/null < /run/rpc.statd.pid; [ -n "$p" ] && kill -0 "$p" 2>/dev/null';

/**
 * The node's rpc.statd: `pid N`, `uid N` (whom it runs as: it drops root for the owner of its
 * sm/ directory, nfs-utils support/nsm/file.c), then one `arg X` line per argument; nothing when
 * none runs. Constant script.
 */
export const STATD_INFO_SCRIPT = [
  `${STATD_PID_FROM_FILE} || p=$(pgrep -o -x rpc.statd) || exit 0`,
  // The effective uid (Uid: real effective saved fs), as the owner of /proc/PID shows it.
  'u=0; while read -r k r e _; do [ "$k" = Uid: ] && { u=$e; break; }; done < "/proc/$p/status"',
  'printf "pid %s\\nuid %s\\n" "$p" "$u"',
  // Every argument but the program's name, each on an `arg` line (the shell's read: no sed).
  'tr "\\0" "\\n" < "/proc/$p/cmdline" | { read -r _; while IFS= read -r a; do printf "arg %s\\n" "$a"; done; }',
].join('\n');
export const statdInfoArgv = (): string[] => ['sh', '-c', STATD_INFO_SCRIPT, 'baton-statd-info'];

/**
 * What track_lock_holders needs to know of a node, in one process tree of its own (it runs for
 * every group landing on a node, twice: before and after): the VIP's map entry, the callout file's
 * text, the node's statd (STATD_INFO_SCRIPT), /etc/nfs.conf and whether the group's list exists.
 * Files are read with the shell's read, not cat. Sections as storage.ts's views: a marker line
 * each. Constant script:  $1 the map entry  $2 the callout's path  $3 the group's NSM directory
 */
export const NSM_VIEW_SCRIPT = [
  'rd() { [ -f "$1" ] && while IFS= read -r l || [ -n "$l" ]; do printf "%s\\n" "$l"; done < "$1"; }',
  "printf '\\n%s\\n' --baton-nsm-link",
  'readlink "$1" 2>/dev/null',
  "printf '\\n%s\\n' --baton-nsm-callout",
  'rd "$2"',
  "printf '\\n%s\\n' --baton-nsm-statd",
  `( ${STATD_INFO_SCRIPT}
)`,
  "printf '\\n%s\\n' --baton-nsm-conf",
  'rd /etc/nfs.conf',
  "printf '\\n%s\\n' --baton-nsm-dirs",
  '[ -d "$3/sm" ] && echo yes',
  'exit 0',
].join('\n');

export const nsmViewArgv = (vip: string, callout: string, stateDir: string): string[] => ['sh', '-c', NSM_VIEW_SCRIPT, 'baton-nsm-view', nsmLinkPath(vip), callout, stateDir];

export interface NsmView {
  /** The map entry's target, or null. */
  link: string | null;
  /** The callout file's text, or null when there is none. */
  callout: string | null;
  statd: StatdInfo | undefined;
  nfsConf: string;
  /** STATE_DIR/sm exists. */
  dirs: boolean;
}

/** Splits NSM_VIEW_SCRIPT's output; undefined when a section is missing (the script did not run whole). */
export function parseNsmView(stdout: string): NsmView | undefined {
  const parts = new Map<string, string>();
  const split = stdout.split(/^--baton-nsm-(link|callout|statd|conf|dirs)$/m);
  // Each section between the newline that ends its marker and the one printed before the next.
  for (let i = 1; i + 1 < split.length; i += 2) parts.set(split[i]!, split[i + 1]!.replace(/^\n/, '').replace(/\n$/, ''));
  if (parts.size < 5) return undefined;
  const link = parts.get('link')!.trim();
  // A file that exists prints at least one line; an empty callout file reads as none (not current either way).
  return { link: link || null, callout: parts.get('callout') || null, statd: parseStatdInfo(parts.get('statd')!), nfsConf: parts.get('conf')!, dirs: parts.get('dirs')!.trim() === 'yes' };
}

export interface StatdInfo {
  pid: number;
  uid: number;
  /** Its arguments, without the program name. */
  args: string[];
}

export function parseStatdInfo(stdout: string): StatdInfo | undefined {
  const pid = /^pid (\d+)$/m.exec(stdout);
  if (!pid) return undefined;
  const uid = /^uid (\d+)$/m.exec(stdout);
  const args = stdout
    .split('\n')
    .filter((l) => l.startsWith('arg '))
    .map((l) => l.slice(4));
  return { pid: Number(pid[1]), uid: uid ? Number(uid[1]) : 0, args };
}

/** `-H X`, `-HX`, `--ha-callout X`, `--ha-callout=X` on statd's command line. */
export function calloutFromArgs(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-H' || a === '--ha-callout') return args[i + 1];
    if (a.startsWith('--ha-callout=')) return a.slice('--ha-callout='.length);
    if (/^-H./.test(a)) return a.slice(2);
  }
  return undefined;
}

/** A `key = value` of one section of an nfs.conf (sections and keys are case-insensitive). */
export function nfsConfValue(conf: string, section: string, key: string): string | undefined {
  let current = '';
  let value: string | undefined;
  for (const raw of conf.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const sec = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (sec) {
      current = sec[1]!.toLowerCase();
      continue;
    }
    const kv = /^([\w-]+)\s*=\s*(.*)$/.exec(line);
    if (current === section.toLowerCase() && kv && kv[1]!.toLowerCase() === key.toLowerCase()) value = kv[2]!.trim();
  }
  return value;
}

/** The callout the running statd uses: its command line wins over /etc/nfs.conf. */
export function statdCallout(info: StatdInfo, nfsConf: string): string | undefined {
  return calloutFromArgs(info.args) ?? nfsConfValue(nfsConf, 'statd', 'ha-callout');
}

/**
 * The arguments to start the node's statd again with the callout: its own, less any callout
 * and less foreground/stderr modes (baton starts it in the background, where it daemonizes);
 * a `-P`/`-n` pair that pointed at `groupDir` is dropped too (the single-service restart_statd
 * left the statd on a group's volume: the node's statd belongs on the node).
 */
export function statdRestartArgv(args: string[], callout: string, groupDirs: string[]): string[] {
  const out: string[] = [];
  const onGroup = (() => {
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      const dir = a === '-P' || a === '--state-directory-path' ? args[i + 1] : a.startsWith('--state-directory-path=') ? a.split('=', 2)[1] : /^-P./.test(a) ? a.slice(2) : undefined;
      if (dir !== undefined && groupDirs.some((g) => g.replace(/\/+$/, '') === dir.replace(/\/+$/, ''))) return true;
    }
    return false;
  })();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const withValue = (short: string, long: string) => a === short || a === long;
    if (withValue('-H', '--ha-callout')) {
      i++;
      continue;
    }
    if (a.startsWith('--ha-callout=') || /^-H./.test(a)) continue;
    if (a === '-F' || a === '--foreground' || a === '-d' || a === '--no-syslog') continue;
    if (onGroup && (withValue('-P', '--state-directory-path') || withValue('-n', '--name'))) {
      i++;
      continue;
    }
    if (onGroup && (/^-[Pn]./.test(a) || a.startsWith('--state-directory-path=') || a.startsWith('--name='))) continue;
    out.push(a);
  }
  return ['rpc.statd', ...out, '-H', callout];
}

/** Serializes the groups landing on one node at once: one of them gives statd the callout. */
export const NSM_LOCK_FILE = '/run/baton/nsm.lock';

/**
 * Give the node's statd the callout, under a node-side lock: two groups landing on the node at
 * the same time both find it without, and only the first may restart it (the second finds the
 * callout on the command line and prints `already`). TERM, bounded wait, then the start argv.
 *   $1 seconds to wait for the old statd  $2 the callout path  $3… the start argv
 * Exit 3: the lock was not had in 10 s; 4: the old statd did not exit.
 */
export const STATD_WITH_CALLOUT_SCRIPT = `t=$1 callout=$2; shift 2
mkdir -p "$(dirname ${NSM_LOCK_FILE})"
exec 9>>${NSM_LOCK_FILE}
flock -w 10 9 || { echo "another baton step holds ${NSM_LOCK_FILE}" >&2; exit 3; }
${STATD_PID_FROM_FILE} || p=$(pgrep -o -x rpc.statd) || p=
if [ -n "$p" ]; then
  if tr '\\0' '\\n' < "/proc/$p/cmdline" | grep -qxF -- "$callout"; then echo already; exit 0; fi
  kill -TERM "$p" 2>/dev/null
  i=0
  while kill -0 "$p" 2>/dev/null; do
    [ "$i" -ge $((t * 20)) ] && { echo "rpc.statd (pid $p) did not exit within $t s of SIGTERM" >&2; exit 4; }
    sleep 0.05; i=$((i + 1))
  done
fi
"$@"`;

export const statdWithCalloutArgv = (timeoutS: number, callout: string, start: string[]): string[] => [
  'sh',
  '-c',
  STATD_WITH_CALLOUT_SCRIPT,
  'baton-statd-callout',
  String(Math.ceil(timeoutS)),
  callout,
  ...start,
];

// ---------------------------------------------------------------- a group's holder list

/** Install the callout (stdin: its text) aside, then rename it in: statd never runs half a file. */
export const INSTALL_CALLOUT_SCRIPT = 'set -e; mkdir -p "$(dirname "$1")"; t="$1.baton-new.$$"; cat > "$t"; chmod 0755 "$t"; mv -f "$t" "$1"';
export const installCalloutArgv = (path: string): string[] => ['sh', '-c', INSTALL_CALLOUT_SCRIPT, 'baton-nsm-callout', path];

/** The group's NSM directory, writable by the uid statd (and so its callout) runs as. */
export const groupDirArgv = (stateDir: string): string[] => ['mkdir', '-p', `${stateDir}/sm`, `${stateDir}/sm.bak`];
export const groupDirOwnerArgv = (stateDir: string, uid: number): string[] => ['chown', String(uid), stateDir, `${stateDir}/sm`, `${stateDir}/sm.bak`];

export const mapDirArgv = (): string[] => ['mkdir', '-p', NSM_MAP_DIR];
export const linkArgv = (vip: string, stateDir: string): string[] => ['ln', '-sfn', stateDir, nsmLinkPath(vip)];
export const unlinkArgv = (vip: string): string[] => ['rm', '-f', nsmLinkPath(vip)];
export const readLinkArgv = (vip: string): string[] => ['readlink', nsmLinkPath(vip)];

/** Where a group's notification is prepared on the node sending it. */
export const notifyScratchDir = (vip: string): string => `/run/baton/nsm-notify/${ssForm(vip)}`;

/**
 * Notify a group's holders without consuming its list: sm-notify moves every record it sends to
 * to sm.bak/ and deletes it once answered (nfs-utils), but the list must outlive the move — a
 * holder that also holds locks of a group already on the new node is monitored there already,
 * so its reclaim would not record it again. So sm-notify works on a copy in the node's /run.
 * Prints the number of holders; with none, sm-notify is not run at all (it would end a kernel
 * server's grace period for every group: `lift-grace`, FACTS.md). Constant script:
 *   $1 the group's NSM dir  $2 the scratch dir  $3… the sm-notify argv
 */
export const NOTIFY_COPY_SCRIPT = `set -eu
src=$1 scratch=$2; shift 2
[ ! -e "$scratch" ] || rm -rf "$scratch"; mkdir -p "$scratch/sm" "$scratch/sm.bak"
cp "$src/state" "$scratch/state"
n=0
for f in "$src"/sm/*; do [ -f "$f" ] || continue; cp "$f" "$scratch/sm/"; n=$((n + 1)); done
echo "$n"
[ "$n" -gt 0 ] || exit 0
exec "$@"`;

/**
 * sm-notify for a group: `-f` even though it already ran since boot, `-n` keeps the state number
 * the step wrote, `-v VIP` sends from the VIP with its name as mon_name (FACTS.md). Without `-d`
 * it forks and retries unreachable holders in the background.
 */
export const groupSmNotifyArgv = (scratch: string, vip: string): string[] => ['sm-notify', '-f', '-n', '-v', vip, '-P', scratch];

export const notifyCopyArgv = (stateDir: string, vip: string): string[] => {
  const scratch = notifyScratchDir(vip);
  return ['sh', '-c', NOTIFY_COPY_SCRIPT, 'baton-nsm-notify', stateDir, scratch, ...groupSmNotifyArgv(scratch, vip)];
};
