// The fraud-detection example's messages: their shapes and typenames, shared by the
// functions, the model formula, the simulator and the Kafka connectors' configuration.
// The two records that arrive from Kafka are validated on the way in; the messages the
// functions send each other are trusted, as they are written by the code next to this.
import { type Schema, type Type, types } from "@eddy/sdk";

/** A card transaction, as on the Kafka topic `transactions` (record key = `id`). */
export interface Transaction {
  readonly id: string;
  readonly account: string;
  readonly merchant: string;
  readonly amount: number;
  readonly atMs: number;
}

/** A transaction confirmed as fraud, as on the Kafka topic `confirmed-fraud` (record key = `account`). */
export interface ConfirmedFraud {
  readonly account: string;
  readonly merchant: string;
  readonly transactionId: string;
  readonly atMs: number;
}

/** The fraud counter tells the merchant scorer about a confirmed fraud at `merchant`. */
export interface MerchantFraud {
  readonly merchant: string;
}

/** A confirmed fraud leaves the account's fraud window: sent by the counter to itself. */
export type ExpireFraud = Record<string, never>;

/** The transaction manager asks a feature source for its feature. */
export interface FeatureQuery {
  readonly transactionId: string;
}

export type FeatureName = "accountFraudCount" | "merchantRisk";

/** A feature source's answer to a FeatureQuery, sent to the query's caller. */
export interface FeatureReply {
  readonly feature: FeatureName;
  readonly value: number;
}

/** What the model scores. */
export interface FeatureVector {
  readonly transactionId: string;
  readonly account: string;
  readonly merchant: string;
  readonly amount: number;
  readonly accountFraudCount: number;
  readonly merchantRisk: number;
}

/** The model's answer to a FeatureVector, sent to its caller: the probability of fraud, 0..1. */
export interface Score {
  readonly transactionId: string;
  readonly score: number;
}

/** An alert, the value of a record on the Kafka topic `alerts` (record key = `account`). */
export interface Alert {
  readonly transactionId: string;
  readonly account: string;
  readonly merchant: string;
  readonly amount: number;
  readonly score: number;
}

type FieldKind = "nonEmptyString" | "finiteNumber" | "nonNegativeNumber";

const FIELD_KIND_EXPECTED: Readonly<Record<FieldKind, string>> = {
  nonEmptyString: "a non-empty string",
  finiteNumber: "a finite number",
  nonNegativeNumber: "a finite number >= 0",
};

function fits(kind: FieldKind, value: unknown): boolean {
  if (kind === "nonEmptyString") return typeof value === "string" && value.length > 0;
  if (typeof value !== "number" || !Number.isFinite(value)) return false;
  return kind === "finiteNumber" || value >= 0;
}

/**
 * A schema for a flat JSON object: each field present with its kind, or a TypeError that
 * names the typename, the field and what was found. Extra fields are kept as they are.
 */
function flatSchema<T>(typename: string, fields: { readonly [K in keyof T]-?: FieldKind }): Schema<T> {
  return {
    parse(input: unknown): T {
      if (typeof input !== "object" || input === null || Array.isArray(input)) {
        throw new TypeError(`${typename}: expected a JSON object, got ${JSON.stringify(input)}`);
      }
      const record = input as Record<string, unknown>;
      for (const [field, kind] of Object.entries(fields) as [string, FieldKind][]) {
        const value = record[field];
        if (!fits(kind, value)) {
          const found = value === undefined ? "nothing" : JSON.stringify(value);
          throw new TypeError(`${typename}: field "${field}" must be ${FIELD_KIND_EXPECTED[kind]}, got ${found}`);
        }
      }
      return input as T;
    },
  };
}

export const TransactionType: Type<Transaction> = types.json(
  "fraud/Transaction",
  flatSchema<Transaction>("fraud/Transaction", {
    id: "nonEmptyString",
    account: "nonEmptyString",
    merchant: "nonEmptyString",
    amount: "nonNegativeNumber",
    atMs: "finiteNumber",
  }),
);

export const ConfirmedFraudType: Type<ConfirmedFraud> = types.json(
  "fraud/ConfirmedFraud",
  flatSchema<ConfirmedFraud>("fraud/ConfirmedFraud", {
    account: "nonEmptyString",
    merchant: "nonEmptyString",
    transactionId: "nonEmptyString",
    atMs: "finiteNumber",
  }),
);

export const MerchantFraudType = types.json<MerchantFraud>("fraud/MerchantFraud");
export const ExpireFraudType = types.json<ExpireFraud>("fraud/ExpireFraud");
export const FeatureQueryType = types.json<FeatureQuery>("fraud/FeatureQuery");
export const FeatureReplyType = types.json<FeatureReply>("fraud/FeatureReply");
export const FeatureVectorType = types.json<FeatureVector>("fraud/FeatureVector");
export const ScoreType = types.json<Score>("fraud/Score");
/** The alert's JSON, written as the value bytes of a Kafka record; the typename never goes on the wire. */
export const AlertType = types.json<Alert>("fraud/Alert");
