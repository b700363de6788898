// The first check every egress makes of an outbox message: that it is the record type the
// egress takes and that it decodes. What fails is refused with a reason (it becomes a dead
// letter), never thrown: the message is the function's mistake, not Eddy's.

type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/**
 * The decoded record of `value`, or why the egress refuses it. `egress` and `record` name them
 * in the reason: "a Kafka egress takes <typename>, got …", "the KafkaProducerRecord does not decode: …".
 */
export function decodeEgressMessage<T>(
  value: { readonly typename: string; readonly value: Uint8Array },
  expected: { readonly typename: string; readonly egress: string; readonly record: string },
  decode: (bytes: Uint8Array) => Decoded<T>,
): { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string } {
  if (value.typename !== expected.typename) {
    return { ok: false, reason: `${expected.egress} takes ${expected.typename}, got ${value.typename}` };
  }
  const decoded = decode(value.value);
  if (!decoded.ok) return { ok: false, reason: `the ${expected.record} does not decode: ${decoded.error}` };
  return decoded;
}
