// What a start is given (RuntimeOptions) and what it gives back (RunningRuntime): the
// runtime's public surface, for the CLI's run and dev, tests, benchmarks and embedders.
import type { Endpoint } from "@eddy/sdk";
import type { WrittenCheckpoint } from "../checkpoint/checkpoint-writer.ts";
import type { CheckpointRequest } from "../checkpoint/checkpointer.ts";
import type { ClusterSettings } from "../cluster/cluster-settings.ts";
import type { ModuleConfig } from "../config/index.ts";
import type { FailurePolicy } from "../core/partition-core.ts";
import type { AdmissionReport } from "../engine/engine.ts";
import type { Logger, LogLevel } from "../observe/logger.ts";
import type { CheckpointSettings } from "./checkpoints.ts";
import { PAYLOAD_BYTES_DEFAULT } from "./endpoints.ts";

export type { CheckpointSettings } from "./checkpoints.ts";

export const INGRESS_BODY_BYTES_LIMIT_DEFAULT = 4 * 1024 * 1024;
/**
 * A message larger than a function call may carry (32 MiB, the default payload_max_bytes,
 * StateFun's too) could be accepted but never delivered, so the ingress takes no more.
 */
export const INGRESS_BODY_BYTES_LIMIT_MAX = PAYLOAD_BYTES_DEFAULT;

export interface RuntimeOptions {
  readonly module: ModuleConfig;
  readonly stateDir: string;
  /** Interface the ingresses and egresses bind to; default 127.0.0.1. */
  readonly host?: string;
  /** When set, every ingress and egress request needs `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** How long idempotency keys and request-reply answers are kept; default 24 h. */
  readonly retentionMs?: number;
  /** Functions run in this process (Eddy SDK); they take precedence over the module's endpoints. */
  readonly inProcess?: Endpoint;
  /** Fixed for the life of a state directory; default 128. */
  readonly partitionCount?: number;
  /** What to do with a batch that keeps failing; default retry (forever, with backoff). */
  readonly failurePolicy?: FailurePolicy;
  /** Overrides the port of every ingress/egress (0 = any free port), for tests and side-by-side runs. */
  readonly portOverride?: number;
  /**
   * Added to every port an ingress or egress listens on (the module's, or the default it
   * falls back to), so several Eddys run from one module file on one machine; a port of 0
   * stays 0, and portOverride wins over it. Default 0.
   */
  readonly portOffset?: number;
  /** The largest HTTP ingress request body; default 4 MiB, at most 32 MiB (INGRESS_BODY_BYTES_LIMIT_MAX). */
  readonly ingressBodyBytesLimit?: number;
  /** Most bytes of work admitted and not finished (EngineOptions.memoryBudgetBytes); default 24 MiB. */
  readonly memoryBudgetBytes?: number;
  /**
   * Steer V8's old generation toward four times the memory budget (heap-governor.ts) while
   * the runtime runs. It sets a process-wide V8 flag: the eddy command turns it on, an
   * embedder decides for its own process. Default off.
   */
  readonly steerHeap?: boolean;
  /** How long the HTTP ingress holds a request that finds no room before it answers 503; default 10 s. */
  readonly ingressHoldMs?: number;
  /**
   * Where the runtime's log goes (observe/logger.ts). Default: JSON lines on stderr, readable
   * lines when stderr is a terminal. `log` takes `eddy: <message>` lines instead (embedders,
   * tests); `logger` wins over both.
   */
  readonly logger?: Logger;
  readonly log?: (line: string) => void;
  /** The least level logged (debug, info, warn, error); default info. Not applied to a given `logger`. */
  readonly logLevel?: LogLevel;
  /**
   * The runtime cannot go on (a function failed under the stop policy, a commit failed, a
   * connector hit a bug): the reason, in one line, already logged. The caller stops the runtime
   * (RunningRuntime.stop) and decides what the process does. Without it the runtime stops itself.
   */
  readonly onStop?: (reason: string) => void;
  /** Checkpoints to blob storage, and restore from them when the state directory is empty. */
  readonly checkpoints?: CheckpointSettings;
  /**
   * The admin listener (GET /metrics), on `host` with the same token as the ingress; port 0 is
   * any free port. Without it the runtime keeps no metrics. The eddy command listens on 8093.
   */
  readonly admin?: { readonly port: number };
  /**
   * Where the OTEL_* variables that configure traces are read (observe/otel-tracer.ts);
   * default the process's environment. Without any, the runtime traces nothing.
   */
  readonly environment?: Readonly<Record<string, string | undefined>>;
  /** Run as one worker of a cluster on Kafka (cluster/cluster-settings.ts) instead of on the state directory alone. */
  readonly cluster?: ClusterSettings;
  /**
   * Partition threads (`eddy run --threads`): 1 (the default) runs every partition on the main
   * thread, as always; more spreads them over that many worker threads
   * (assembly/start-threaded-runtime.ts, which refuses what they do not run yet).
   */
  readonly threads?: number;
  /**
   * With threads: a module URL whose exported stateful functions run in process, imported in
   * every partition thread (functions cannot be handed between threads; `inProcess` is for one
   * thread). RunningRuntime.reloadInProcess imports it again.
   */
  readonly inProcessUrl?: string;
  /**
   * For tests: milliseconds since the epoch as the runtime sees them (delayed messages,
   * retention); default Date.now. After moving it, call RunningRuntime.clockMoved().
   */
  readonly clock?: () => number;
}

export interface RunningRuntime {
  readonly ingressUrls: readonly string[];
  readonly egressUrls: readonly string[];
  /** The admin listener's URL, when it was asked for (RuntimeOptions.admin). */
  readonly adminUrl: string | undefined;
  /**
   * Replaces the in-process functions. Function types must stay the ones given at start:
   * which types exist is fixed for the life of the runtime.
   */
  replaceInProcess(endpoint: Endpoint): void;
  /**
   * With threads and `inProcessUrl`: the functions imported again from `url` (the same file
   * under a new URL) in every thread. Rejects with why they were not taken (the types changed,
   * the file does not load); the running functions stay.
   */
  reloadInProcess(url: string): Promise<void>;
  /** Takes a checkpoint (or savepoint) now; undefined when nothing changed since the last. Needs `checkpoints`. */
  checkpoint(request?: CheckpointRequest): Promise<WrittenCheckpoint | undefined>;
  /** The `clock` option jumped: delayed messages now due are sent. */
  clockMoved(): void;
  /** The memory budget and how much of it is in use. */
  admission(): AdmissionReport;
  /** Closes everything the start opened, in reverse order; the state directory is free after. Twice is once. */
  stop(): Promise<void>;
}
