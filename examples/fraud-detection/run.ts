// `npm run fraud`: the fraud-detection example end to end on this machine, in one command.
// Starts a Kafka broker, the Python model and Eddy (local.ts), sends the seeded simulation's
// confirmed frauds, waits until every fraud counter and merchant scorer has them, then sends
// the transactions at a steady pace and prints each alert as it arrives on the `alerts`
// topic. It stops by itself once the alerts it expects are in (or stop coming), prints
// alerts seen against expected, and exits 0 only when they are exactly the expected ones.
//
//   node examples/fraud-detection/run.ts [--transactions N] [--rate PER_SECOND] [--seed S]

import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import {
  confirmedFraudRecord,
  type LocalFraudDetection,
  startLocal,
  transactionRecord,
  waitForFraudCounts,
  watchAlerts,
} from "./local.ts";
import type { Alert } from "./messages.ts";
import { DEFAULT_SIMULATION, expectedAlerts, fraudCounts, simulate } from "./simulator.ts";

const USAGE = "usage: node examples/fraud-detection/run.ts [--transactions N] [--rate PER_SECOND] [--seed S]";
/** Transactions go to Kafka in small batches, this many per second by default: ~10 s for the default 1,000. */
const RATE_DEFAULT = 100;
const BATCHES_PER_SECOND = 10;
const FRAUD_PROCESSED_TIMEOUT_MS = 60_000;
/** After the last transaction, how long to wait for an alert before concluding none is coming. */
const ALERTS_QUIET_MS = 15_000;
/** Once the expected count is in: how long to keep looking for alerts that should not be there. */
const EXTRA_ALERTS_LOOK_MS = 2_000;

function wholeNumber(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === "" || !Number.isSafeInteger(value) || value < min) {
    process.stderr.write(`--${name}: "${text}" is not a whole number >= ${min}\n${USAGE}\n`);
    process.exit(2);
  }
  return value;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function describeAlert(alert: Alert): string {
  const amount = alert.amount.toFixed(2).padStart(8);
  return `ALERT  ${alert.transactionId}  ${alert.account}  at ${alert.merchant}  ${amount}  score ${alert.score.toFixed(3)}`;
}

const { values } = parseArgs({
  options: {
    transactions: { type: "string" },
    rate: { type: "string" },
    seed: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help === true) {
  say(USAGE);
  process.exit(0);
}
const options = {
  ...DEFAULT_SIMULATION,
  transactions: wholeNumber("transactions", values.transactions, DEFAULT_SIMULATION.transactions, 1),
  seed: wholeNumber("seed", values.seed, DEFAULT_SIMULATION.seed, 0),
};
const rate = wholeNumber("rate", values.rate, RATE_DEFAULT, 1);
const simulated = simulate(options);
const expected = expectedAlerts(simulated);
const counts = fraudCounts(simulated.confirmedFraud);

say("fraud-detection: starting Kafka, the Python model and Eddy...");
const startedAt = performance.now();
let local: LocalFraudDetection | undefined;
let interrupted = false;
// Ctrl-C: the terminal signals the broker and the model too; whatever is left is stopped here.
process.once("SIGINT", () => {
  interrupted = true;
  say("\nfraud-detection: interrupted, stopping");
  if (local !== undefined) void local.stop().finally(() => process.exit(130));
});

local = await startLocal({ log: (line) => process.stderr.write(`${line}\n`) });
if (interrupted) {
  await local.stop();
  process.exit(130);
}
let exitCode = 1;
try {
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
  say(`fraud-detection: up in ${seconds} s`);
  say(`  Kafka ${local.broker.bootstrap}   model.py ${local.model.url}   Eddy state ${local.stateDir}`);
  say(`  ask a function while it runs, e.g. the account of the first expected alert:`);
  const account = expected[0]?.account ?? simulated.confirmedFraud[0]?.account ?? "acct-1";
  say(
    `    node_modules/.bin/eddy send fraud/fraud-counter/${account} '{"transactionId":"ask"}' --type fraud/FeatureQuery --wait 5 --ingress ${local.ingressUrl}`,
  );
  say(
    `simulation: seed ${options.seed}, ${simulated.confirmedFraud.length} confirmed frauds, then ${simulated.transactions.length} transactions (${options.accounts} accounts, ${options.merchants} merchants): ${expected.length} alerts expected`,
  );

  const watch = await watchAlerts(local.broker.bootstrap, ({ alert }) => say(describeAlert(alert)));
  try {
    const fraudAt = performance.now();
    await local.produce(simulated.confirmedFraud.map(confirmedFraudRecord));
    await waitForFraudCounts(local.ingressUrl, counts, FRAUD_PROCESSED_TIMEOUT_MS);
    say(
      `confirmed-fraud: ${simulated.confirmedFraud.length} records in; ${counts.byAccount.size} fraud counters and ${counts.byMerchant.size} merchant scorers answer with them (${((performance.now() - fraudAt) / 1000).toFixed(1)} s)`,
    );

    say(`transactions: sending ${simulated.transactions.length} at ${rate}/s`);
    const transactionsAt = performance.now();
    const perBatch = Math.max(1, Math.round(rate / BATCHES_PER_SECOND));
    for (let start = 0; start < simulated.transactions.length && !interrupted; start += perBatch) {
      await local.produce(simulated.transactions.slice(start, start + perBatch).map(transactionRecord));
      const due = transactionsAt + ((start + perBatch) / rate) * 1000;
      await sleep(Math.max(0, due - performance.now()));
    }
    // Done once the expected number is in, or when alerts stop coming.
    for (;;) {
      const before = watch.received.length;
      if (await watch.waitFor(expected.length, ALERTS_QUIET_MS)) break;
      if (watch.received.length === before || interrupted) break;
    }
    await sleep(EXTRA_ALERTS_LOOK_MS);
    const elapsed = ((performance.now() - transactionsAt) / 1000).toFixed(1);

    const expectedIds = new Set(expected.map((alert) => alert.transactionId));
    const seenIds = watch.received.map(({ alert }) => alert.transactionId);
    const distinct = new Set(seenIds);
    const missing = [...expectedIds].filter((id) => !distinct.has(id));
    const unexpected = [...distinct].filter((id) => !expectedIds.has(id));
    const duplicates = seenIds.length - distinct.size;
    say(
      `summary: ${expected.length} alerts expected, ${seenIds.length} seen (${missing.length} missing, ${unexpected.length} unexpected, ${duplicates} duplicates) for ${simulated.transactions.length} transactions in ${elapsed} s`,
    );
    if (missing.length > 0) say(`  missing: ${missing.join(", ")}`);
    if (unexpected.length > 0) say(`  unexpected: ${unexpected.join(", ")}`);
    exitCode = missing.length === 0 && unexpected.length === 0 && duplicates === 0 ? 0 : 1;
  } finally {
    await watch.close();
  }
} finally {
  say("fraud-detection: stopping");
  await local.stop();
}
process.exit(interrupted ? 130 : exitCode);
