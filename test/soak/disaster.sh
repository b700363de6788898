#!/bin/sh
# The disaster test as a soak: 20 kill -9s per store, every other one deleting the state
# directory, and a bigger workload (run on purpose, not in `npm test`). DISASTER_SEED picks
# another schedule; DISASTER_KILLS / DISASTER_COMMANDS scale it.
set -eu
cd "$(dirname "$0")/../.."
sh scripts/ensure-deps.sh
sh scripts/ensure-test-servers.sh
export DISASTER_KILLS="${DISASTER_KILLS:-20}"
export DISASTER_COMMANDS="${DISASTER_COMMANDS:-2000}"
exec node_modules/.bin/node --test --test-timeout=3600000 test/e2e/disaster.test.ts
