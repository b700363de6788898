// What the engine reports as it works, for metrics (observe/metrics.ts): events as they happen,
// each a plain call. The default records nothing, so the engine (and the simulation that runs
// it) needs no metrics library.

export type InvocationOutcome = "ok" | "failed";
export type EgressOutcome = "delivered" | "rejected";

export interface EngineObserver {
  /**
   * A call to a function of `typename` was answered (or failed for good) after `seconds`;
   * `messages` is how many messages its answer handled (0 for a failure or a state handshake);
   * `failure` says why a failed call failed.
   */
  invoked(typename: string, messages: number, seconds: number, outcome: InvocationOutcome, failure?: string): void;
  /** A batch whose call budget ran out is sent again (failure policy retry). */
  resent(typename: string): void;
  deadLettered(typename: string): void;
  /** A group commit was made: how long it took, and how many writes it held. */
  committed(seconds: number, writes: number): void;
  /** A commit was refused (a cluster moved partitions or fenced the worker) and undone. */
  commitRefused(): void;
  /** An egress entry was settled. */
  egressSettled(egress: string, outcome: EgressOutcome): void;
}

/** An observer that records nothing: the engine's default. */
export const noEngineObserver: EngineObserver = {
  invoked() {},
  resent() {},
  deadLettered() {},
  committed() {},
  commitRefused() {},
  egressSettled() {},
};
