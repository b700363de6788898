// The Kinesis ingress and egress as Connectors (io/connector.ts): their client settings are
// read and checked at creation (region, credentials, client properties), and an ingress that
// routes a stream to a function no endpoint serves is refused then, naming the module's file:line.
import { formatLocation } from "../../config/diagnostics.ts";
import type { KinesisEgressConfig, KinesisIngressConfig } from "../../config/types.ts";
import { failure, type Result, success } from "../../errors.ts";
import type { Connector, ConnectorContext, ConnectorKind } from "../connector.ts";
import { KinesisEgress, kinesisEgressSettings } from "./egress.ts";
import { KinesisIngress, kinesisIngressSettings } from "./ingress.ts";

export const kinesisIngressKind: ConnectorKind<KinesisIngressConfig> = {
  label: "Kinesis ingress",
  create(config: KinesisIngressConfig, context: ConnectorContext): Result<Connector, "config"> {
    const where = formatLocation(config.source);
    for (const { stream, targets } of config.streams) {
      const unserved = targets.find((target) => context.catalog.functionSettings(target) === undefined);
      if (unserved !== undefined) {
        return failure(
          "config",
          `${where}: Kinesis ingress ${config.id} routes stream ${stream} to ${unserved}, which no endpoint in the module serves`,
          false,
        );
      }
    }
    const settings = kinesisIngressSettings(config);
    if (!settings.ok) return failure("config", `${where}: ${settings.error}`, false);
    return success(
      new KinesisIngress({ config, settings: settings.value, log: context.log, binding: context.sourceBinding }),
    );
  },
};

export const kinesisEgressKind: ConnectorKind<KinesisEgressConfig> = {
  label: "Kinesis egress",
  create(config: KinesisEgressConfig, context: ConnectorContext): Result<Connector, "config"> {
    const settings = kinesisEgressSettings(config);
    if (!settings.ok) return failure("config", `${formatLocation(config.source)}: ${settings.error}`, false);
    return success(new KinesisEgress({ config, settings: settings.value, log: context.log }));
  },
};
