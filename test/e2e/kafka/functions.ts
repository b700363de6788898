// The functions of StateFun's exactly-once e2e test (statefun-protocol.md §6.1, the Kafka
// variant), with Eddy's SDK: `e2e/counter` counts the records of its key and forwards
// "<key>:<count>" to `e2e/forward` under a random id (so the message crosses partitions),
// which writes it to the exactly-once Kafka egress, topic `out`, keyed by the counter's key.
import { randomUUID } from "node:crypto";
import { address, kafkaRecord, message, statefulFunction, types } from "@eddy/sdk";

export const OUT_TOPIC = "out";
export const EGRESS_ID = "e2e/out";
const Forward = types.json<{ key: string; count: number }>("e2e/Forward");

export const counter = statefulFunction({
  typename: "e2e/counter",
  state: { count: types.int },
  handle(ctx) {
    const count = (ctx.storage.count ?? 0) + 1;
    ctx.storage.count = count;
    ctx.send(message(address("e2e/forward", randomUUID()), { key: ctx.self.id, count }, Forward));
  },
});

export const forward = statefulFunction({
  typename: "e2e/forward",
  state: {},
  handle(ctx, msg) {
    const { key, count } = msg.as(Forward);
    ctx.send(kafkaRecord({ egress: EGRESS_ID, topic: OUT_TOPIC, key, value: `${key}:${count}` }));
  },
});
