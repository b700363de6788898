// Typenames with a fixed meaning on the wire (statefun-protocol.md §3).

/** StateFun's built-in primitive types; each value is the proto3 encoding of a wrapper message in types.proto. */
export const BuiltinTypename = {
  bool: "io.statefun.types/bool",
  int: "io.statefun.types/int",
  long: "io.statefun.types/long",
  float: "io.statefun.types/float",
  double: "io.statefun.types/double",
  string: "io.statefun.types/string",
} as const;

/** The egress record types, checked by exact string equality by StateFun's Kafka and Kinesis egresses. */
export const KAFKA_PRODUCER_RECORD_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord";
export const KINESIS_EGRESS_RECORD_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord";

/** What StateFun's runtime registers for a state spec whose typename is empty. */
export const UNSET_TYPENAME = "io.statefun.types/unset";
