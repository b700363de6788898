// What a loaded module.yaml means, with every StateFun default applied: endpoints bound to
// function types or namespaces, playground ingress and egress. Durations are milliseconds
// (`…Ms`), sizes bytes; every component remembers where it was declared so later errors
// (an unreachable endpoint, a port in use) can point back at the file.
import type { FunctionTypename } from "../core/address.ts";
import type { FieldLocation } from "./diagnostics.ts";

export type { FunctionTypename } from "../core/address.ts";

/** The namespace part of a typename: `com.example` in `com.example/greeter`. */
export type FunctionNamespace = string & { readonly __brand: "FunctionNamespace" };

export const Kind = {
  ENDPOINTS_V1_HTTP: "io.statefun.endpoints.v1/http",
  ENDPOINTS_V2_HTTP: "io.statefun.endpoints.v2/http",
  PLAYGROUND_INGRESS: "io.statefun.playground.v1/ingress",
  PLAYGROUND_EGRESS: "io.statefun.playground.v1/egress",
  KAFKA_INGRESS: "io.statefun.kafka.v1/ingress",
  KAFKA_EGRESS: "io.statefun.kafka.v1/egress",
  KINESIS_INGRESS: "io.statefun.kinesis.v1/ingress",
  KINESIS_EGRESS: "io.statefun.kinesis.v1/egress",
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

export const SUPPORTED_KINDS: readonly Kind[] = [
  Kind.ENDPOINTS_V2_HTTP,
  Kind.ENDPOINTS_V1_HTTP,
  Kind.PLAYGROUND_INGRESS,
  Kind.PLAYGROUND_EGRESS,
  Kind.KAFKA_INGRESS,
  Kind.KAFKA_EGRESS,
  Kind.KINESIS_INGRESS,
  Kind.KINESIS_EGRESS,
];

export const Transport = {
  ASYNC: "io.statefun.transports.v1/async",
  OKHTTP: "io.statefun.transports.v1/okhttp",
} as const;
export type Transport = (typeof Transport)[keyof typeof Transport];

/** Which functions an endpoint serves: one type, or every type of a namespace (`ns/*`). */
export type FunctionPattern =
  | { readonly kind: "type"; readonly typename: FunctionTypename; readonly namespace: FunctionNamespace }
  | { readonly kind: "namespace"; readonly namespace: FunctionNamespace };

/** A file named by the configuration, resolved to an absolute path. */
export interface FileReference {
  readonly path: string;
  /** Where it was named, e.g. `spec.transport.client_key`. */
  readonly source: FieldLocation;
}

export interface TlsConfig {
  /** PEM bundle of trusted CAs; absent means the system's trust store. */
  readonly trustCaCerts: FileReference | undefined;
  /** Mutual TLS: certificate and key always come together. */
  readonly client:
    | {
        readonly cert: FileReference;
        /** PKCS#8 PEM. */
        readonly key: FileReference;
        /** A file whose content is the key's password. */
        readonly keyPassword: FileReference | undefined;
      }
    | undefined;
}

/** StateFun's default transport since 3.2 (Netty): a total call budget shared by all retries. */
export interface AsyncTransportConfig {
  readonly type: typeof Transport.ASYNC;
  /** Budget for one batch including every retry and backoff. */
  readonly callTimeoutMs: number;
  /** Per connection attempt; also the wait for a pooled connection. */
  readonly connectTimeoutMs: number;
  /** Maximum lifetime of a pooled connection; 0 keeps connections forever. */
  readonly poolTtlMs: number;
  readonly poolSizeMax: number;
  /** Largest accepted response body. */
  readonly payloadBytesMax: number;
  readonly tls: TlsConfig;
  /** Eddy's `signing_key`: a file whose content (trimmed) signs every request (Eddy-Signature header). */
  readonly signingKey: FileReference | undefined;
}

/** The OkHttp transport (`io.statefun.transports.v1/okhttp`, and every v1 endpoint). */
export interface OkHttpTransportConfig {
  readonly type: typeof Transport.OKHTTP;
  readonly callTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly writeTimeoutMs: number;
}

export type TransportConfig = AsyncTransportConfig | OkHttpTransportConfig;

export interface HttpEndpointConfig {
  readonly kind: typeof Kind.ENDPOINTS_V2_HTTP | typeof Kind.ENDPOINTS_V1_HTTP;
  readonly functions: FunctionPattern;
  /** As written; `{function.name}` is replaced by the function type's name (not its namespace). */
  readonly urlPathTemplate: string;
  /** Per-address limit of queued batches before backpressure; ≤ 0 means no limit. */
  readonly maxNumBatchRequests: number;
  readonly transport: TransportConfig;
  /** The `functions` value, which identifies the binding. */
  readonly source: FieldLocation;
}

/** Where one function type is reached. */
export type FunctionUrl =
  | { readonly kind: "tcp"; readonly url: string }
  | {
      readonly kind: "unix";
      readonly socketPath: string;
      /** The HTTP request path (with query), `/` when the URL ends at the socket file. */
      readonly path: string;
      /** `https+unix`. */
      readonly tls: boolean;
    };

export const PLAYGROUND_INGRESS_PORT_DEFAULT = 8090;
export const PLAYGROUND_EGRESS_PORT_DEFAULT = 8091;
export const PLAYGROUND_EGRESS_ID = "io.statefun.playground/egress";

export interface PlaygroundIngressConfig {
  readonly kind: typeof Kind.PLAYGROUND_INGRESS;
  readonly port: number;
  readonly source: FieldLocation;
}

export interface PlaygroundEgressConfig {
  readonly kind: typeof Kind.PLAYGROUND_EGRESS;
  /** Functions send to this egress typename. */
  readonly id: typeof PLAYGROUND_EGRESS_ID;
  readonly port: number;
  readonly topics: readonly string[];
  readonly source: FieldLocation;
}

export type IngressConfig = PlaygroundIngressConfig | KafkaIngressConfig | KinesisIngressConfig;
export type EgressConfig = PlaygroundEgressConfig | KafkaEgressConfig | KinesisEgressConfig;

export interface ModuleConfig {
  /** The files this configuration was loaded from, in load order. */
  readonly files: readonly string[];
  readonly endpoints: readonly HttpEndpointConfig[];
  readonly ingresses: readonly IngressConfig[];
  readonly egresses: readonly EgressConfig[];
}

/** Where a Kafka ingress starts reading a partition it has no stored position for. */
export type KafkaStartupPosition =
  | { readonly type: "group-offsets" }
  | { readonly type: "earliest" }
  | { readonly type: "latest" }
  | {
      readonly type: "specific-offsets";
      readonly offsets: readonly { readonly topic: string; readonly partition: number; readonly offset: number }[];
    }
  | { readonly type: "date"; readonly epochMs: number };

export interface KafkaIngressTopic {
  readonly topic: string;
  /** The typename every record's value is given (its bytes are not re-encoded). */
  readonly valueType: string;
  /** One message per target, all with the record key as id. */
  readonly targets: readonly FunctionTypename[];
}

export interface KafkaIngressConfig {
  readonly kind: typeof Kind.KAFKA_INGRESS;
  /** A typename that identifies the ingress. */
  readonly id: string;
  /** `address`, or else the `bootstrap.servers` property. */
  readonly bootstrapServers: string;
  /** `consumerGroupId`, or else the `group.id` property. */
  readonly groupId: string | undefined;
  readonly topics: readonly KafkaIngressTopic[];
  readonly autoOffsetReset: "earliest" | "latest";
  readonly startupPosition: KafkaStartupPosition;
  /** Client properties as written (`properties:`), address and group id already taken out. */
  readonly properties: ReadonlyMap<string, string>;
  readonly source: FieldLocation;
}

export type KafkaDeliverySemantic =
  | { readonly type: "none" }
  | { readonly type: "at-least-once" }
  | { readonly type: "exactly-once"; readonly transactionTimeoutMs: number };

export interface KafkaEgressConfig {
  readonly kind: typeof Kind.KAFKA_EGRESS;
  /** Functions send to this egress typename. */
  readonly id: string;
  readonly bootstrapServers: string;
  readonly deliverySemantic: KafkaDeliverySemantic;
  readonly properties: ReadonlyMap<string, string>;
  readonly source: FieldLocation;
}

/** The AWS region a Kinesis client talks to (StateFun's `awsRegion`; default: the SDK's provider chain). */
export type KinesisRegion =
  | { readonly type: "default" }
  | { readonly type: "specific"; readonly id: string }
  /** A Kinesis-compatible service at `endpoint` (an http(s) URL), signing for region `id`. */
  | { readonly type: "custom-endpoint"; readonly endpoint: string; readonly id: string };

/** Where a Kinesis client gets its AWS credentials (StateFun's `awsCredentials`; default: the SDK's provider chain). */
export type KinesisCredentials =
  | { readonly type: "default" }
  | { readonly type: "basic"; readonly accessKeyId: string; readonly secretAccessKey: string }
  /** A named profile, from `profilePath` or else the SDK's usual credentials file. */
  | { readonly type: "profile"; readonly profileName: string; readonly profilePath: string | undefined };

/** Where a Kinesis ingress starts reading a shard it has no stored position for. */
export type KinesisStartupPosition =
  | { readonly type: "latest" }
  | { readonly type: "earliest" }
  | { readonly type: "date"; readonly epochMs: number };

export interface KinesisIngressStream {
  readonly stream: string;
  /** The typename every record's data is given (its bytes are not re-encoded). */
  readonly valueType: string;
  /** One message per target, all with the record's partition key as id. */
  readonly targets: readonly FunctionTypename[];
}

export interface KinesisIngressConfig {
  readonly kind: typeof Kind.KINESIS_INGRESS;
  /** A typename that identifies the ingress. */
  readonly id: string;
  readonly region: KinesisRegion;
  readonly credentials: KinesisCredentials;
  readonly startupPosition: KinesisStartupPosition;
  readonly streams: readonly KinesisIngressStream[];
  /** AWS client configuration as written (`clientConfigProperties:`), values as strings. */
  readonly clientConfigProperties: ReadonlyMap<string, string>;
  readonly source: FieldLocation;
}

/** StateFun's default for `maxOutstandingRecords`. */
export const KINESIS_EGRESS_MAX_OUTSTANDING_RECORDS_DEFAULT = 1000;

export interface KinesisEgressConfig {
  readonly kind: typeof Kind.KINESIS_EGRESS;
  /** Functions send to this egress typename. */
  readonly id: string;
  readonly region: KinesisRegion;
  readonly credentials: KinesisCredentials;
  /** Records handed to the producer and not yet acknowledged, above which sending waits (backpressure). */
  readonly maxOutstandingRecords: number;
  /** Producer configuration as written (`clientConfigProperties:`, KPL properties in StateFun). */
  readonly clientConfigProperties: ReadonlyMap<string, string>;
  readonly source: FieldLocation;
}
