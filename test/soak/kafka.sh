#!/bin/sh
# The long version of test/e2e/kafka-exactly-once.test.ts: 10 bursts of 5,000 records and
# 30 kills in each case (the second case also loses the disk on every other kill).
set -eu
cd "$(dirname "$0")/../.."
sh scripts/ensure-deps.sh
sh scripts/ensure-kafka.sh
export KAFKA_E2E_BURSTS="${KAFKA_E2E_BURSTS:-10}"
exec node_modules/.bin/node --test --test-timeout=3600000 test/e2e/kafka-exactly-once.test.ts
