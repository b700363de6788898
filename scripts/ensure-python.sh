#!/bin/sh
# Makes the official StateFun Python SDK available to the interop tests: a virtualenv at
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
  "$venv/bin/python" -c "import statefun" >/dev/null 2>&1; then
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
    # Debian/Ubuntu ship venv without ensurepip unless python3-venv is installed. Build the
    # venv without pip and bootstrap pip from its wheel on PyPI (a wheel runs as a zip app).
    say "venv could not install pip (no ensurepip); bootstrapping pip from PyPI..."
    rm -rf "$venv"
    "$python" -m venv --without-pip "$venv" >&2 || fail "could not create a virtualenv at $venv"
    "$venv/bin/python" - "$venv" >&2 <<'EOF' || fail "could not bootstrap pip from PyPI"
import hashlib, os, subprocess, sys, urllib.request
name = "pip-24.0-py3-none-any.whl"
sha256 = "ba0d021a166865d2265246961bec0152ff124de910c5cc39f1156ce3fa7c69dc"
url = "https://files.pythonhosted.org/packages/8a/6a/19e9fe04fca059ccf770861c7d5721ab4c2aebc539889e97c7977528a53b/" + name
path = os.path.join(sys.argv[1], name)
with urllib.request.urlopen(url, timeout=120) as response:
    data = response.read()
if hashlib.sha256(data).hexdigest() != sha256:
    sys.exit(f"{url}: unexpected sha256 {hashlib.sha256(data).hexdigest()}")
with open(path, "wb") as out:
    out.write(data)
subprocess.run([sys.executable, os.path.join(path, "pip"), "install", "--no-index", "--quiet", path], check=True)
os.remove(path)
EOF
  fi
fi

say "installing $(grep -E '^[A-Za-z]' "$requirements" | sed 's/ .*//' | tr '\n' ' ')from PyPI..."
rm -f "$stamp"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install --no-input --require-hashes \
  -r "$requirements" >&2 || fail "pip install -r $requirements failed (is PyPI reachable?)"
"$venv/bin/python" -c "import statefun" >&2 || fail "the StateFun Python SDK was installed but does not import"
cp "$requirements" "$stamp"
say "ready: $venv/bin/python"
