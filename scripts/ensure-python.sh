#!/bin/sh
# Makes the official StateFun Python SDK (and the Prometheus client's parser, for the metrics
# test) available to the tests: a virtualenv at
# .tools/python (gitignored) with the exact packages of
# packages/sdk/test/interop/python/requirements.txt, installed from PyPI.
#
# Idempotent: does nothing when the venv was built from the same requirements and still
# imports the SDK. Progress goes to stderr; on failure it exits non-zero with the reason.
# Set EDDY_PYTHON to choose the interpreter (default: python3; needs Python >= 3.8).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/.tools/python"
requirements="$root/packages/sdk/test/interop/python/requirements.txt"
stamp="$venv/.eddy-requirements.txt"
python=${EDDY_PYTHON:-python3}

say() { echo "ensure-python: $*" >&2; }
fail() {
  say "error: $*"
  exit 1
}

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$requirements" "$stamp" &&
  "$venv/bin/python" -c "import statefun, prometheus_client" >/dev/null 2>&1; then
  exit 0
fi

command -v "$python" >/dev/null 2>&1 || fail "no '$python' on PATH; install Python 3.8 or newer (or set EDDY_PYTHON)"
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)' ||
  fail "$("$python" --version 2>&1) is too old; the StateFun Python SDK needs Python 3.8 or newer (set EDDY_PYTHON)"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import sys" >/dev/null 2>&1; then
  say "creating a virtualenv at .tools/python with $("$python" --version 2>&1)..."
  rm -rf "$venv"
  mkdir -p "$root/.tools"
  if ! "$python" -m venv "$venv" >&2; then
    # Debian/Ubuntu ship venv without ensurepip unless python3-venv is installed: build the
    # venv without pip and install into it with the system interpreter's own pip.
    say "venv could not install pip (no ensurepip); using $python's pip for the virtualenv..."
    rm -rf "$venv"
    "$python" -m venv --without-pip "$venv" >&2 || fail "could not create a virtualenv at $venv"
  fi
fi
# A venv built without ensurepip has no pip of its own: the system interpreter's pip installs into it.
if "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  pip_for_venv="$venv/bin/python -m pip"
else
  "$python" -m pip --version >/dev/null 2>&1 || fail "$python has neither ensurepip nor pip; install python3-venv (Debian) or pip"
  pip_for_venv="$python -m pip --python $venv/bin/python"
fi

say "installing $(grep -E '^[A-Za-z]' "$requirements" | sed 's/ .*//' | tr '\n' ' ')from PyPI..."
rm -f "$stamp"
# shellcheck disable=SC2086 # pip_for_venv is a command line
PIP_DISABLE_PIP_VERSION_CHECK=1 $pip_for_venv install --no-input --require-hashes \
  -r "$requirements" >&2 || fail "pip install -r $requirements failed (is PyPI reachable?)"
"$venv/bin/python" -c "import statefun, prometheus_client" >&2 || fail "the packages were installed but do not import"
cp "$requirements" "$stamp"
say "ready: $venv/bin/python"
