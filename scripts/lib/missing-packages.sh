# Sourced by the install scripts. `missing_packages P…` prints (space-separated, with a leading
# space) those of the Debian packages P… that dpkg does not have installed; nothing if all are.
missing_packages() {
  for p in "$@"; do
    dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || printf ' %s' "$p"
  done
}
