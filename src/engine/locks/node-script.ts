/**
 * The one shell script that takes, renews and gives back lock entries on a node. It is a
 * constant: every value (lock directory, run id, holder, lease, entry names) arrives as a
 * positional parameter, so no value is ever read as shell code. One invocation handles every
 * lock name of a run on that node, under an flock(1) on the directory's guard file, so checking
 * an entry and taking it over is one atomic step as seen by any other controller.
 *
 *   sh -c SCRIPT baton-lock OP DIR RUN HOLDER LEASE  ENTRY FROM  [ENTRY FROM]…
 *
 * An entry is a directory DIR/ENTRY (mkdir is atomic) holding `run` (the run id; its mtime is the
 * last renewal, judged against the node's own clock), `lease` (seconds) and `holder` (one line
 * of JSON for people). FROM is a run id whose entry may be taken over even if its lease still
 * runs (the controller saw that run's pid dead on its own machine), or empty.
 *
 * Output, one line per entry: TAKEN|OURS|RENEWED|RETAKEN|RELEASED|NOTOURS ENTRY, or
 * TOOKOVER|HELD ENTRY AGE LEASE HOLDER. `acquire` takes nothing if any entry is HELD.
 *
 * It runs four times per group moved (taken and given back on both nodes), so it starts few
 * processes: the entry's verdict and owner are read by the shell itself (no `$(...)` subshell,
 * no `head`), the clock is read only when an entry's age is needed, and the directory is created
 * only when missing. A take or give-back costs flock and mkdir or rm, not eight processes.
 */
export const NODE_LOCK_SCRIPT = `set -u
op=$1 base=$2 run=$3 holder=$4 lease=$5
shift 5
die() { printf 'baton-lock: %s\\n' "$1" >&2; exit "$2"; }
case $base in /*) ;; *) die "the lock directory must be an absolute path, got: $base" 64;; esac
case $lease in ''|*[!0-9]*) die "bad lease: $lease" 64;; esac
command -v flock >/dev/null 2>&1 || die "flock not found on this node (install util-linux)" 69
umask 077
[ -d "$base" ] || mkdir -p "$base" || die "cannot create the lock directory $base as $(id -un) (set baton_lock_dir to a directory this user may write, or ansible_become)" 73
exec 9>>"$base/.guard" || die "cannot open $base/.guard" 73
flock -w 10 9 || die "$base/.guard stayed locked for 10 s" 75
now=
clock() { [ -n "$now" ] || now=$(date +%s); }
valid() { case $1 in ''|.*|*[!A-Za-z0-9._-]*) die "bad entry name: $1" 64;; esac; }
owner() { o=; { IFS= read -r o <"$1/run"; } 2>/dev/null || :; }
age() { clock; m=$(stat -c %Y "$1/run" 2>/dev/null || stat -c %Y "$1" 2>/dev/null || echo "$now"); echo $((now - m)); }
leaseof() { l=$(head -c 20 "$1/lease" 2>/dev/null); case $l in ''|*[!0-9]*) echo "$lease";; *) echo "$l";; esac; }
info() { printf '%s %s ' "$(age "$1")" "$(leaseof "$1")"; head -n 1 "$1/holder" 2>/dev/null | head -c 4096 | tr -d '\\n'; echo; }
put() { printf '%s\\n' "$run" >"$1/run" && printf '%s\\n' "$lease" >"$1/lease" && printf '%s\\n' "$holder" >"$1/holder"; }
judge() {
  [ -d "$1" ] || { verdict=free; return; }
  owner "$1"
  if [ "$o" = "$run" ]; then verdict=ours; return; fi
  if [ -n "$2" ] && [ "$o" = "$2" ]; then verdict=from; return; fi
  clock
  if [ "$(age "$1")" -gt "$(leaseof "$1")" ]; then verdict=stale; return; fi
  verdict=held
}
acquire_check() {
  blocked=0
  while [ $# -ge 2 ]; do
    valid "$1"
    judge "$base/$1" "$2"
    if [ "$verdict" = held ]; then printf 'HELD %s ' "$1"; info "$base/$1"; blocked=1; fi
    shift 2
  done
  return $blocked
}
acquire_take() {
  while [ $# -ge 2 ]; do
    e=$base/$1
    judge "$e" "$2"
    case $verdict in
      free) { mkdir "$e" && put "$e"; } || die "cannot write $e" 73; printf 'TAKEN %s\\n' "$1";;
      ours) touch "$e/run" || die "cannot touch $e/run" 73; printf 'OURS %s\\n' "$1";;
      *) printf 'TOOKOVER %s ' "$1"; info "$e"; { rm -rf "$e" && mkdir "$e" && put "$e"; } || die "cannot write $e" 73;;
    esac
    shift 2
  done
}
renew() {
  while [ $# -ge 2 ]; do
    valid "$1"; e=$base/$1
    if [ -d "$e" ]; then owner "$e"; else o=; fi
    if [ ! -d "$e" ]; then { mkdir "$e" && put "$e"; } || die "cannot write $e" 73; printf 'RETAKEN %s\\n' "$1"
    elif [ "$o" = "$run" ]; then touch "$e/run" || die "cannot touch $e/run" 73; printf 'RENEWED %s\\n' "$1"
    else printf 'HELD %s ' "$1"; info "$e"; fi
    shift 2
  done
}
release() {
  while [ $# -ge 2 ]; do
    valid "$1"; e=$base/$1
    if [ -d "$e" ]; then owner "$e"; else o=; fi
    if [ -d "$e" ] && [ "$o" = "$run" ]; then rm -rf "$e" || die "cannot remove $e" 73; printf 'RELEASED %s\\n' "$1"
    else printf 'NOTOURS %s\\n' "$1"; fi
    shift 2
  done
}
case $op in
  acquire) if acquire_check "$@"; then acquire_take "$@"; fi;;
  renew) renew "$@";;
  release) release "$@";;
  *) die "unknown operation: $op" 64;;
esac
`;

export type NodeLockOp = 'acquire' | 'renew' | 'release';

export interface EntryArg {
  entry: string;
  /** Run id whose entry may be taken over at once (its pid is dead on this controller), or ''. */
  from: string;
}

export function nodeLockArgv(op: NodeLockOp, dir: string, runId: string, holderJson: string, leaseS: number, entries: EntryArg[]): string[] {
  return ['sh', '-c', NODE_LOCK_SCRIPT, 'baton-lock', op, dir, runId, holderJson, String(leaseS), ...entries.flatMap((e) => [e.entry, e.from])];
}

export interface EntryStatus {
  status: 'TAKEN' | 'OURS' | 'RENEWED' | 'RETAKEN' | 'RELEASED' | 'NOTOURS' | 'TOOKOVER' | 'HELD';
  entry: string;
  /** For TOOKOVER and HELD: seconds since the entry was last renewed, by the node's clock. */
  ageS?: number;
  leaseS?: number;
  /** For TOOKOVER and HELD: the holder line as found (JSON written by a controller). */
  holder?: string;
}

const LINE = /^(TAKEN|OURS|RENEWED|RETAKEN|RELEASED|NOTOURS|TOOKOVER|HELD) (\S+)(?: (-?\d+) (\d+) ?(.*))?$/;

export function parseNodeLockOutput(stdout: string): EntryStatus[] {
  const out: EntryStatus[] = [];
  for (const line of stdout.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const s: EntryStatus = { status: m[1] as EntryStatus['status'], entry: m[2]! };
    if (m[3] !== undefined) {
      s.ageS = Number(m[3]);
      s.leaseS = Number(m[4]);
      s.holder = m[5] ?? '';
    }
    out.push(s);
  }
  return out;
}
