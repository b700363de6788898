// Connections to a Kafka cluster for the protocol requests Eddy's cluster mode sends itself
// (group membership, topic checks, transactional offsets), over @platformatic/kafka's
// connection pool and its per-version request codecs. The client's own Consumer and Admin
// wrap these requests in retries and hidden state (a rejoin inside the heartbeat handler, a
// member epoch it keeps private); Eddy needs each response as it is, so it calls the codecs
// itself and keeps its own state (group-member.ts).
//
// The client's codecs throw a ResponseError when a response carries an error code, with the
// parsed response attached; `send` returns that response instead, so callers branch on error
// codes as values. Anything else thrown (a refused connection, a timeout) stays an exception
// of the world, which the caller turns into a retriable Failure.
import {
  Base,
  type Broker,
  type Connection,
  findCoordinatorV6,
  metadataV12,
  parseBroker,
  protocolErrorsCodesById,
} from "@platformatic/kafka";
import type { KafkaConnection } from "../io/kafka/client-options.ts";

/** Kafka's error codes that cluster mode branches on (Kafka's `Errors` enum). */
export const KafkaErrorCode = {
  NONE: 0,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
  REQUEST_TIMED_OUT: 7,
  COORDINATOR_LOAD_IN_PROGRESS: 14,
  COORDINATOR_NOT_AVAILABLE: 15,
  NOT_COORDINATOR: 16,
  ILLEGAL_GENERATION: 22,
  INCONSISTENT_GROUP_PROTOCOL: 23,
  UNKNOWN_MEMBER_ID: 25,
  INVALID_SESSION_TIMEOUT: 26,
  REBALANCE_IN_PROGRESS: 27,
  GROUP_AUTHORIZATION_FAILED: 30,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_CONFIG: 40,
  NOT_CONTROLLER: 41,
  POLICY_VIOLATION: 44,
  CONCURRENT_TRANSACTIONS: 51,
  GROUP_MAX_SIZE_REACHED: 81,
  MEMBER_ID_REQUIRED: 79,
  FENCED_INSTANCE_ID: 82,
  UNSTABLE_OFFSET_COMMIT: 88,
} as const;

/** Kafka's name for an error code, e.g. 22 → "ILLEGAL_GENERATION". */
export function kafkaErrorName(code: number): string {
  return protocolErrorsCodesById[code] ?? `error code ${code}`;
}

/** The coordinator errors after which the request goes to a coordinator found anew. */
export function isCoordinatorError(code: number): boolean {
  return (
    code === KafkaErrorCode.NOT_COORDINATOR ||
    code === KafkaErrorCode.COORDINATOR_NOT_AVAILABLE ||
    code === KafkaErrorCode.COORDINATOR_LOAD_IN_PROGRESS
  );
}

/**
 * Runs one request; a response the client refused for its error codes comes back as the
 * response. Rejects only for what is not a response (network, timeout, a client bug).
 */
export async function send<Response>(request: Promise<Response>): Promise<Response> {
  try {
    return await request;
  } catch (error) {
    const response = (error as { response?: unknown } | undefined)?.response;
    if (response !== undefined && response !== null && typeof response === "object") return response as Response;
    throw error;
  }
}

/** FindCoordinator's key types. */
export const CoordinatorKeyType = { GROUP: 0, TRANSACTION: 1 } as const;

export interface KafkaLinkOptions {
  /** Longest wait for one response; a JoinGroup may legitimately wait a whole rebalance timeout. */
  readonly requestTimeoutMs: number;
}

/** One connection pool to a cluster, with the brokers it has learned from Metadata. */
export class KafkaLink {
  readonly #client: Base;
  readonly #bootstrap: Broker[];
  readonly #brokers = new Map<number, Broker>();
  /** For messages: the servers as the user wrote them. */
  readonly bootstrapServers: string;

  constructor(connection: KafkaConnection, options: KafkaLinkOptions) {
    this.#client = new Base({
      clientId: connection.clientId,
      bootstrapBrokers: connection.bootstrapBrokers,
      connectTimeout: connection.connectTimeout ?? 5_000,
      requestTimeout: Math.max(connection.requestTimeout ?? 0, options.requestTimeoutMs),
      // Every request here is sent once; the caller's loop decides what to try again.
      retries: 0,
      ...(connection.tls === undefined ? {} : { tls: connection.tls }),
      ...(connection.sasl === undefined ? {} : { sasl: connection.sasl }),
    });
    this.#bootstrap = connection.bootstrapBrokers.map((server) => parseBroker(server));
    this.bootstrapServers = connection.bootstrapBrokers.join(",");
  }

  /** A connection to any bootstrap server or known broker. */
  async any(): Promise<Connection> {
    return this.#client.connections.getFirstAvailable([...this.#bootstrap, ...this.#brokers.values()]);
  }

  /** A connection to broker `nodeId`, learning the brokers from Metadata when it is not known. */
  async node(nodeId: number): Promise<Connection> {
    let broker = this.#brokers.get(nodeId);
    if (broker === undefined) {
      await this.metadata([]);
      broker = this.#brokers.get(nodeId);
      if (broker === undefined) throw new Error(`Kafka broker ${nodeId} is not in the cluster's metadata`);
    }
    return this.#client.connections.get(broker);
  }

  /** Metadata of `topics` (no auto-creation); the brokers it names are remembered for node(). */
  async metadata(topics: readonly string[]): Promise<metadataV12.MetadataResponse> {
    const response = await send(metadataV12.api.async(await this.any(), [...topics], false, false));
    for (const broker of response.brokers) this.#brokers.set(broker.nodeId, { host: broker.host, port: broker.port });
    return response;
  }

  /**
   * The coordinator of a group or transactional id: its node id, or the error code the broker
   * answered (COORDINATOR_NOT_AVAILABLE while __consumer_offsets is being created).
   */
  async coordinator(
    keyType: number,
    key: string,
  ): Promise<{ nodeId: number } | { errorCode: number; message: string }> {
    const response = await send(findCoordinatorV6.api.async(await this.any(), keyType, [key]));
    const found = response.coordinators.find((coordinator) => coordinator.key === key);
    if (found === undefined) return { errorCode: -1, message: `FindCoordinator did not answer for ${key}` };
    if (found.errorCode !== KafkaErrorCode.NONE) {
      return { errorCode: found.errorCode, message: found.errorMessage ?? kafkaErrorName(found.errorCode) };
    }
    this.#brokers.set(found.nodeId, { host: found.host, port: found.port });
    return { nodeId: found.nodeId };
  }

  async close(): Promise<void> {
    await this.#client.close().catch(() => undefined);
  }
}
