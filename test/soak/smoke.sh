#!/bin/sh
# The smoke test as a soak: 50 kill -9s per variant and a bigger workload (run on purpose,
# not in `npm test`). SMOKE_SEED picks another schedule; SMOKE_KILLS / SMOKE_COMMANDS scale it.
set -eu
cd "$(dirname "$0")/../.."
sh scripts/ensure-deps.sh
export SMOKE_KILLS="${SMOKE_KILLS:-50}"
export SMOKE_COMMANDS="${SMOKE_COMMANDS:-4000}"
exec node_modules/.bin/node --test --test-timeout=3600000 test/e2e/smoke.test.ts
