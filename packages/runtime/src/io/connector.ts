// One lifecycle for every ingress and egress, whatever its kind: a ConnectorKind creates it
// from its configuration (every file read and every setting checked there, so a mistake is a
// startup error naming the module's file:line, before anything runs); the runtime builds the
// engine with the egresses among them; open() connects each to the engine's ports and starts
// it (listening, reading, publishing); close() stops it. The assembly closes what it opened,
// in reverse order, whether the start failed halfway or the runtime stops.

import type { KV } from "../core/kv.ts";
import type { Catalog } from "../core/partition-core.ts";
import type { EgressConnector, EnginePorts } from "../engine/ports.ts";
import type { Tracer } from "../engine/tracer.ts";
import type { Result } from "../errors.ts";
import type { Logger } from "../observe/logger.ts";
import type { IngressRouting } from "./playground/forwarding.ts";
import type { SourceBinding } from "./source-binding.ts";

/** What a connector is handed when it opens, with the engine as the port it needs. */
export interface HostOf<Port> {
  /** The engine, seen through a port (engine/ports.ts). */
  readonly engine: Port;
  /** Eddy's store as committed, read at open for positions and sequence numbers. */
  readonly store: KV;
  /** A failure retrying cannot cure (a bug): the connector has stopped, the runtime should stop. */
  readonly onFatal: (error: unknown) => void;
  /**
   * With checkpoints and --ack-after-checkpoint: resolves once a checkpoint holds everything
   * committed so far; nothing leaves Eddy (acknowledgements, egress output, group offsets) before.
   */
  readonly checkpointed?: (() => Promise<void>) | undefined;
  /** How many partitions the engine has (where a connector keys rows by partition); default 1. */
  readonly partitionCount?: number;
  /** In a cluster: which worker runs what, for an HTTP ingress to forward requests to their owner. */
  readonly routing?: IngressRouting | undefined;
}

/** What the runtime hands every connector: each takes the port it needs from it. */
export type ConnectorHost = HostOf<EnginePorts>;

export interface Connector {
  /** The ingress's or egress's id from the module. */
  readonly id: string;
  /** A source's partitions and how far each is from its end (metrics); absent for connectors that are no source. */
  sourceLags?(): Promise<readonly SourceLag[]>;
  /** Set for an egress: what the engine hands its outbox messages to. */
  readonly egress: EgressConnector | undefined;
  /** Connects to the engine and starts; resolves with the URLs it listens on (none for a client). */
  open(host: ConnectorHost): Promise<{ readonly urls: readonly string[] }>;
  /** Stops; what was handed over and not finished is still durable (in the outbox, or upstream). */
  close(): Promise<void>;
}

/** How far one partition of a source is from its end. */
export interface SourceLag {
  readonly ingress: string;
  /** The Kafka topic. */
  readonly topic: string;
  readonly partition: number;
  /** Records after the read position. */
  readonly messages: number;
}

/** What connectors report as they work (metrics, observe/metrics.ts). */
export interface ConnectorObserver {
  /** An HTTP ingress answered a request with `status`. */
  ingressAnswered(ingress: string, status: number): void;
}

/** What every connector may be created with, besides its own configuration. */
export interface ConnectorContext {
  /** Lines about this connector; createConnectors gives each one a logger that names it (`connector`). */
  readonly log: Logger;
  /** The functions the module serves: an ingress that routes to one it lacks is refused at creation. */
  readonly catalog: Catalog;
  /** The interface HTTP connectors bind to. */
  readonly host: string;
  /** Replaces every HTTP connector's port (0 = any free port). */
  readonly portOverride: number | undefined;
  /** Added to every port an HTTP connector listens on, unless 0 or overridden (RuntimeOptions.portOffset). */
  readonly portOffset?: number | undefined;
  /** Every HTTP request needs `Authorization: Bearer <token>` when set. */
  readonly token: string | undefined;
  /** The largest HTTP ingress request body. */
  readonly ingressBodyBytesLimit: number;
  /** How long the HTTP ingress holds a request that finds no room. */
  readonly ingressHoldMs: number | undefined;
  /**
   * In a cluster: sources read only the source partitions bound to the partitions their worker
   * runs (source-binding.ts). Undefined in the embedded mode, where one Eddy reads them all.
   */
  readonly sourceBinding?: SourceBinding | undefined;
  /** A worker of a cluster: connectors that store what they take keep it in partitions' rows. */
  readonly inCluster?: boolean;
  /** Told what the connectors do, for metrics; undefined when nobody counts. */
  readonly observer?: ConnectorObserver | undefined;
  /**
   * Traces (engine/tracer.ts): an ingress starts a span per message it accepts, continuing the
   * `traceparent` it came with, and hands it on with the message. Undefined when tracing is off.
   */
  readonly tracer?: Tracer | undefined;
}

/** A kind of connector: creates one from its configuration, or says what is wrong with it (code "config"). */
export interface ConnectorKind<Config> {
  /** What the log calls one of this kind, before its id: "Kafka ingress". */
  readonly label: string;
  create(config: Config, context: ConnectorContext): Result<Connector, "config">;
}
