#!/bin/sh
# Install the Debian packages baton's namespace lab needs (`baton lab up`, test/lab/).
# A no-op, without apt-get update, when every package is already installed (any user: only
# installing needs root). `--list-missing` prints what is missing and installs nothing.
#
# The lab runs its own sshd, rpcbind, dbus, Ganesha and tgtd inside each node's namespaces; the
# coordinator tests start their own etcd members on loopback ports (test/helpers/etcd.ts).
# The same daemons started by the packages in the host's root namespace would get in the way
# (a host rpcbind owns /run/rpcbind.sock, which the lab's clients share with the host), so
# installing starts none of them (policy-rc.d), and those a package enables are stopped and
# disabled afterwards, unless they were already installed before this script ran.
set -eu

PACKAGES="iproute2 util-linux mount e2fsprogs openssh-client openssh-server iputils-arping iputils-ping
nfs-ganesha nfs-ganesha-vfs nfs-common rpcbind libnfs-utils tgt libiscsi-bin openipmi ipmitool tcpdump
dbus fence-agents psmisc procps etcd-server etcd-client"

. "$(dirname "$0")/lib/missing-packages.sh"
# shellcheck disable=SC2086 # word splitting of the package list is intended
missing=$(missing_packages $PACKAGES)

# --list-missing: print the missing packages (space-separated) and change nothing; any user.
if [ "${1:-}" = "--list-missing" ]; then
  echo "$missing"
  exit 0
fi
if [ -z "$missing" ]; then
  echo "install-lab-deps: all lab packages are installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-lab-deps: missing:$missing; needs root (apt-get install); run: sudo $0" >&2
  exit 1
fi
echo "install-lab-deps: installing:$missing"

# Keep invoke-rc.d from starting services during the install; put back whatever was there.
POLICY=/usr/sbin/policy-rc.d
saved=""
if [ -e "$POLICY" ]; then
  saved=$(mktemp)
  cp -p "$POLICY" "$saved"
fi
restore_policy() {
  if [ -n "$saved" ]; then mv -f "$saved" "$POLICY"; else rm -f "$POLICY"; fi
}
trap restore_policy EXIT
printf '#!/bin/sh\n# written by baton scripts/install-lab-deps.sh for the length of an install\nexit 101\n' > "$POLICY"
chmod 755 "$POLICY"

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -q --no-install-recommends $missing

# On a systemd host, units enabled by the new packages would start at the next boot (and
# socket units may already be listening): stop and disable the ones that interfere.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  for pkg_unit in \
    "nfs-ganesha nfs-ganesha.service" "nfs-ganesha nfs-ganesha-lock.service" \
    "rpcbind rpcbind.service" "rpcbind rpcbind.socket" \
    "nfs-common rpc-statd.service" "tgt tgt.service" "openipmi openipmi.service" \
    "openssh-server ssh.service" "openssh-server ssh.socket" "etcd-server etcd.service"; do
    pkg=${pkg_unit%% *}
    unit=${pkg_unit#* }
    case " $missing " in
      *" $pkg "*) systemctl disable --now "$unit" >/dev/null 2>&1 || true ;;
    esac
  done
fi

# Without systemd nothing should have started (policy-rc.d), but say so if something did in
# the host's own network namespace (lab nodes run the same daemons in theirs: those are fine).
host_net=$(readlink /proc/self/ns/net)
for d in ganesha.nfsd rpcbind tgtd; do
  for pid in $(pgrep -x "$d" 2>/dev/null); do
    if [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$host_net" ]; then
      echo "install-lab-deps: warning: $d (pid $pid) is running in the host namespace; the lab does not need it there" >&2
    fi
  done
done
echo "install-lab-deps: done"
