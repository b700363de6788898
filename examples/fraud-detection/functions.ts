// Fraud detection: each transaction gets its own `fraud/transaction-manager`, which
// gathers two features (the account's recent confirmed frauds from `fraud/fraud-counter`,
// the merchant's risk from `fraud/merchant-scorer`), has `fraud/model` (Python, see
// model/model.py) score them, and raises an alert on the Kafka egress above a threshold.
// Confirmed frauds count against an account for FRAUD_WINDOW_MS, against a merchant forever.
//
// A manager lives only as long as its transaction: it deletes its state once scored, and
// ignores whatever arrives for a transaction it does not hold (a late or repeated reply).
import { address, kafkaRecord, type Message, message, statefulFunction, types } from "@eddy/sdk";
import {
  AlertType,
  ConfirmedFraudType,
  ExpireFraudType,
  FeatureQueryType,
  FeatureReplyType,
  FeatureVectorType,
  MerchantFraudType,
  ScoreType,
  TransactionType,
} from "./messages.ts";

export const TRANSACTION_MANAGER = "fraud/transaction-manager";
export const FRAUD_COUNTER = "fraud/fraud-counter";
export const MERCHANT_SCORER = "fraud/merchant-scorer";
export const MODEL = "fraud/model";
/** The Kafka egress the alerts go to, and its topic. */
export const ALERTS_EGRESS = "fraud/alerts";
export const ALERTS_TOPIC = "alerts";

/** A transaction alerts when its score is strictly above this. */
export const ALERT_THRESHOLD = 0.8;
/** How long a confirmed fraud counts against its account: 30 days. */
export const FRAUD_WINDOW_MS = 30 * 24 * 60 * 60 * 1000;
/** Pseudo-count in merchantRisk(): a merchant needs this many confirmed frauds to reach a risk of 0.5. */
export const MERCHANT_RISK_HALF_AT = 5;

/** A merchant's risk, 0..1, from the confirmed frauds at it: count / (count + 5). */
export function merchantRisk(fraudCount: number): number {
  return fraudCount / (fraudCount + MERCHANT_RISK_HALF_AT);
}

function unexpected(self: string, msg: Message, expected: readonly { typename: string }[]): TypeError {
  const names = expected.map((type) => type.typename).join(", ");
  return new TypeError(`${self}: unexpected message of type ${msg.typename || "(none)"}; expected one of ${names}`);
}

export const transactionManager = statefulFunction({
  typename: TRANSACTION_MANAGER,
  state: {
    transaction: TransactionType,
    accountFraudCount: types.int,
    merchantRisk: types.double,
  },
  handle(ctx, msg) {
    const storage = ctx.storage;
    if (msg.is(TransactionType)) {
      const transaction = msg.as(TransactionType);
      if (transaction.id !== ctx.self.id) {
        throw new TypeError(
          `${ctx.self}: got transaction "${transaction.id}"; the record key must be the transaction id`,
        );
      }
      // The same transaction again while it is being scored: it is already asked for.
      if (storage.transaction !== undefined) return;
      storage.transaction = transaction;
      const query = { transactionId: transaction.id };
      ctx.send(message(address(FRAUD_COUNTER, transaction.account), query, FeatureQueryType));
      ctx.send(message(address(MERCHANT_SCORER, transaction.merchant), query, FeatureQueryType));
      return;
    }

    if (msg.is(FeatureReplyType)) {
      const transaction = storage.transaction;
      if (transaction === undefined) return; // finished, or never started here
      const reply = msg.as(FeatureReplyType);
      // Each feature is taken once, so the vector goes out once, when the last one comes in.
      if (reply.feature === "accountFraudCount") {
        if (storage.accountFraudCount !== undefined) return;
        storage.accountFraudCount = reply.value;
      } else if (reply.feature === "merchantRisk") {
        if (storage.merchantRisk !== undefined) return;
        storage.merchantRisk = reply.value;
      } else {
        throw new TypeError(`${ctx.self}: FeatureReply of unknown feature ${JSON.stringify(reply.feature)}`);
      }
      const accountFraudCount = storage.accountFraudCount;
      const risk = storage.merchantRisk;
      if (accountFraudCount === undefined || risk === undefined) return;
      const vector = {
        transactionId: transaction.id,
        account: transaction.account,
        merchant: transaction.merchant,
        amount: transaction.amount,
        accountFraudCount,
        merchantRisk: risk,
      };
      ctx.send(message(address(MODEL, transaction.id), vector, FeatureVectorType));
      return;
    }

    if (msg.is(ScoreType)) {
      const transaction = storage.transaction;
      // Only a score of the vector this manager sent counts: that needs both features in.
      if (transaction === undefined || storage.accountFraudCount === undefined || storage.merchantRisk === undefined) {
        return;
      }
      const { score } = msg.as(ScoreType);
      if (score > ALERT_THRESHOLD) {
        const alert = {
          transactionId: transaction.id,
          account: transaction.account,
          merchant: transaction.merchant,
          amount: transaction.amount,
          score,
        };
        ctx.send(
          kafkaRecord({
            egress: ALERTS_EGRESS,
            topic: ALERTS_TOPIC,
            key: transaction.account,
            value: alert,
            type: AlertType,
          }),
        );
      }
      storage.transaction = undefined;
      storage.accountFraudCount = undefined;
      storage.merchantRisk = undefined;
      return;
    }

    throw unexpected(String(ctx.self), msg, [TransactionType, FeatureReplyType, ScoreType]);
  },
});

export const fraudCounter = statefulFunction({
  typename: FRAUD_COUNTER,
  state: { count: types.int },
  handle(ctx, msg) {
    if (msg.is(ConfirmedFraudType)) {
      const fraud = msg.as(ConfirmedFraudType);
      if (fraud.account !== ctx.self.id) {
        throw new TypeError(
          `${ctx.self}: got a fraud on account "${fraud.account}"; the record key must be the account`,
        );
      }
      ctx.storage.count = (ctx.storage.count ?? 0) + 1;
      ctx.sendAfter(FRAUD_WINDOW_MS, message(ctx.self, {}, ExpireFraudType));
      ctx.send(message(address(MERCHANT_SCORER, fraud.merchant), { merchant: fraud.merchant }, MerchantFraudType));
      return;
    }

    if (msg.is(ExpireFraudType)) {
      const count = ctx.storage.count ?? 0;
      // Every ExpireFraud follows the increment that scheduled it; without a count there is nothing to expire.
      if (count <= 1) ctx.storage.count = undefined;
      else ctx.storage.count = count - 1;
      return;
    }

    if (msg.is(FeatureQueryType)) {
      ctx.reply({ feature: "accountFraudCount", value: ctx.storage.count ?? 0 }, FeatureReplyType);
      return;
    }

    throw unexpected(String(ctx.self), msg, [ConfirmedFraudType, ExpireFraudType, FeatureQueryType]);
  },
});

export const merchantScorer = statefulFunction({
  typename: MERCHANT_SCORER,
  state: { fraudCount: types.int },
  handle(ctx, msg) {
    if (msg.is(MerchantFraudType)) {
      const { merchant } = msg.as(MerchantFraudType);
      if (merchant !== ctx.self.id) {
        throw new TypeError(`${ctx.self}: got a fraud at merchant "${merchant}"; the target id must be the merchant`);
      }
      ctx.storage.fraudCount = (ctx.storage.fraudCount ?? 0) + 1;
      return;
    }

    if (msg.is(FeatureQueryType)) {
      ctx.reply({ feature: "merchantRisk", value: merchantRisk(ctx.storage.fraudCount ?? 0) }, FeatureReplyType);
      return;
    }

    throw unexpected(String(ctx.self), msg, [MerchantFraudType, FeatureQueryType]);
  },
});
