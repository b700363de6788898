// The fraud-detection example end to end, as `npm run fraud` runs it (examples/fraud-detection/
// local.ts): a real Apache Kafka 4.4 broker, the model in Python with the official StateFun
// SDK, Eddy in this process with the TypeScript functions, wired by the example's own
// module.yaml. Confirmed frauds go in first; every fraud counter and merchant scorer is asked
// (request-reply) until it answers with them; then the transactions. Kafka's own console
// consumer (read_committed) must find exactly the alerts the simulator expects, once each.
//
// The transaction manager given to the runtime is the example's, observed: it notes each
// transaction it has scored and let go of, which is how the test knows a transaction that
// raises no alert is done. What the functions leave in the store is read after Eddy stops.
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type AnyStatefulFunction, types } from "@eddy/sdk";
import {
  ALERT_THRESHOLD,
  ALERTS_TOPIC,
  FRAUD_COUNTER,
  FRAUD_WINDOW_MS,
  fraudCounter,
  MERCHANT_SCORER,
  merchantRisk,
  merchantScorer,
  TRANSACTION_MANAGER,
  transactionManager,
} from "../../examples/fraud-detection/functions.ts";
import {
  type AlertWatch,
  askFeature,
  confirmedFraudRecord,
  type LocalFraudDetection,
  type LocalOptions,
  startLocal,
  transactionRecord,
  waitForFraudCounts,
  watchAlerts,
} from "../../examples/fraud-detection/local.ts";
import { type Alert, AlertType, ScoreType, type Transaction } from "../../examples/fraud-detection/messages.ts";
import { score } from "../../examples/fraud-detection/model.ts";
import { DEFAULT_SIMULATION, expectedAlerts, fraudCounts, simulate } from "../../examples/fraud-detection/simulator.ts";
import type { Key } from "../../packages/runtime/src/core/kv.ts";
import type { StoredState } from "../../packages/runtime/src/core/records.ts";
import { LoggedStore } from "../../packages/runtime/src/store/logged-store.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
const MINUTE_MS = 60 * 1000;
/** Python's and model.ts's scores agree to within libm's last bits (examples/fraud-detection/model.test.ts). */
const SCORE_DIFFERENCE_MAX = 1e-12;
/** How long Kafka's console consumer waits for another alert before it concludes there are no more. */
const ORACLE_IDLE_MS = 2_000;
const WAIT_MS_MAX = 30_000;

/** fraud/transaction-manager as it is, adding to `finished` each transaction it has scored and let go of. */
function observedManager(finished: Set<string>): AnyStatefulFunction {
  return {
    ...transactionManager,
    handle(ctx, msg) {
      const held = ctx.storage.transaction !== undefined;
      const result = transactionManager.handle(ctx, msg);
      assert.equal(result, undefined, "the transaction manager answers without awaiting");
      if (held && msg.is(ScoreType) && ctx.storage.transaction === undefined) finished.add(ctx.self.id);
    },
  };
}

async function startObserved(t: TestContext, options: LocalOptions = {}) {
  const finished = new Set<string>();
  const local = await startLocal({
    ...options,
    functions: [observedManager(finished), fraudCounter, merchantScorer],
  });
  let watch: AlertWatch | undefined;
  t.after(async () => {
    await watch?.close();
    await local.stop();
  });
  watch = await watchAlerts(local.broker.bootstrap);
  return { local, finished, watch };
}

async function waitUntil(done: () => boolean, what: () => string, timeoutMs = WAIT_MS_MAX): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`after ${timeoutMs} ms: ${what()}`);
    await sleep(10);
  }
}

/** The alerts topic as Kafka's Java console consumer sees it (read_committed), every record checked for its key. */
async function committedAlerts(local: LocalFraudDetection): Promise<Alert[]> {
  const records = await local.broker.readCommitted(ALERTS_TOPIC, ORACLE_IDLE_MS);
  return records.map(({ key, value }) => {
    const alert = AlertType.deserialize(new TextEncoder().encode(value));
    assert.equal(key, alert.account, `the alert of ${alert.transactionId} is keyed by its account`);
    return alert;
  });
}

/** Exactly `expected`, each once (in any order), with the scores Python gave within SCORE_DIFFERENCE_MAX of model.ts's. */
function assertSameAlerts(actual: readonly Alert[], expected: readonly Alert[]): void {
  const ids = actual.map((alert) => alert.transactionId);
  const repeated = ids.filter((id, index) => ids.indexOf(id) !== index);
  assert.deepEqual(repeated, [], "no transaction alerts twice");
  assert.deepEqual(ids.toSorted(), expected.map((alert) => alert.transactionId).toSorted());
  const byId = new Map(actual.map((alert) => [alert.transactionId, alert]));
  for (const want of expected) {
    const got = byId.get(want.transactionId) as Alert;
    assert.deepEqual({ ...got, score: 0 }, { ...want, score: 0 });
    assert.ok(
      Math.abs(got.score - want.score) <= SCORE_DIFFERENCE_MAX,
      `${want.transactionId}: score ${got.score}, model.ts says ${want.score}`,
    );
  }
}

interface Stored {
  /** Per function type, per id: the stored states by name. */
  readonly states: Map<string, Map<string, Map<string, StoredState>>>;
  /** Delayed messages waiting. */
  readonly timers: number;
}

/** What the stopped runtime's store holds: every partition's states and timers (key layout: core/records.ts). */
async function readStore(stateDir: string): Promise<Stored> {
  const store = await LoggedStore.openReadOnly(stateDir);
  try {
    const states = new Map<string, Map<string, Map<string, StoredState>>>();
    let timers = 0;
    for (const { key, value } of store.scan(["p"])) {
      const [, , table, typename, id, name] = key as Key;
      if (table === "timer") timers++;
      if (table !== "state") continue;
      const ofType = states.get(String(typename)) ?? new Map<string, Map<string, StoredState>>();
      states.set(String(typename), ofType);
      const ofId = ofType.get(String(id)) ?? new Map<string, StoredState>();
      ofType.set(String(id), ofId);
      ofId.set(String(name), value as StoredState);
    }
    return { states, timers };
  } finally {
    await store.close();
  }
}

/** Each id of `typename` with its int state `name`. */
function intStates(stored: Stored, typename: string, name: string): Map<string, number> {
  const result = new Map<string, number>();
  for (const [id, states] of stored.states.get(typename) ?? []) {
    const state = states.get(name);
    if (state !== undefined) result.set(id, types.int.deserialize(state.value));
  }
  return result;
}

describe("fraud detection on Kafka (examples/fraud-detection)", { timeout: 120_000 }, () => {
  it("the default simulation puts exactly the expected alerts on the alerts topic, once each, and no transaction's state stays", async (t) => {
    const simulated = simulate(DEFAULT_SIMULATION);
    const expected = expectedAlerts(simulated);
    const counts = fraudCounts(simulated.confirmedFraud);
    const { local, finished, watch } = await startObserved(t);

    await local.produce(simulated.confirmedFraud.map(confirmedFraudRecord));
    await waitForFraudCounts(local.ingressUrl, counts, WAIT_MS_MAX);
    await local.produce(simulated.transactions.map(transactionRecord));
    await waitUntil(
      () => finished.size === simulated.transactions.length,
      () => `${finished.size} of ${simulated.transactions.length} transactions scored`,
    );
    assert.ok(
      await watch.waitFor(expected.length, WAIT_MS_MAX),
      `${watch.received.length} of ${expected.length} alerts arrived`,
    );

    const alerts = await committedAlerts(local);
    t.diagnostic(
      `${simulated.confirmedFraud.length} confirmed frauds, ${simulated.transactions.length} transactions: ${expected.length} alerts expected, ${alerts.length} on the topic`,
    );
    assertSameAlerts(alerts, expected);
    assertSameAlerts(
      watch.received.map(({ alert }) => alert),
      expected,
    );

    await local.stopRuntime();
    const stored = await readStore(local.stateDir);
    assert.equal(stored.states.get(TRANSACTION_MANAGER)?.size ?? 0, 0, "every finished transaction's state is deleted");
    assert.deepEqual(intStates(stored, FRAUD_COUNTER, "count"), counts.byAccount);
    assert.deepEqual(intStates(stored, MERCHANT_SCORER, "fraudCount"), counts.byMerchant);
    assert.equal(stored.timers, simulated.confirmedFraud.length, "each confirmed fraud waits 30 days to expire");
  });

  it("a confirmed fraud counts against its account for 30 days of the runtime's clock; then it no longer does, and the counter's state goes at zero", async (t) => {
    let now = Date.UTC(2026, 0, 1);
    const start = now;
    const { local, finished, watch } = await startObserved(t, { clock: () => now });
    const moveClockTo = (ms: number) => {
      now = ms;
      local.runtime.clockMoved();
    };
    const account = "acct-clock";
    const merchant = "merchant-clock";
    // Two frauds, ten days apart, both at the merchant (whose count stays for good): an amount
    // that alerts with both counted, and no longer with one or none.
    const amount = 2000;
    const risk = merchantRisk(2);
    assert.ok(score({ amount, accountFraudCount: 2, merchantRisk: risk }) > ALERT_THRESHOLD);
    assert.ok(score({ amount, accountFraudCount: 1, merchantRisk: risk }) <= ALERT_THRESHOLD);
    assert.ok(score({ amount, accountFraudCount: 0, merchantRisk: risk }) <= ALERT_THRESHOLD);
    const counted = (accountCount: number, merchantCount: number) =>
      waitForFraudCounts(
        local.ingressUrl,
        { byAccount: new Map([[account, accountCount]]), byMerchant: new Map([[merchant, merchantCount]]) },
        WAIT_MS_MAX,
      );
    const fraud = async (transactionId: string) => {
      await local.produce([confirmedFraudRecord({ account, merchant, transactionId, atMs: now })]);
    };
    const transact = async (id: string): Promise<Transaction> => {
      const transaction = { id, account, merchant, amount, atMs: now };
      await local.produce([transactionRecord(transaction)]);
      await waitUntil(
        () => finished.has(id),
        () => `${id} not scored`,
      );
      return transaction;
    };
    const alertOf = (transaction: Transaction, accountFraudCount: number): Alert => ({
      transactionId: transaction.id,
      account,
      merchant,
      amount,
      score: score({ amount, accountFraudCount, merchantRisk: risk }),
    });

    await fraud("past-1");
    await counted(1, 1);
    moveClockTo(start + 10 * DAY_MS);
    await fraud("past-2");
    await counted(2, 2);
    const both = await transact("tx-both-counted");

    moveClockTo(start + FRAUD_WINDOW_MS - MINUTE_MS);
    assert.equal((await askFeature(local.ingressUrl, FRAUD_COUNTER, account)).value, 2, "a minute early, both count");
    const stillBoth = await transact("tx-a-minute-before-30-days");

    moveClockTo(start + FRAUD_WINDOW_MS + MINUTE_MS);
    await counted(1, 2);
    await transact("tx-first-expired");

    moveClockTo(start + 10 * DAY_MS + FRAUD_WINDOW_MS + MINUTE_MS);
    await counted(0, 2);
    await transact("tx-both-expired");

    assert.ok(await watch.waitFor(2, WAIT_MS_MAX), `${watch.received.length} of 2 alerts arrived`);
    const alerts = await committedAlerts(local);
    assertSameAlerts(alerts, [alertOf(both, 2), alertOf(stillBoth, 2)]);
    assert.equal(watch.received.length, 2);

    await local.stopRuntime();
    const stored = await readStore(local.stateDir);
    assert.equal(
      stored.states.get(FRAUD_COUNTER)?.has(account) ?? false,
      false,
      "the counter's state is deleted at zero",
    );
    assert.equal(stored.timers, 0, "no expiry is left waiting");
    assert.deepEqual(intStates(stored, MERCHANT_SCORER, "fraudCount"), new Map([[merchant, 2]]));
    assert.equal(stored.states.get(TRANSACTION_MANAGER)?.size ?? 0, 0);
  });
});
