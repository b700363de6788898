// The function of bench/kafka: `bench/counter` counts the records of its key (the Kafka
// record's key is the function id) and writes one record per input to the Kafka egress
// `bench/out`, keyed like the input, whose value is the input's value ("<seq> <sentAtMs>")
// followed by the count. The bench reads the count back to check the state, and seq and
// sentAtMs for duplicates and latency. The output topic comes from EDDY_BENCH_KAFKA_TOPIC,
// so one function file serves every run (`eddy dev` in-process, `eddy serve` remote).
import { kafkaRecord, statefulFunction, types } from "@eddy/sdk";

export const EGRESS_ID = "bench/out";
export const INPUT_TYPENAME = "bench/Record";
const outputTopic = process.env.EDDY_BENCH_KAFKA_TOPIC ?? "out";
const decoder = new TextDecoder();

export const counter = statefulFunction({
  typename: "bench/counter",
  state: { count: types.int },
  handle(ctx, msg) {
    const count = (ctx.storage.count ?? 0) + 1;
    ctx.storage.count = count;
    ctx.send(
      kafkaRecord({
        egress: EGRESS_ID,
        topic: outputTopic,
        key: ctx.self.id,
        value: `${decoder.decode(msg.bytes)} ${count}`,
      }),
    );
  },
});
