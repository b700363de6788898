// The Kafka ingress and egress as Connectors (io/connector.ts): their client settings are
// read and checked at creation (properties, TLS and SASL files), and an ingress that routes a
// topic to a function no endpoint serves is refused then, naming the module's file:line.
import { formatLocation } from "../../config/diagnostics.ts";
import type { KafkaEgressConfig, KafkaIngressConfig } from "../../config/types.ts";
import { failure, type Result, success } from "../../errors.ts";
import type { Connector, ConnectorContext, ConnectorKind } from "../connector.ts";
import { KafkaEgress, kafkaEgressSettings } from "./egress.ts";
import { KafkaIngress, kafkaIngressSettings } from "./ingress.ts";

export const kafkaIngressKind: ConnectorKind<KafkaIngressConfig> = {
  label: "Kafka ingress",
  create(config: KafkaIngressConfig, context: ConnectorContext): Result<Connector, "config"> {
    const where = formatLocation(config.source);
    for (const { topic, targets } of config.topics) {
      const unserved = targets.find((target) => context.catalog.functionSettings(target) === undefined);
      if (unserved !== undefined) {
        return failure(
          "config",
          `${where}: Kafka ingress ${config.id} routes topic ${topic} to ${unserved}, which no endpoint in the module serves`,
          false,
        );
      }
    }
    const settings = kafkaIngressSettings(config);
    if (!settings.ok) return failure("config", `${where}: ${settings.error}`, false);
    return success(
      new KafkaIngress({
        config,
        settings: settings.value,
        log: context.log,
        binding: context.sourceBinding,
        tracer: context.tracer,
      }),
    );
  },
};

export const kafkaEgressKind: ConnectorKind<KafkaEgressConfig> = {
  label: "Kafka egress",
  create(config: KafkaEgressConfig, context: ConnectorContext): Result<Connector, "config"> {
    const settings = kafkaEgressSettings(config);
    if (!settings.ok) return failure("config", `${formatLocation(config.source)}: ${settings.error}`, false);
    return success(new KafkaEgress({ config, settings: settings.value, log: context.log }));
  },
};
