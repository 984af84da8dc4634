#!/bin/sh
# Install the Debian packages the report and terminal tests need: headless Chromium opens
# `baton drill --html` reports and takes a screenshot; xmllint validates `--junit` files against
# the XSD in test/fixtures/junit.xsd; tmux gives `--step` a real terminal; bash and zsh source
# the completion scripts; man renders the man page. A fast no-op, without apt-get update, when
# all are installed.
#
# --no-install-recommends is enough for headless use: --headless --screenshot and --dump-dom
# work without the recommended fonts/upower/notification packages (checked on Debian 12).
set -eu

PACKAGES="chromium libxml2-utils tmux zsh bash man-db"

. "$(dirname "$0")/lib/missing-packages.sh"
# shellcheck disable=SC2086 # word splitting of the package list is intended
missing=$(missing_packages $PACKAGES)
if [ -z "$missing" ]; then
  echo "install-test-deps: all test packages are installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-test-deps: missing:$missing; needs root (apt-get install); run: sudo $0" >&2
  exit 1
fi
echo "install-test-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -q --no-install-recommends $missing
echo "install-test-deps: done"
