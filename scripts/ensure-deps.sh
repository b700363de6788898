#!/bin/sh
# Makes a fresh clone runnable: installs the npm packages (Node 24 among them, as the
# devDependency `node`, so node_modules/.bin/node is Node 24 for every npm script)
# when node_modules is missing or older than package-lock.json.
set -eu
cd "$(dirname "$0")/.."
stamp=node_modules/.package-lock.json
if [ ! -x node_modules/.bin/node ] || [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "eddy: installing npm packages (npm ci)..." >&2
  # --loglevel=error: on an older system Node, npm warns about every package that wants Node >= 22;
  # that is expected, since the scripts run on the Node 24 this installs.
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
