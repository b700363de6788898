// Holds a cluster worker's commits for a savepoint (savepoint-participant.ts). Every commit a
// worker makes (a group commit, a dead letter replayed, a playground egress record popped, a
// flush before a rebalance) goes through its commit target, so a gate in front of it is the one
// place where "this worker commits nothing now" can be made true, whatever path asks.
//
// hold() resolves once the commit in flight, if any, has ended (its Kafka transaction decided
// and its writes in the local store); from then until release() a commit waits at the gate,
// before anything of it is sent. The engine sees a commit that takes longer: its acks wait, and
// its pending writes grow against their bound, which holds new work back.
import type { CommitBatch, CommitRefusal, CommitTarget } from "../engine/engine.ts";

export class CommitGate implements CommitTarget {
  readonly #target: CommitTarget;
  readonly wantsInboxPositions: boolean;
  /** The commit passed through and not yet ended. */
  #inFlight: Promise<unknown> | undefined;
  /** While held: resolved by release(). */
  #opened: Promise<void> | undefined;
  #open: (() => void) | undefined;

  constructor(target: CommitTarget) {
    this.#target = target;
    this.wantsInboxPositions = target.wantsInboxPositions === true;
  }

  get held(): boolean {
    return this.#opened !== undefined;
  }

  /** Holds commits; resolves once the one in flight (if any) has ended. Holding twice is one hold. */
  async hold(): Promise<void> {
    if (this.#opened === undefined) {
      this.#opened = new Promise((open) => {
        this.#open = open;
      });
    }
    // A commit that was waiting at the gate when it opened and closed again is let through
    // only after this returns, so one pass of the loop sees it.
    while (this.#inFlight !== undefined) await this.#inFlight;
  }

  /** Lets commits through again. */
  release(): void {
    const open = this.#open;
    this.#opened = undefined;
    this.#open = undefined;
    open?.();
  }

  async commit(batch: CommitBatch): Promise<CommitRefusal | undefined> {
    while (this.#opened !== undefined) await this.#opened;
    const committing = this.#target.commit(batch);
    const ended = committing.then(
      () => undefined,
      () => undefined,
    );
    this.#inFlight = ended;
    try {
      return await committing;
    } finally {
      if (this.#inFlight === ended) this.#inFlight = undefined;
    }
  }
}
