#!/bin/sh
# The cluster soak with a broker lost under load (test/soak/cluster-brokers.soak.ts): the
# StateFun smoke workload on 3 workers against a 3-node Kafka cluster, 50 kill -9s of a random
# worker (half restarted on an empty state directory) and a broker killed with SIGKILL while
# messages flow, then restarted (run on purpose, not in `npm test`). SOAK_WORKER_KILLS,
# SOAK_BROKER_KILLS, SOAK_COMMANDS and SOAK_SEED scale it; SOAK_WORKER_KILLS=5 is a quick run.
set -eu
cd "$(dirname "$0")/../.."
sh scripts/ensure-deps.sh
sh scripts/ensure-kafka.sh
export SOAK_WORKER_KILLS="${SOAK_WORKER_KILLS:-50}"
export SOAK_BROKER_KILLS="${SOAK_BROKER_KILLS:-2}"
# The 3-node cluster itself first (a node lost under acks=all), then the soak on it.
exec node_modules/.bin/node --test --test-concurrency=1 --test-timeout=3600000 test/soak/kafka-cluster.soak.ts test/soak/cluster-brokers.soak.ts
