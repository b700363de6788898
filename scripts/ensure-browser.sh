#!/bin/sh
# Makes Debian's `chromium` available to the web UI's browser test (test/e2e/ui.test.ts drives
# it with playwright-core, which brings no browser of its own). Installed once with apt-get, so
# this needs root (or sudo without a password) on a Debian or Ubuntu machine; the test finds it
# at $EDDY_CHROMIUM or on PATH.
#
# Idempotent: does nothing when a chromium that starts is there already. Progress goes to
# stderr; on failure it exits non-zero with the reason.
set -eu

say() { echo "ensure-browser: $*" >&2; }
fail() {
  say "error: $*"
  exit 1
}

browser=${EDDY_CHROMIUM:-chromium}
# `--version` runs the binary: a half-installed package (missing shared libraries) is caught here.
if command -v "$browser" >/dev/null 2>&1 && "$browser" --version >/dev/null 2>&1; then
  exit 0
fi
[ -z "${EDDY_CHROMIUM:-}" ] || fail "EDDY_CHROMIUM=$EDDY_CHROMIUM does not run ('$EDDY_CHROMIUM --version' failed)"

command -v apt-get >/dev/null 2>&1 ||
  fail "no chromium on PATH and no apt-get to install it: install Chromium, or set EDDY_CHROMIUM to a Chromium or Chrome binary"
if [ "$(id -u)" = 0 ]; then
  as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root="sudo -n"
else
  fail "no chromium on PATH, and installing it with apt-get needs root: run 'apt-get install chromium' as root, or set EDDY_CHROMIUM"
fi

say "installing Debian's chromium with apt-get (once, ~30 s)..."
# An apt cache emptied (as container images do) knows no packages: update it first.
# shellcheck disable=SC2086 # as_root is a command prefix or nothing
$as_root apt-get update -qq >&2 || fail "apt-get update failed (is the Debian mirror reachable?)"
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends chromium >&2 ||
  fail "apt-get install chromium failed (output above)"
"$browser" --version >&2 || fail "chromium was installed but does not run"
say "ready: $(command -v "$browser")"
