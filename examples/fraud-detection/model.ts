// The fraud model's formula, the same as `fraud/model` in model/model.py computes: a
// logistic regression with fixed weights. The Python function is what the application
// runs; this copy lets tests and the simulator know which transactions should alert.
// model.test.ts checks the two agree by calling the Python function over HTTP.
import type { FeatureVector } from "./messages.ts";

export const MODEL_WEIGHTS = {
  intercept: -4.0,
  /** Per unit of ln(1 + amount / 100). */
  logAmount: 0.9,
  /** Per confirmed fraud on the account in the fraud window. */
  accountFraudCount: 1.2,
  /** Per unit of the merchant's risk (0..1). */
  merchantRisk: 3.0,
} as const;

export type ModelFeatures = Pick<FeatureVector, "amount" | "accountFraudCount" | "merchantRisk">;

/** The probability of fraud, 0..1: 1 / (1 + e^-logit). */
export function score(features: ModelFeatures): number {
  const logit =
    MODEL_WEIGHTS.intercept +
    MODEL_WEIGHTS.logAmount * Math.log1p(features.amount / 100) +
    MODEL_WEIGHTS.accountFraudCount * features.accountFraudCount +
    MODEL_WEIGHTS.merchantRisk * features.merchantRisk;
  return 1 / (1 + Math.exp(-logit));
}
