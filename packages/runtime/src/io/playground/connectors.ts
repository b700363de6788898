// The playground HTTP ingress and egress as Connectors (io/connector.ts): created from their
// configuration (the port moved by the runtime's port offset), opened by listening on it. A
// port that cannot be had is an EddyError naming the port, the host and the module's
// file:line of whoever wanted it.
import { formatLocation } from "../../config/diagnostics.ts";
import { Kind, type PlaygroundEgressConfig, type PlaygroundIngressConfig } from "../../config/types.ts";
import type { EgressConnector, EgressSink, RequestSink } from "../../engine/ports.ts";
import { EddyError, failure, type Result, success } from "../../errors.ts";
import type { Connector, ConnectorContext, ConnectorKind, HostOf } from "../connector.ts";
import { PLAYGROUND_EGRESS_ID, PlaygroundEgress } from "./egress.ts";
import { PLAYGROUND_INGRESS_ID, PlaygroundIngress, type PlaygroundIngressOptions } from "./ingress.ts";

export { PLAYGROUND_INGRESS_ID };

class PlaygroundIngressConnector implements Connector {
  readonly id = PLAYGROUND_INGRESS_ID;
  readonly egress = undefined;
  readonly #config: PlaygroundIngressConfig;
  readonly #options: Omit<PlaygroundIngressOptions, "checkpointed">;
  #ingress: PlaygroundIngress | undefined;

  constructor(config: PlaygroundIngressConfig, options: Omit<PlaygroundIngressOptions, "checkpointed">) {
    this.#config = config;
    this.#options = options;
  }

  async open(host: HostOf<RequestSink>): Promise<{ readonly urls: readonly string[] }> {
    const ingress = new PlaygroundIngress(host.engine, {
      ...this.#options,
      ...(host.checkpointed === undefined ? {} : { checkpointed: host.checkpointed }),
      ...(host.routing === undefined ? {} : { routing: host.routing }),
    });
    const url = await listenFor(() => ingress.listen(), this.#config, this.#options);
    this.#ingress = ingress;
    return { urls: [url] };
  }

  async close(): Promise<void> {
    await this.#ingress?.close();
  }
}

class PlaygroundEgressConnector implements Connector {
  readonly id = PLAYGROUND_EGRESS_ID;
  readonly egress: EgressConnector;
  readonly #config: PlaygroundEgressConfig;
  readonly #address: { readonly port: number; readonly host: string };
  readonly #playground: PlaygroundEgress;
  #listening = false;

  constructor(config: PlaygroundEgressConfig, playground: PlaygroundEgress, address: { port: number; host: string }) {
    this.#config = config;
    this.#playground = playground;
    this.#address = address;
    this.egress = playground;
  }

  async open(host: HostOf<EgressSink>): Promise<{ readonly urls: readonly string[] }> {
    this.#playground.attach(host.engine, host.store, host.partitionCount);
    const routing = host.routing;
    if (routing?.peers !== undefined) this.#playground.attachPeers(() => routing.peers?.() ?? []);
    const url = await listenFor(() => this.#playground.listen(), this.#config, this.#address);
    this.#listening = true;
    return { urls: [url] };
  }

  async close(): Promise<void> {
    if (this.#listening) await this.#playground.close();
  }
}

export const playgroundIngressKind: ConnectorKind<PlaygroundIngressConfig> = {
  label: "playground ingress",
  create(config: PlaygroundIngressConfig, context: ConnectorContext): Result<Connector, "config"> {
    const port = listenPort(config, context);
    if (!port.ok) return port;
    return success(
      new PlaygroundIngressConnector(config, {
        port: port.value,
        host: context.host,
        maxBodyBytes: context.ingressBodyBytesLimit,
        ...(context.ingressHoldMs === undefined ? {} : { holdMs: context.ingressHoldMs }),
        ...(context.token === undefined ? {} : { token: context.token }),
        ...(context.observer === undefined
          ? {}
          : { answered: (status: number) => context.observer?.ingressAnswered(PLAYGROUND_INGRESS_ID, status) }),
        ...(context.tracer === undefined ? {} : { tracer: context.tracer }),
      }),
    );
  },
};

export const playgroundEgressKind: ConnectorKind<PlaygroundEgressConfig> = {
  label: "playground egress",
  create(config: PlaygroundEgressConfig, context: ConnectorContext): Result<Connector, "config"> {
    const port = listenPort(config, context);
    if (!port.ok) return port;
    const address = { port: port.value, host: context.host };
    const playground = new PlaygroundEgress({
      ...address,
      topics: config.topics,
      ...(context.token === undefined ? {} : { token: context.token }),
      ...(context.inCluster === true ? { inCluster: true } : {}),
    });
    return success(new PlaygroundEgressConnector(config, playground, address));
  },
};

/**
 * The port to listen on: the override, else the module's port moved by the offset (0, any
 * free port, stays 0). An offset that moves it past 65535 is refused, naming the port and
 * who wanted it.
 */
export function listenPort(
  config: PlaygroundIngressConfig | PlaygroundEgressConfig,
  context: Pick<ConnectorContext, "portOverride" | "portOffset">,
): Result<number, "config"> {
  if (context.portOverride !== undefined) return success(context.portOverride);
  const offset = context.portOffset ?? 0;
  const wanter = `the ${role(config)} ${config.kind} (${formatLocation(config.source)})`;
  if (!Number.isSafeInteger(offset) || offset < 0) {
    return failure("config", `port offset ${offset} for ${wanter}: expected a whole number, 0 or more`, false);
  }
  if (config.port === 0) return success(0);
  const moved = config.port + offset;
  if (moved > PORT_MAX) {
    return failure(
      "config",
      `port offset ${offset} moves port ${config.port} of ${wanter} to ${moved}, past ${PORT_MAX}`,
      false,
    );
  }
  return success(moved);
}

const PORT_MAX = 65535;

function role(config: PlaygroundIngressConfig | PlaygroundEgressConfig): "ingress" | "egress" {
  return config.kind === Kind.PLAYGROUND_INGRESS ? "ingress" : "egress";
}

/** Listens, or says in one line which port on which host could not be had and which ingress or egress wanted it. */
async function listenFor(
  listen: () => Promise<string>,
  config: PlaygroundIngressConfig | PlaygroundEgressConfig,
  address: { readonly port: number; readonly host: string },
): Promise<string> {
  try {
    return await listen();
  } catch (error) {
    throw new EddyError("listen-failed", listenFailure(error, config, address), { retriable: false, cause: error });
  }
}

/** Which port on which host could not be had, and which ingress or egress wanted it: one line. */
export function listenFailure(
  error: unknown,
  config: PlaygroundIngressConfig | PlaygroundEgressConfig,
  address: { readonly port: number; readonly host: string },
): string {
  const { port, host } = address;
  const wanter = `the ${role(config)} ${config.kind} (${formatLocation(config.source)})`;
  const code = (error as NodeJS.ErrnoException).code;
  return code === "EADDRINUSE"
    ? `port ${port} on ${host} is in use; ${wanter} wants it`
    : code === "EACCES"
      ? `port ${port} on ${host} needs privileges this process lacks; ${wanter} wants it`
      : `${wanter} cannot listen on port ${port} of ${host} (--host): ${(error as Error).message}`;
}
