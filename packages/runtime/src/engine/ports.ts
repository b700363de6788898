// What connectors may ask of the engine, as narrow interfaces: an ingress of a replayable
// source (Kafka, Kinesis) sees a SourceSink, the HTTP ingress a RequestSink, an egress an
// EgressSink. The Engine class satisfies them structurally (EngineSatisfiesPorts below fails
// to compile otherwise), and connectors import only these, so a cluster worker can hand them
// something else (an engine over a Kafka transaction, a test fake) without a connector changing.
import type { KV } from "../core/kv.ts";
import type { RejectedRecord } from "../core/partition-set.ts";
import type { Envelope } from "../core/records.ts";
import type {
  AcceptOptions,
  AcceptResult,
  AdmissionReport,
  CommitRefusal,
  Engine,
  ReplyLookup,
  SourceAcceptResult,
  SourceBound,
  SourceRun,
} from "./engine.ts";

export type {
  AcceptOptions,
  AcceptResult,
  AdmissionReport,
  EgressConnector,
  EgressSettlement,
  ReplyLookup,
  SourceAcceptResult,
  SourceBound,
  SourceRun,
} from "./engine.ts";

/**
 * The code a commit refused without anything being broken carries (the cluster fenced this
 * worker, a rebalance moved partitions): the promises of the work it held (admitFromSource's
 * `durable`, acceptFromSource, transact) reject with an EddyError of this code, retriable.
 * Nothing of that commit was taken: a source reads again from the position the store holds.
 */
export const COMMIT_ABORTED = "commit-aborted" satisfies CommitRefusal["code"];

/** Writes of a connector's own tables, durable together (rejects with COMMIT_ABORTED when refused). */
export interface Transactor {
  transact<T>(work: (transaction: KV) => T): Promise<T>;
}

/** admitFromSource's answer: admitted, with `durable` for its commit; or why not. */
export type SourceAdmission =
  | { readonly ok: true; readonly durable: Promise<void> }
  | Exclude<SourceAcceptResult, { readonly ok: true }>;

/**
 * What an ingress of a replayable source (a Kafka partition, a Kinesis shard) hands records
 * to: messages and the source's new position in one commit (see Engine.acceptFromSource).
 */
export interface SourceSink extends Transactor {
  /** The memory budget, which sizes what a source asks for at a time. */
  readonly admission: AdmissionReport;
  admitFromSource(
    envelopes: readonly Envelope[],
    record: (transaction: KV) => void,
    rejected?: readonly RejectedRecord[],
    bound?: SourceBound,
  ): Promise<SourceAdmission>;
  acceptFromSource(
    envelopes: readonly Envelope[],
    record: (transaction: KV) => void,
    rejected?: readonly RejectedRecord[],
    bound?: SourceBound,
  ): Promise<SourceAcceptResult>;
  /** In a cluster: the current run of a partition, for a source bound to it (undefined: not run here). */
  sourceRun(partition: number): SourceRun | undefined;
}

/** What the HTTP ingress hands a request to, and asks for its reply (waitMs 0: as it is now). */
export interface RequestSink {
  accept(envelope: Envelope, options?: AcceptOptions): Promise<AcceptResult>;
  awaitReply(requestId: string, waitMs: number): Promise<ReplyLookup>;
}

/** What an egress may ask beyond its deliveries: its own tables, and holding work against the memory budget. */
export interface EgressSink extends Transactor {
  holdWork(bytes: number): void;
  releaseWork(bytes: number): void;
  /** In a cluster: writes in the rows of the partitions run here (Engine.transactOwned). */
  transactOwned<T>(work: (owned: readonly number[], rowsOf: (partition: number) => KV) => T): Promise<T>;
}

/** Every port: what a connector's host hands it (each connector keeps only the one it needs). */
export type EnginePorts = SourceSink & RequestSink & EgressSink;

/** Compiles only while the Engine class satisfies every port. */
type Satisfies<Ports, T extends Ports> = T;
export type EngineSatisfiesPorts = Satisfies<EnginePorts, Engine>;
