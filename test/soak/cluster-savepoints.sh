#!/bin/sh
# The savepoint soak (test/soak/cluster-savepoints.soak.ts): savepoints of a three-worker cluster
# asked again and again while tokens hop between workers and a random worker is killed with
# kill -9 every few rounds; then new clusters seeded from several of them must end with exactly
# the same totals (run on purpose, not in `npm test`). SOAK_SAVEPOINT_ROUNDS scales it (default
# 40), SOAK_SEED picks the victims.
set -eu
cd "$(dirname "$0")/../.."
sh scripts/ensure-deps.sh
sh scripts/ensure-kafka.sh
exec node_modules/.bin/node --test --test-timeout=3600000 test/soak/cluster-savepoints.soak.ts
