// Every connector kind Eddy has, keyed by the `kind` a module names it with: the one table a
// new ingress or egress is added to.
import type { EgressConfig, IngressConfig } from "../config/types.ts";
import { Kind } from "../config/types.ts";
import type { Result } from "../errors.ts";
import type { Connector, ConnectorContext, ConnectorKind } from "./connector.ts";
import { kafkaEgressKind, kafkaIngressKind } from "./kafka/connectors.ts";
import { kinesisEgressKind, kinesisIngressKind } from "./kinesis/connectors.ts";
import { playgroundEgressKind, playgroundIngressKind } from "./playground/connectors.ts";

export type ComponentConfig = IngressConfig | EgressConfig;

/** The kind for each configuration kind; the mapped type makes a missing kind a compile error. */
export const CONNECTOR_KINDS: {
  readonly [K in ComponentConfig["kind"]]: ConnectorKind<Extract<ComponentConfig, { kind: K }>>;
} = {
  [Kind.PLAYGROUND_INGRESS]: playgroundIngressKind,
  [Kind.PLAYGROUND_EGRESS]: playgroundEgressKind,
  [Kind.KAFKA_INGRESS]: kafkaIngressKind,
  [Kind.KAFKA_EGRESS]: kafkaEgressKind,
  [Kind.KINESIS_INGRESS]: kinesisIngressKind,
  [Kind.KINESIS_EGRESS]: kinesisEgressKind,
};

/** The kind of connector a configuration describes. */
export function connectorKind(config: ComponentConfig): ConnectorKind<ComponentConfig> {
  return CONNECTOR_KINDS[config.kind] as ConnectorKind<ComponentConfig>;
}

/** Creates the connector a configuration describes, or says what is wrong with the configuration. */
export function createConnector(config: ComponentConfig, context: ConnectorContext): Result<Connector, "config"> {
  return connectorKind(config).create(config, context);
}
