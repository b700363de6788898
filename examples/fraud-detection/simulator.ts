// A seeded simulator of the example's input: confirmed frauds, then transactions, the same
// for the same options on every run (its own PRNG, no Math.random, no clock). Frauds are
// concentrated on a few compromised accounts and a few risky merchants, so that some later
// transactions score above the alert threshold; expectedAlerts() says which.
import { ALERT_THRESHOLD, merchantRisk } from "./functions.ts";
import type { Alert, ConfirmedFraud, Transaction } from "./messages.ts";
import { score } from "./model.ts";

export interface SimulationOptions {
  /** Any 32-bit unsigned integer; the same seed gives the same records. */
  readonly seed: number;
  readonly accounts: number;
  readonly merchants: number;
  readonly transactions: number;
  readonly confirmedFraud: number;
}

export interface Simulated {
  /** Ordered by atMs, all after the last confirmed fraud. */
  readonly transactions: Transaction[];
  /** Ordered by atMs. */
  readonly confirmedFraud: ConfirmedFraud[];
}

export const DEFAULT_SIMULATION: SimulationOptions = {
  seed: 20240601,
  accounts: 500,
  merchants: 100,
  transactions: 1000,
  confirmedFraud: 100,
};

/** The share of accounts that are compromised: every confirmed fraud is on one of them. */
const COMPROMISED_ACCOUNT_SHARE = 0.05;
/** The share of transactions made with a compromised account (fraudsters keep using them). */
const TRANSACTION_BY_COMPROMISED_SHARE = 0.05;
/** The share of merchants that are risky, and the share of confirmed frauds that happen at one. */
const RISKY_MERCHANT_SHARE = 0.05;
const FRAUD_AT_RISKY_MERCHANT_SHARE = 0.8;
/** The share of transactions at a risky merchant. */
const TRANSACTION_AT_RISKY_MERCHANT_SHARE = 0.08;
/** Amounts: e^N(ln 60, 1.2), clamped to 1..5000, in cents. */
const AMOUNT_MEDIAN = 60;
const AMOUNT_LOG_SIGMA = 1.2;
const AMOUNT_MIN = 1;
const AMOUNT_MAX = 5000;
/** Simulated time: confirmed frauds in the 20 days before START_MS, transactions after it. */
const START_MS = Date.UTC(2024, 5, 1);
const FRAUD_HISTORY_MS = 20 * 24 * 60 * 60 * 1000;
const TRANSACTION_GAP_MS_MAX = 60_000;

/** mulberry32: a 32-bit-state PRNG, uniform in [0, 1). Good enough for test data, tiny, and deterministic. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Random {
  readonly #next: () => number;

  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }

  uniform(): number {
    return this.#next();
  }

  /** An integer in [0, bound). */
  below(bound: number): number {
    return Math.floor(this.#next() * bound);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)] as T;
  }

  /** A standard normal deviate (Box-Muller). */
  normal(): number {
    const u = 1 - this.#next(); // (0, 1]: ln(0) is not a number
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.#next());
  }

  /** `count` distinct items (a partial Fisher-Yates shuffle). */
  sample<T>(items: readonly T[], count: number): T[] {
    const pool = [...items];
    for (let index = 0; index < count; index++) {
      const swap = index + this.below(pool.length - index);
      [pool[index], pool[swap]] = [pool[swap] as T, pool[index] as T];
    }
    return pool.slice(0, count);
  }
}

function requireCount(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`simulate(): ${name} must be a whole number >= ${min}, got ${value}`);
  }
}

function ids(prefix: string, count: number): string[] {
  const width = String(count).length;
  return Array.from({ length: count }, (_, index) => `${prefix}-${String(index + 1).padStart(width, "0")}`);
}

/** Simulated confirmed frauds and transactions; fills in DEFAULT_SIMULATION for what is not given. */
export function simulate(options: Partial<SimulationOptions> = {}): Simulated {
  const { seed, accounts, merchants, transactions, confirmedFraud } = { ...DEFAULT_SIMULATION, ...options };
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`simulate(): seed must be a 32-bit unsigned integer, got ${seed}`);
  }
  requireCount("accounts", accounts, 1);
  requireCount("merchants", merchants, 2); // at least one risky and one other
  requireCount("transactions", transactions, 0);
  requireCount("confirmedFraud", confirmedFraud, 0);

  const random = new Random(seed);
  const accountIds = ids("acct", accounts);
  const merchantIds = ids("merchant", merchants);
  const compromised = random.sample(accountIds, Math.max(1, Math.round(accounts * COMPROMISED_ACCOUNT_SHARE)));
  const riskyCount = Math.min(merchants - 1, Math.max(1, Math.round(merchants * RISKY_MERCHANT_SHARE)));
  const risky = random.sample(merchantIds, riskyCount);
  const riskySet = new Set(risky);
  const others = merchantIds.filter((merchant) => !riskySet.has(merchant));

  const frauds: ConfirmedFraud[] = [];
  for (let index = 0; index < confirmedFraud; index++) {
    const atRisky = random.uniform() < FRAUD_AT_RISKY_MERCHANT_SHARE;
    frauds.push({
      account: random.pick(compromised),
      merchant: random.pick(atRisky ? risky : others),
      transactionId: `past-${String(index + 1).padStart(String(confirmedFraud).length, "0")}`,
      atMs: START_MS - FRAUD_HISTORY_MS + random.below(FRAUD_HISTORY_MS),
    });
  }
  frauds.sort((a, b) => a.atMs - b.atMs || a.transactionId.localeCompare(b.transactionId));

  const transactionIds = ids("tx", transactions);
  const simulatedTransactions: Transaction[] = [];
  let atMs = START_MS;
  for (const id of transactionIds) {
    atMs += 1 + random.below(TRANSACTION_GAP_MS_MAX);
    const byCompromised = random.uniform() < TRANSACTION_BY_COMPROMISED_SHARE;
    const atRisky = random.uniform() < TRANSACTION_AT_RISKY_MERCHANT_SHARE;
    const drawn = AMOUNT_MEDIAN * Math.exp(AMOUNT_LOG_SIGMA * random.normal());
    const amount = Math.round(Math.min(AMOUNT_MAX, Math.max(AMOUNT_MIN, drawn)) * 100) / 100;
    simulatedTransactions.push({
      id,
      account: random.pick(byCompromised ? compromised : accountIds),
      merchant: random.pick(atRisky ? risky : others),
      amount,
      atMs,
    });
  }
  return { transactions: simulatedTransactions, confirmedFraud: frauds };
}

export interface FraudCounts {
  /** What each account's fraud-counter holds once all of them are processed (none expired). */
  readonly byAccount: ReadonlyMap<string, number>;
  /** What each merchant's scorer holds once all of them are processed. */
  readonly byMerchant: ReadonlyMap<string, number>;
}

/** The confirmed frauds per account and per merchant; accounts and merchants without any are absent. */
export function fraudCounts(confirmedFraud: readonly ConfirmedFraud[]): FraudCounts {
  const byAccount = new Map<string, number>();
  const byMerchant = new Map<string, number>();
  for (const fraud of confirmedFraud) {
    byAccount.set(fraud.account, (byAccount.get(fraud.account) ?? 0) + 1);
    byMerchant.set(fraud.merchant, (byMerchant.get(fraud.merchant) ?? 0) + 1);
  }
  return { byAccount, byMerchant };
}

export interface ScoredTransaction {
  readonly transaction: Transaction;
  readonly accountFraudCount: number;
  readonly merchantRisk: number;
  readonly score: number;
}

/**
 * Each transaction with the features and score the application gives it, assuming every
 * confirmed fraud was processed before any transaction and none has expired yet.
 */
export function scoredTransactions(simulated: Simulated): ScoredTransaction[] {
  const { byAccount, byMerchant } = fraudCounts(simulated.confirmedFraud);
  return simulated.transactions.map((transaction) => {
    const features = {
      amount: transaction.amount,
      accountFraudCount: byAccount.get(transaction.account) ?? 0,
      merchantRisk: merchantRisk(byMerchant.get(transaction.merchant) ?? 0),
    };
    return {
      transaction,
      accountFraudCount: features.accountFraudCount,
      merchantRisk: features.merchantRisk,
      score: score(features),
    };
  });
}

/** The alerts the application raises for `simulated`, in transaction order, under the same assumption. */
export function expectedAlerts(simulated: Simulated): Alert[] {
  return scoredTransactions(simulated)
    .filter((scored) => scored.score > ALERT_THRESHOLD)
    .map(({ transaction, score }) => ({
      transactionId: transaction.id,
      account: transaction.account,
      merchant: transaction.merchant,
      amount: transaction.amount,
      score,
    }));
}
