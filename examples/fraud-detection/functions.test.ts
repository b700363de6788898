import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeKafkaProducerRecord } from "@eddy/protocol";
import {
  type Address,
  type AnyStatefulFunction,
  type StateDeclarations,
  statefulFunction,
  type Type,
  types,
} from "@eddy/sdk";
import { type FunctionHarness, harness, type Input } from "@eddy/sdk/testing";
import {
  ALERT_THRESHOLD,
  ALERTS_EGRESS,
  FRAUD_WINDOW_MS,
  fraudCounter,
  MODEL,
  merchantRisk,
  merchantScorer,
  transactionManager,
} from "./functions.ts";
import {
  type Alert,
  ConfirmedFraudType,
  ExpireFraudType,
  FeatureQueryType,
  type FeatureReply,
  FeatureReplyType,
  FeatureVectorType,
  MerchantFraudType,
  ScoreType,
  type Transaction,
  TransactionType,
} from "./messages.ts";
import { score } from "./model.ts";
import { DEFAULT_SIMULATION, expectedAlerts, type Simulated, scoredTransactions, simulate } from "./simulator.ts";

const transaction: Transaction = { id: "tx-1", account: "acct-7", merchant: "merchant-3", amount: 250, atMs: 1_000 };
const counterOfAccount = { typename: "fraud/fraud-counter", id: "acct-7" };
const scorerOfMerchant = { typename: "fraud/merchant-scorer", id: "merchant-3" };
const modelOfTransaction = { typename: "fraud/model", id: "tx-1" };
const managerOfTransaction = { typename: "fraud/transaction-manager", id: "tx-1" };

function featureReply(reply: FeatureReply, from: { typename: string; id: string }) {
  return { value: reply, type: FeatureReplyType, caller: from };
}

/** A manager of `transaction` that has sent its vector to the model. */
async function managerAwaitingScore() {
  const manager = harness(transactionManager, { id: transaction.id });
  await manager.invoke({ value: transaction, type: TransactionType });
  await manager.invoke(featureReply({ feature: "accountFraudCount", value: 2 }, counterOfAccount));
  await manager.invoke(featureReply({ feature: "merchantRisk", value: 0.5 }, scorerOfMerchant));
  return manager;
}

/** Protobuf length-delimited field: key, varint length (< 128 here), bytes. */
function field(number: number, bytes: Uint8Array): number[] {
  assert.ok(bytes.length < 128);
  return [(number << 3) | 2, bytes.length, ...bytes];
}

describe("fraud/transaction-manager", () => {
  it("stores a transaction and asks the account's fraud counter and the merchant's scorer for their features", async () => {
    const manager = harness(transactionManager, { id: "tx-1" });
    const outcome = await manager.invoke({ value: transaction, type: TransactionType });
    assert.deepEqual(outcome.state, { transaction });
    assert.deepEqual(
      outcome.sent.map((sent) => [sent.target.toString(), sent.message.as(FeatureQueryType)]),
      [
        ["fraud/fraud-counter/acct-7", { transactionId: "tx-1" }],
        ["fraud/merchant-scorer/merchant-3", { transactionId: "tx-1" }],
      ],
    );
    assert.equal(outcome.egress.length, 0);
  });

  it("sends the feature vector to the model once both replies are in, whichever comes first, and only once", async () => {
    const manager = harness(transactionManager, { id: "tx-1" });
    await manager.invoke({ value: transaction, type: TransactionType });

    const first = await manager.invoke(featureReply({ feature: "merchantRisk", value: 0.375 }, scorerOfMerchant));
    assert.equal(first.sent.length, 0, "no vector with one feature missing");
    assert.deepEqual(first.state, { transaction, merchantRisk: 0.375 });

    const second = await manager.invoke(featureReply({ feature: "accountFraudCount", value: 3 }, counterOfAccount));
    assert.deepEqual(second.state, { transaction, accountFraudCount: 3, merchantRisk: 0.375 });
    assert.equal(second.sent.length, 1);
    assert.equal(second.sent[0]?.target.toString(), "fraud/model/tx-1");
    assert.deepEqual(second.sent[0]?.message.as(FeatureVectorType), {
      transactionId: "tx-1",
      account: "acct-7",
      merchant: "merchant-3",
      amount: 250,
      accountFraudCount: 3,
      merchantRisk: 0.375,
    });

    const repeated = await manager.invoke(featureReply({ feature: "accountFraudCount", value: 4 }, counterOfAccount));
    assert.equal(repeated.sent.length, 0, "a repeated reply sends no second vector");
    assert.deepEqual(repeated.changes, {}, "and changes nothing");
  });

  it("takes both replies in one batch, as a runtime delivers a backlog", async () => {
    const manager = harness(transactionManager, { id: "tx-1" });
    const outcome = await manager.invokeBatch([
      { value: transaction, type: TransactionType },
      featureReply({ feature: "accountFraudCount", value: 0 }, counterOfAccount),
      featureReply({ feature: "merchantRisk", value: 0 }, scorerOfMerchant),
    ]);
    assert.deepEqual(
      outcome.sent.map((sent) => sent.target.toString()),
      ["fraud/fraud-counter/acct-7", "fraud/merchant-scorer/merchant-3", "fraud/model/tx-1"],
    );
  });

  it("on a score above 0.8 writes the alert to the Kafka egress as a KafkaProducerRecord, then deletes its state", async () => {
    const manager = await managerAwaitingScore();
    const outcome = await manager.invoke({
      value: { transactionId: "tx-1", score: 0.93 },
      type: ScoreType,
      caller: modelOfTransaction,
    });

    assert.equal(outcome.egress.length, 1);
    const record = outcome.egress[0];
    assert.equal(record?.egress, "fraud/alerts");
    assert.equal(record.message.typename, "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord");
    const alertJson = '{"transactionId":"tx-1","account":"acct-7","merchant":"merchant-3","amount":250,"score":0.93}';
    const utf8 = (text: string) => new TextEncoder().encode(text);
    // KafkaProducerRecord {1: key, 2: value_bytes, 3: topic}, field by field.
    const expected = [...field(1, utf8("acct-7")), ...field(2, utf8(alertJson)), ...field(3, utf8("alerts"))];
    assert.deepEqual([...record.message.bytes], expected);
    const decoded = decodeKafkaProducerRecord(record.message.bytes);
    assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
    assert.equal(decoded.value.topic, "alerts");
    assert.equal(decoded.value.key, "acct-7");
    const alert: Alert = JSON.parse(new TextDecoder().decode(decoded.value.valueBytes));
    assert.deepEqual(alert, {
      transactionId: "tx-1",
      account: "acct-7",
      merchant: "merchant-3",
      amount: 250,
      score: 0.93,
    });

    assert.deepEqual(outcome.changes, {
      transaction: { kind: "deleted" },
      accountFraudCount: { kind: "deleted" },
      merchantRisk: { kind: "deleted" },
    });
    assert.deepEqual(manager.state, {});
    assert.equal(outcome.sent.length, 0);
  });

  it("on a score of 0.8 or below raises no alert and still finishes the transaction", async () => {
    for (const low of [ALERT_THRESHOLD, 0.42]) {
      const manager = await managerAwaitingScore();
      const outcome = await manager.invoke({
        value: { transactionId: "tx-1", score: low },
        type: ScoreType,
        caller: modelOfTransaction,
      });
      assert.equal(outcome.egress.length, 0, `score ${low}`);
      assert.deepEqual(manager.state, {}, `score ${low}`);
    }
  });

  it("ignores late replies, scores and repeated scores for a finished transaction", async () => {
    const manager = await managerAwaitingScore();
    await manager.invoke({
      value: { transactionId: "tx-1", score: 0.99 },
      type: ScoreType,
      caller: modelOfTransaction,
    });
    const lateMessages: Input[] = [
      featureReply({ feature: "accountFraudCount", value: 1 }, counterOfAccount),
      featureReply({ feature: "merchantRisk", value: 0.9 }, scorerOfMerchant),
      { value: { transactionId: "tx-1", score: 0.99 }, type: ScoreType, caller: modelOfTransaction },
    ];
    for (const late of lateMessages) {
      const outcome = await manager.invoke(late);
      assert.deepEqual(
        [outcome.sent.length, outcome.egress.length, outcome.changes],
        [0, 0, {}],
        `${late.type?.typename} after the score`,
      );
    }
    assert.deepEqual(manager.state, {});
  });

  it("ignores a score that comes before it has sent its feature vector", async () => {
    const manager = harness(transactionManager, { id: "tx-1" });
    await manager.invoke({ value: transaction, type: TransactionType });
    await manager.invoke(featureReply({ feature: "merchantRisk", value: 0.9 }, scorerOfMerchant));
    const stray = await manager.invoke({
      value: { transactionId: "tx-1", score: 0.99 },
      type: ScoreType,
      caller: modelOfTransaction,
    });
    assert.deepEqual([stray.egress.length, stray.changes], [0, {}]);
    assert.deepEqual(manager.state, { transaction, merchantRisk: 0.9 });
  });

  it("ignores a second delivery of a transaction it is scoring", async () => {
    const manager = harness(transactionManager, { id: "tx-1" });
    await manager.invoke({ value: transaction, type: TransactionType });
    const again = await manager.invoke({ value: transaction, type: TransactionType });
    assert.deepEqual([again.sent.length, again.changes], [0, {}]);
  });

  it("refuses a transaction delivered to another transaction's id, and a malformed one", async () => {
    await assert.rejects(
      harness(transactionManager, { id: "tx-2" }).invoke({ value: transaction, type: TransactionType }),
      /fraud\/transaction-manager\/tx-2: got transaction "tx-1"; the record key must be the transaction id/,
    );
    await assert.rejects(
      harness(transactionManager, { id: "tx-1" }).invoke({
        value: { ...transaction, amount: "250" } as unknown as Transaction,
        type: TransactionType,
      }),
      /fraud\/Transaction: field "amount" must be a finite number >= 0, got "250"/,
    );
  });

  it("refuses a message of a type it does not handle", async () => {
    await assert.rejects(
      harness(transactionManager).invoke({ value: "hello" }),
      /unexpected message of type io\.statefun\.types\/string; expected one of fraud\/Transaction, fraud\/FeatureReply, fraud\/Score/,
    );
  });
});

describe("fraud/fraud-counter", () => {
  const fraud = { account: "acct-7", merchant: "merchant-3", transactionId: "past-1", atMs: 500 };

  it("counts a confirmed fraud, expires it to itself in exactly 30 days, and tells the merchant's scorer", async () => {
    assert.equal(FRAUD_WINDOW_MS, 2_592_000_000);
    const counter = harness(fraudCounter, { id: "acct-7" });
    const outcome = await counter.invoke({ value: fraud, type: ConfirmedFraudType });
    assert.deepEqual(outcome.state, { count: 1 });
    assert.equal(outcome.delayed.length, 1);
    assert.equal(outcome.delayed[0]?.target.toString(), "fraud/fraud-counter/acct-7");
    assert.equal(outcome.delayed[0]?.delayMs, 30 * 24 * 60 * 60 * 1000);
    assert.deepEqual(outcome.delayed[0]?.message.as(ExpireFraudType), {});
    assert.equal(outcome.sent.length, 1);
    assert.equal(outcome.sent[0]?.target.toString(), "fraud/merchant-scorer/merchant-3");
    assert.deepEqual(outcome.sent[0]?.message.as(MerchantFraudType), { merchant: "merchant-3" });
  });

  it("answers a query with its count, 0 when it has none, to the asking manager", async () => {
    const counter = harness(fraudCounter, { id: "acct-7" });
    const ask = () =>
      counter.invoke({ value: { transactionId: "tx-1" }, type: FeatureQueryType, caller: managerOfTransaction });
    const before = await ask();
    assert.equal(before.sent[0]?.target.toString(), "fraud/transaction-manager/tx-1");
    assert.deepEqual(before.sent[0]?.message.as(FeatureReplyType), { feature: "accountFraudCount", value: 0 });
    assert.deepEqual(before.changes, {}, "a query writes nothing");

    await counter.invoke({ value: fraud, type: ConfirmedFraudType });
    await counter.invoke({ value: { ...fraud, transactionId: "past-2" }, type: ConfirmedFraudType });
    const after = await ask();
    assert.deepEqual(after.sent[0]?.message.as(FeatureReplyType), { feature: "accountFraudCount", value: 2 });
  });

  it("forgets each fraud when its expiry arrives, and deletes its state at zero", async () => {
    const counter = harness(fraudCounter, { id: "acct-7" });
    await counter.invoke({ value: fraud, type: ConfirmedFraudType });
    await counter.invoke({ value: { ...fraud, transactionId: "past-2" }, type: ConfirmedFraudType });
    const self = { typename: "fraud/fraud-counter", id: "acct-7" };
    const first = await counter.invoke({ value: {}, type: ExpireFraudType, caller: self });
    assert.deepEqual(first.changes, { count: { kind: "modified", value: 1 } });
    const second = await counter.invoke({ value: {}, type: ExpireFraudType, caller: self });
    assert.deepEqual(second.changes, { count: { kind: "deleted" } });
    assert.deepEqual(counter.state, {});
  });

  it("refuses a fraud delivered to another account's counter", async () => {
    await assert.rejects(
      harness(fraudCounter, { id: "acct-8" }).invoke({ value: fraud, type: ConfirmedFraudType }),
      /fraud\/fraud-counter\/acct-8: got a fraud on account "acct-7"; the record key must be the account/,
    );
  });
});

describe("fraud/merchant-scorer", () => {
  it("scores risk as count / (count + 5)", () => {
    assert.deepEqual([0, 1, 5, 15].map(merchantRisk), [0, 1 / 6, 0.5, 0.75]);
  });

  it("counts the frauds at its merchant for good and answers queries with the merchant's risk", async () => {
    const scorer = harness(merchantScorer, { id: "merchant-3" });
    const ask = async () => {
      const outcome = await scorer.invoke({
        value: { transactionId: "tx-1" },
        type: FeatureQueryType,
        caller: managerOfTransaction,
      });
      assert.equal(outcome.sent[0]?.target.toString(), "fraud/transaction-manager/tx-1");
      return outcome.sent[0]?.message.as(FeatureReplyType);
    };
    assert.deepEqual(await ask(), { feature: "merchantRisk", value: 0 });
    for (let fraud = 0; fraud < 3; fraud++) {
      const outcome = await scorer.invoke({
        value: { merchant: "merchant-3" },
        type: MerchantFraudType,
        caller: { typename: "fraud/fraud-counter", id: "acct-7" },
      });
      assert.deepEqual([outcome.delayed.length, outcome.sent.length], [0, 0], "nothing expires a merchant's frauds");
    }
    assert.deepEqual(scorer.state, { fraudCount: 3 });
    assert.deepEqual(await ask(), { feature: "merchantRisk", value: 3 / 8 });
  });

  it("refuses a fraud at another merchant", async () => {
    await assert.rejects(
      harness(merchantScorer, { id: "merchant-4" }).invoke({
        value: { merchant: "merchant-3" },
        type: MerchantFraudType,
      }),
      /fraud\/merchant-scorer\/merchant-4: got a fraud at merchant "merchant-3"/,
    );
  });
});

describe("the simulator", () => {
  it("gives the same records for the same seed and different ones for another seed", () => {
    assert.deepEqual(simulate({ seed: 7 }), simulate({ seed: 7 }));
    assert.notDeepEqual(simulate({ seed: 7 }).transactions, simulate({ seed: 8 }).transactions);
    assert.notDeepEqual(simulate({ seed: 7 }).confirmedFraud, simulate({ seed: 8 }).confirmedFraud);
  });

  it("gives what was asked for: counts, unique ids, amounts 1..5000, valid records, frauds before transactions", () => {
    const simulated = simulate({ seed: 3, accounts: 50, merchants: 20, transactions: 300, confirmedFraud: 40 });
    assert.equal(simulated.transactions.length, 300);
    assert.equal(simulated.confirmedFraud.length, 40);
    assert.equal(new Set(simulated.transactions.map((tx) => tx.id)).size, 300);
    for (const tx of simulated.transactions) {
      assert.ok(tx.amount >= 1 && tx.amount <= 5000, `amount ${tx.amount}`);
      assert.deepEqual(TransactionType.deserialize(TransactionType.serialize(tx)), tx);
    }
    for (const fraud of simulated.confirmedFraud) {
      assert.deepEqual(ConfirmedFraudType.deserialize(ConfirmedFraudType.serialize(fraud)), fraud);
    }
    const lastFraudMs = Math.max(...simulated.confirmedFraud.map((fraud) => fraud.atMs));
    assert.ok(simulated.transactions.every((tx) => tx.atMs > lastFraudMs));
  });

  it("makes 2-10% of the default run's transactions alert, none of them a near tie with the threshold", () => {
    const simulated = simulate(DEFAULT_SIMULATION);
    const alerts = expectedAlerts(simulated);
    const share = alerts.length / simulated.transactions.length;
    assert.ok(share >= 0.02 && share <= 0.1, `${alerts.length} alerts in ${simulated.transactions.length}`);
    // model.py may differ from model.ts in the last bits of a score: a near tie could flip.
    const ties = scoredTransactions(simulated).filter((scored) => Math.abs(scored.score - ALERT_THRESHOLD) < 1e-9);
    assert.deepEqual(ties, []);
  });

  it("refuses a seed that is not a 32-bit unsigned integer", () => {
    assert.throws(() => simulate({ seed: -1 }), /seed must be a 32-bit unsigned integer, got -1/);
  });
});

// --- the three functions together, with the model's formula standing in for model.py ---

/** fraud/model as model.py computes it, for running the whole flow without Python. */
const modelInTypeScript = statefulFunction({
  typename: MODEL,
  handle(ctx, msg) {
    const vector = msg.as(FeatureVectorType);
    ctx.reply({ transactionId: vector.transactionId, score: score(vector) }, ScoreType);
  },
});

interface Delivery {
  readonly target: { readonly typename: string; readonly id: string };
  readonly typename: string;
  readonly bytes: Uint8Array;
  readonly caller?: Address;
}

/**
 * Delivers every message, one at a time and in order, to a harness per address: a runtime
 * in miniature. Delayed messages (the frauds' expiry) are counted, not delivered.
 */
class Wiring {
  readonly #functions: Map<string, AnyStatefulFunction>;
  readonly #instances = new Map<string, FunctionHarness<StateDeclarations>>();
  readonly #queue: Delivery[] = [];
  readonly alerts: Alert[] = [];
  delayed = 0;

  constructor(functions: AnyStatefulFunction[]) {
    this.#functions = new Map(functions.map((fn) => [fn.typename, fn]));
  }

  /** A record from an ingress (no caller), and everything it sets off. */
  async ingest<T>(target: { typename: string; id: string }, value: T, type: Type<T>): Promise<void> {
    this.#queue.push({ target, typename: type.typename, bytes: type.serialize(value) });
    for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
      const instance = this.#instance(next.target);
      const outcome = await instance.invoke({
        value: next.bytes,
        type: types.bytes(next.typename),
        ...(next.caller === undefined ? {} : { caller: next.caller }),
      });
      for (const sent of outcome.sent) {
        const { typename, bytes } = sent.message;
        this.#queue.push({ target: sent.target, typename, bytes, caller: instance.self });
      }
      for (const record of outcome.egress) {
        assert.equal(record.egress, ALERTS_EGRESS);
        assert.ok(record.kafka !== undefined, "alerts are Kafka records");
        this.alerts.push(JSON.parse(new TextDecoder().decode(record.kafka.value)));
      }
      this.delayed += outcome.delayed.length;
    }
  }

  #instance(target: { typename: string; id: string }): FunctionHarness<StateDeclarations> {
    const key = `${target.typename}/${target.id}`;
    let instance = this.#instances.get(key);
    if (instance === undefined) {
      const fn = this.#functions.get(target.typename);
      assert.ok(fn !== undefined, `a message to ${key}, a function type nobody serves`);
      instance = harness(fn, { id: target.id });
      this.#instances.set(key, instance);
    }
    return instance;
  }
}

describe("the functions together", () => {
  it("raise exactly the simulator's expected alerts when all confirmed frauds come before the transactions", async () => {
    const simulated: Simulated = simulate(DEFAULT_SIMULATION);
    const wiring = new Wiring([transactionManager, fraudCounter, merchantScorer, modelInTypeScript]);
    for (const fraud of simulated.confirmedFraud) {
      await wiring.ingest({ typename: "fraud/fraud-counter", id: fraud.account }, fraud, ConfirmedFraudType);
    }
    assert.equal(wiring.delayed, simulated.confirmedFraud.length, "one expiry per confirmed fraud");
    for (const tx of simulated.transactions) {
      await wiring.ingest({ typename: "fraud/transaction-manager", id: tx.id }, tx, TransactionType);
    }
    const expected = expectedAlerts(simulated);
    assert.ok(expected.length > 0);
    assert.deepEqual(wiring.alerts, expected);
  });
});
