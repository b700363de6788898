// The module's ingresses and egresses through the registry (io/registry.ts): all created
// before anything is opened, so a configuration mistake costs nothing to undo; then opened,
// egresses before the engine starts and ingresses after, each one's close registered with the
// start's Closers before it opens. A connector that fails for good (a bug) stops the runtime.
import { Kind, type ModuleConfig } from "../config/types.ts";
import { BugError, EddyError, errorMessage } from "../errors.ts";
import type { Connector, ConnectorContext, ConnectorHost } from "../io/connector.ts";
import { PLAYGROUND_INGRESS_ID } from "../io/playground/connectors.ts";
import { type ComponentConfig, connectorKind } from "../io/registry.ts";
import type { Closers } from "./closers.ts";
import { StartupError } from "./startup-error.ts";

export interface NamedConnector {
  readonly connector: Connector;
  /** "Kafka ingress orders", as lines about it say. */
  readonly name: string;
}

export interface ModuleConnectors {
  readonly ingresses: readonly NamedConnector[];
  readonly egresses: readonly NamedConnector[];
}

/** Creates every ingress and egress of the module, or throws the StartupError of the first that is wrong. */
export function createConnectors(module: ModuleConfig, context: ConnectorContext): ModuleConnectors {
  const create = (config: ComponentConfig): NamedConnector => {
    const kind = connectorKind(config);
    const id = config.kind === Kind.PLAYGROUND_INGRESS ? PLAYGROUND_INGRESS_ID : config.id;
    const created = kind.create(config, { ...context, log: context.log.child({ connector: `${kind.label} ${id}` }) });
    if (!created.ok) throw new StartupError(created.message);
    return { connector: created.value, name: `${kind.label} ${created.value.id}` };
  };
  return { ingresses: module.ingresses.map(create), egresses: module.egresses.map(create) };
}

/**
 * Opens each connector in turn, its close registered first; returns the URLs they listen on.
 * A connector that cannot open (a port in use) is a StartupError; what opened before it is
 * closed by the Closers.
 */
export async function openConnectors(
  connectors: readonly NamedConnector[],
  host: Omit<ConnectorHost, "onFatal">,
  failed: (name: string, error: unknown) => void,
  closers: Closers,
): Promise<string[]> {
  const urls: string[] = [];
  for (const { connector, name } of connectors) {
    closers.defer(name, () => connector.close());
    try {
      const opened = await connector.open({ ...host, onFatal: (error) => failed(name, error) });
      urls.push(...opened.urls);
    } catch (error) {
      if (error instanceof EddyError && !(error instanceof BugError)) throw new StartupError(error.message);
      throw error;
    }
  }
  return urls;
}

/** Why a connector stopped for good, in one line; and a bug's stack to log after it (for the developers). */
export function connectorFailure(name: string, error: unknown): { readonly reason: string; readonly stack: string } {
  const isBug = !(error instanceof EddyError) || error instanceof BugError;
  const stack = isBug && error instanceof Error && error.stack !== undefined ? `\n${error.stack}` : "";
  return { reason: `${name} failed: ${errorMessage(error)}`, stack };
}
