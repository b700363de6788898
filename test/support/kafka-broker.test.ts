// The Kafka broker the connector tests run against (test/support/kafka-broker.ts): a real
// Apache Kafka in KRaft mode that takes topics, refuses a duplicate, and keeps its topics and
// their leaders across a SIGKILL and a restart on the same data directory and port.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { describe, it } from "node:test";
import { KAFKA_NODE_ID, startKafka } from "./kafka-broker.ts";

describe("a real Kafka broker for tests", () => {
  it("keeps a 3-partition topic across kill -9 and restart on the same port", async (t) => {
    const startedAt = performance.now();
    const broker = await startKafka();
    t.diagnostic(`startKafka() took ${Math.round(performance.now() - startedAt)} ms`);
    t.after(() => broker.stop());
    assert.match(broker.bootstrap, /^127\.0\.0\.1:\d+$/);

    await broker.createTopic("eddy-ingress", 3);
    const leaders = {
      partitions: [0, 1, 2].map((partition) => ({ partition, leaderId: KAFKA_NODE_ID })),
    };
    assert.deepEqual(await broker.describeTopic("eddy-ingress"), leaders);
    assert.equal(await broker.describeTopic("eddy-absent"), undefined);
    await assert.rejects(broker.createTopic("eddy-ingress"), /already exists/);

    await broker.kill();
    assert.equal(await accepts(broker.bootstrap), false, "a killed broker still accepts connections");

    const restartedAt = performance.now();
    await broker.restart();
    t.diagnostic(`restart() after SIGKILL took ${Math.round(performance.now() - restartedAt)} ms`);
    assert.deepEqual(await broker.describeTopic("eddy-ingress"), leaders);

    await broker.stop();
    assert.equal(existsSync(broker.logDir), false, "stop() leaves the data directory behind");
  });
});

/** Whether something accepts a TCP connection at "host:port". */
function accepts(bootstrap: string): Promise<boolean> {
  const [host = "", port = ""] = bootstrap.split(":");
  return new Promise((resolve) => {
    const socket = connect({ host, port: Number(port) });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
