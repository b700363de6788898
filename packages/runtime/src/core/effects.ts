// What the partition core asks the world to do. The engine releases every effect only
// after the commit holding the writes that produced it is durable, except `route`,
// which it hands to the target partition inside the same commit, and `invoke` and
// `backpressure`, which it acts on at once (partition-set.ts says why that is safe).
import type { ToFunction, TypedValue } from "@eddy/protocol";
import type { Address } from "./address.ts";
import type { DeadLetter, Envelope, OutboxEntry } from "./records.ts";

export type Effect =
  /** Send a batch to the function. `attempt` > 0 after final failures under the retry-forever policy. */
  | {
      readonly kind: "invoke";
      readonly target: Address;
      readonly batchId: number;
      readonly attempt: number;
      readonly request: ToFunction;
      /**
       * The distinct trace contexts of the batch's messages (at most BATCH_TRACES_MAX), when any
       * has one (tracing on): the call's span continues the first and links the others.
       */
      readonly traces?: readonly string[];
    }
  /** Deliver a message to another address (possibly of another partition). */
  | { readonly kind: "route"; readonly envelope: Envelope }
  /** Hand to the egress connector; it calls egressDelivered(source, seq) once the message is safely out. */
  | { readonly kind: "egress"; readonly entry: OutboxEntry }
  | { readonly kind: "dead-letter"; readonly letter: DeadLetter }
  /** A request that waits for a reply has its answer (held until the answer is durable). */
  | { readonly kind: "reply"; readonly requestId: string; readonly value: TypedValue }
  /** An address's backlog reached its limit (blocked) or fell below it again. */
  | { readonly kind: "backpressure"; readonly target: Address; readonly blocked: boolean }
  /** A function failed under the stop policy: the runtime must stop with this reason. */
  | { readonly kind: "stop"; readonly reason: string };
