#!/bin/sh
# Everything `npm test` needs on a fresh Debian machine, run by npm before the tests
# (package.json "pretest"), by `.ci/run`, or by hand:
#   - the lab's packages (scripts/install-lab-deps.sh): sshd for the integration tests, the
#     NFS/iSCSI/IPMI daemons and tools for the lab tests;
#   - the report tools: headless Chromium opens `baton drill --html` reports and takes a
#     screenshot; xmllint validates `--junit` files against the XSDs in test/fixtures/;
#   - ansible-core's ansible-inventory and ansible-vault, what the inventory corpus is compared
#     with, live; sudo, what `become` runs on the lab's nodes; openssh-client's `ssh -G`;
#   - tmux for `--step` on a real terminal; bash and zsh to source the completion scripts;
#     man-db to render the man page;
#   - openssl, which makes the CA and certificates of the etcd TLS test (etcd-tls.test.ts).
# Fast and silent-ish when all is there (dpkg-query only, no apt-get update). As root it
# installs what is missing. Not root, it installs nothing and says loudly what is missing and
# which tests will fail for it, then lets the tests run (the unit tests need none of it).
# BATON_SKIP_TEST_DEPS=1 skips it all (a developer who installs by other means).
#
# --no-install-recommends is enough for headless use: --headless --screenshot and --dump-dom
# work without the recommended fonts/upower/notification packages (checked on Debian 12).
set -eu

PACKAGES="chromium libxml2-utils tmux zsh bash man-db ansible-core sudo openssh-client openssl"
here=$(dirname "$0")

if [ "${BATON_SKIP_TEST_DEPS:-}" = 1 ]; then
  echo "install-test-deps: skipped (BATON_SKIP_TEST_DEPS=1)"
  exit 0
fi

. "$here/lib/missing-packages.sh"
# shellcheck disable=SC2086 # word splitting of the package list is intended
missing=$(missing_packages $PACKAGES)
lab_missing=$(sh "$here/install-lab-deps.sh" --list-missing)

if [ -z "$missing" ] && [ -z "$lab_missing" ]; then
  echo "install-test-deps: all test and lab packages are installed"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  {
    echo "!!"
    echo "!! install-test-deps: NOT ROOT, so nothing was installed. Missing Debian packages:"
    [ -z "$lab_missing" ] || echo "!!   for the lab and SSH integration tests:$lab_missing"
    [ -z "$missing" ] || echo "!!   for the report, terminal, inventory and etcd TLS tests:$missing"
    echo "!! Those tests will FAIL. Install with: sudo sh $here/install-test-deps.sh"
    echo "!! (the lab tests also need root to run: sudo npm test)"
    echo "!!"
  } >&2
  exit 0
fi

if [ -n "$lab_missing" ]; then
  sh "$here/install-lab-deps.sh"
fi
if [ -n "$missing" ]; then
  echo "install-test-deps: installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  apt-get install -y -q --no-install-recommends $missing
fi
echo "install-test-deps: done"
