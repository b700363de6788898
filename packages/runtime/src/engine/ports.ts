// What connectors may ask of the engine, as narrow interfaces: an ingress of a replayable
// source (Kafka, Kinesis) sees a SourceSink, the HTTP ingress a RequestSink, an egress an
// EgressSink. The Engine class satisfies them structurally (checked below), and connectors
// import only these, so a cluster worker can hand them something else (an engine over a
// Kafka transaction, a test fake) without any connector changing.
import type { CommitRefusal } from "./engine.ts";

/**
 * The code a commit refused without anything being broken carries (the cluster fenced this
 * worker, a rebalance moved partitions): the promises of the work it held (admitFromSource's
 * `durable`, acceptFromSource, transact) reject with an EddyError of this code, retriable.
 * A source then reads again from the position the store holds.
 */
export const COMMIT_ABORTED = "commit-aborted" satisfies CommitRefusal["code"];
