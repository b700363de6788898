#!/bin/sh
# The long version of test/e2e/cluster.test.ts: 50 kill -9s of a random worker of three while
# messages flow, half of them restarted on an empty state directory (run on purpose, not in
# `npm test`). CLUSTER_KILLS scales it.
set -eu
cd "$(dirname "$0")/../.."
sh scripts/ensure-deps.sh
sh scripts/ensure-kafka.sh
export CLUSTER_KILLS="${CLUSTER_KILLS:-50}"
exec node_modules/.bin/node --test --test-timeout=3600000 --test-name-pattern="kill -9 of a random worker" test/e2e/cluster.test.ts
