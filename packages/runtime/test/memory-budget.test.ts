// The memory budget (--memory-budget): Eddy started behind a Kafka backlog far larger than
// its budget, and an HTTP ingress flooded past it. What is checked is what the runtime
// counts as admitted and not finished (RunningRuntime.admission()), never how long
// anything took: the count never passes the budget, sources waited and resumed, every
// record is handled once and in order per key, and a request answered 503 was not taken.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type AnyStatefulFunction, createEndpoint, statefulFunction, types } from "@eddy/sdk";
import { Admin, Producer } from "@platformatic/kafka";
import { type KafkaBroker, startKafka } from "../../../test/support/kafka-broker.ts";
import { parseModule } from "../src/config/module.ts";
import { callControlSocket, type MemoryReport } from "../src/control-socket.ts";
import { heapTargetBytes } from "../src/heap-governor.ts";
import { type RunningRuntime, startRuntime } from "../src/runtime.ts";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function freshStateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "eddy-memory-budget-"));
  dirs.push(dir);
  return join(dir, "state");
}

/** Eddy with an HTTP ingress on a free port, `fn` in-process, and the given budget and hold. */
function withHttpIngress(
  fn: AnyStatefulFunction,
  memoryBudgetBytes: number,
  ingressHoldMs: number,
): Promise<RunningRuntime> {
  return startRuntime({
    module: moduleFrom("kind: io.statefun.playground.v1/ingress\nspec:\n  port: 8090\n"),
    stateDir: freshStateDir(),
    inProcess: createEndpoint([fn]),
    portOverride: 0,
    partitionCount: 8,
    memoryBudgetBytes,
    ingressHoldMs,
    log: () => undefined,
  });
}

function moduleFrom(yaml: string) {
  const loaded = parseModule(yaml, "module.yaml");
  if (!loaded.ok) throw new Error(loaded.errors.map((error) => error.format()).join("\n"));
  return loaded.module;
}

async function until(condition: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** One broker for the Kafka cases, started by the first that needs it. */
let broker: KafkaBroker | undefined;
async function kafka(): Promise<KafkaBroker> {
  broker ??= await startKafka();
  return broker;
}
after(async () => {
  await broker?.stop();
});

/** A new topic holding `batches` of records, written before any Eddy starts. */
async function backlogTopic(
  topic: string,
  partitions: number,
  batches: readonly (readonly { key: string; value: string }[])[],
): Promise<void> {
  const { bootstrap } = await kafka();
  const admin = new Admin({ clientId: "test-admin", bootstrapBrokers: [bootstrap] });
  const producer = new Producer({ clientId: "test-source", bootstrapBrokers: [bootstrap], idempotent: true });
  try {
    await admin.createTopics({ topics: [topic], partitions, replicas: 1 });
    for (const batch of batches) {
      await producer.send({
        messages: batch.map(({ key, value }) => ({ topic, key: Buffer.from(key), value: Buffer.from(value) })),
      });
    }
  } finally {
    await producer.close();
    await admin.close();
  }
}

/** A Kafka ingress reading `topic` from its beginning into `target`. */
async function kafkaIngress(topic: string, target: string) {
  return moduleFrom(`kind: io.statefun.kafka.v1/ingress
spec:
  id: test/in
  address: ${(await kafka()).bootstrap}
  startupPosition:
    type: earliest
  topics:
    - topic: ${topic}
      valueType: test/Text
      targets:
        - ${target}
`);
}

describe("the memory budget, behind a Kafka backlog", { timeout: 180_000 }, () => {
  const KEYS = 40;
  const PER_KEY = 500;
  const BUDGET = 1024 * 1024;

  it("never holds more than the budget, waits and resumes, and handles every record once in order per key", async () => {
    const topic = "backlog";
    // The whole backlog is in the topic before Eddy starts: 20,000 records, ~41 MiB against
    // the budget (each counts its bytes and 2 KiB), so the budget holds about a fortieth.
    const batches = Array.from({ length: PER_KEY / 50 }, (_, batch) =>
      Array.from({ length: 50 * KEYS }, (_, n) => ({
        key: `k${n % KEYS}`,
        value: String(batch * 50 + Math.floor(n / KEYS)),
      })),
    );
    await backlogTopic(topic, 4, batches);

    const handled = new Map<string, number[]>();
    let total = 0;
    const counter = statefulFunction({
      typename: "test/counter",
      state: { last: types.int },
      async handle(ctx, message) {
        // Slower than Kafka can be read, so the backlog meets the budget.
        await sleep(2);
        const value = Number(Buffer.from(message.bytes).toString());
        const seen = handled.get(ctx.self.id) ?? [];
        seen.push(value);
        handled.set(ctx.self.id, seen);
        ctx.storage.last = value;
        total++;
      },
    });
    const stateDir = freshStateDir();
    const runtime: RunningRuntime = await startRuntime({
      module: await kafkaIngress(topic, "test/counter"),
      stateDir,
      inProcess: createEndpoint([counter]),
      partitionCount: 8,
      memoryBudgetBytes: BUDGET,
      steerHeap: true,
      log: () => undefined,
    });
    try {
      await until(() => total >= KEYS * PER_KEY, `${KEYS * PER_KEY} records (${total} so far)`);
      await sleep(200); // any record handled twice would come now
      const report = runtime.admission();
      assert.equal(report.budgetBytes, BUDGET);
      assert.ok(
        report.admittedBytesMax <= BUDGET,
        `admitted work peaked at ${report.admittedBytesMax} bytes, over the budget of ${BUDGET}`,
      );
      // The test means something only if the budget was reached and the ingress waited.
      assert.ok(report.admittedBytesMax > BUDGET / 2, `admitted work peaked at only ${report.admittedBytesMax} bytes`);
      assert.ok(report.waits > 0, "the ingress never waited for the budget");
      assert.equal(total, KEYS * PER_KEY);
      const inOrder = Array.from({ length: PER_KEY }, (_, index) => index);
      for (let key = 0; key < KEYS; key++) assert.deepEqual(handled.get(`k${key}`), inOrder, `key k${key}`);
      await until(() => runtime.admission().admittedBytes === 0, "the admitted work to drain");
      // The control socket reports the same, with the process's memory and the store's memtable.
      const reply = await callControlSocket(stateDir, "/memory");
      assert.equal(reply.status, 200);
      const memory = reply.body as MemoryReport;
      assert.equal(memory.admission.budgetBytes, BUDGET);
      assert.equal(memory.admission.admittedBytes, 0);
      assert.ok(memory.admission.waits >= report.waits);
      assert.ok(memory.rssBytes > memory.heapUsedBytes && memory.heapUsedBytes > 0, JSON.stringify(memory));
      assert.ok(Number.isInteger(memory.memtableBytes) && memory.memtableBytes >= 0, JSON.stringify(memory));
      assert.equal(memory.heapGovernor?.targetBytes, heapTargetBytes(BUDGET));
      assert.ok((memory.heapGovernor?.growingPercent ?? 0) >= 10, JSON.stringify(memory));
    } finally {
      await runtime.stop();
    }
  });
});

describe("the memory budget, one address behind a Kafka backlog", { timeout: 120_000 }, () => {
  it("holds to the budget when a single address has the whole backlog, in order", async () => {
    const topic = "one-key";
    const RECORDS = 3000;
    // ~120 messages' worth (2 KiB and their bytes each): under the address's backlog limit (1,000), so the budget is what binds,
    // and under the 500 records the ingress otherwise puts in one admission.
    const budget = 256 * 1024;
    const batches = Array.from({ length: RECORDS / 500 }, (_, batch) =>
      Array.from({ length: 500 }, (_, index) => ({ key: "only", value: String(batch * 500 + index) })),
    );
    await backlogTopic(topic, 1, batches);
    const seen: number[] = [];
    const one = statefulFunction({
      typename: "test/one",
      async handle(_ctx, message) {
        await sleep(1);
        seen.push(Number(Buffer.from(message.bytes).toString()));
      },
    });
    const runtime = await startRuntime({
      module: await kafkaIngress(topic, "test/one"),
      stateDir: freshStateDir(),
      inProcess: createEndpoint([one]),
      partitionCount: 4,
      memoryBudgetBytes: budget,
      log: () => undefined,
    });
    try {
      await until(() => seen.length >= RECORDS, `${RECORDS} records (${seen.length} so far)`);
      await sleep(200);
      const report = runtime.admission();
      assert.ok(report.admittedBytesMax <= budget, `admitted work peaked at ${report.admittedBytesMax} bytes`);
      assert.ok(report.waits > 0, "the ingress never waited for the budget");
      assert.deepEqual(
        seen,
        Array.from({ length: RECORDS }, (_, index) => index),
      );
    } finally {
      await runtime.stop();
    }
  });
});

describe("the memory budget, with messages of a few MiB", { timeout: 60_000 }, () => {
  it("admits a few at a time and handles every one once", async () => {
    const budget = 8 * 1024 * 1024;
    const handled = new Map<string, number>();
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const big = statefulFunction({
      typename: "test/big",
      async handle(ctx, message) {
        await gate;
        assert.equal(message.bytes.length, 3 * 1024 * 1024);
        handled.set(ctx.self.id, (handled.get(ctx.self.id) ?? 0) + 1);
      },
    });
    const runtime = await withHttpIngress(big, budget, 60_000);
    try {
      const [ingress] = runtime.ingressUrls;
      assert.ok(ingress !== undefined);
      const body = Buffer.alloc(3 * 1024 * 1024, 7);
      const sent = Array.from({ length: 10 }, (_, id) =>
        fetch(`${ingress}test/big/${id}`, {
          method: "POST",
          body,
          headers: { "content-type": "application/vnd.test/Blob" },
        }),
      );
      // Two fit the budget (3 MiB and 2 KiB each); the other eight wait for room.
      await until(() => runtime.admission().waiting === 8, "eight requests waiting for room");
      open();
      const statuses = await Promise.all(sent.map(async (response) => (await response).status));
      assert.deepEqual(statuses, Array(10).fill(200));
      await until(() => handled.size === 10, "every message to be handled");
      assert.deepEqual([...handled.values()], Array(10).fill(1));
      const report = runtime.admission();
      assert.ok(report.admittedBytesMax <= budget, `admitted work peaked at ${report.admittedBytesMax} bytes`);
    } finally {
      await runtime.stop();
    }
  });
});

describe("the memory budget, with the HTTP ingress flooded", { timeout: 60_000 }, () => {
  it("holds requests, then answers 503 with Retry-After; what it acknowledged is handled once", async () => {
    const handled = new Map<string, number>();
    let gate: (() => void) | undefined;
    let gateOpen = new Promise<void>((open) => {
      gate = open;
    });
    const slow = statefulFunction({
      typename: "test/slow",
      async handle(ctx) {
        await gateOpen;
        handled.set(ctx.self.id, (handled.get(ctx.self.id) ?? 0) + 1);
      },
    });
    const runtime = await withHttpIngress(slow, 64 * 1024, 300);
    try {
      const [ingress] = runtime.ingressUrls;
      assert.ok(ingress !== undefined);
      // 300 addresses, each one message of ~1 KiB (~3 KiB against the budget): about 20 fit.
      const body = "x".repeat(1024);
      const send = (id: number) =>
        fetch(`${ingress}test/slow/${id}`, { method: "POST", body, headers: { "content-type": "text/plain" } });
      const first = await Promise.all(Array.from({ length: 300 }, (_, id) => send(id)));
      const accepted = first.flatMap((response, id) => (response.status === 200 ? [id] : []));
      const refused = first.flatMap((response, id) => (response.status === 503 ? [id] : []));
      assert.equal(accepted.length + refused.length, 300, "every answer is 200 or 503");
      assert.ok(accepted.length > 0 && refused.length > 0, `${accepted.length} accepted, ${refused.length} refused`);
      for (const id of refused) {
        const response = first[id] as Response;
        assert.equal(response.headers.get("retry-after"), "1");
        assert.match(await response.text(), /no room for the message within 300 ms/);
      }
      const report = runtime.admission();
      assert.ok(report.admittedBytesMax <= 64 * 1024, `admitted work peaked at ${report.admittedBytesMax} bytes`);

      const opened = gate as () => void;
      opened();
      await until(() => handled.size >= accepted.length, "the accepted requests to be handled");
      // The refused ones were not taken: sent again, each is handled once too.
      gateOpen = Promise.resolve();
      for (const id of refused) {
        let response = await send(id);
        for (let tries = 0; response.status === 503 && tries < 50; tries++) {
          await sleep(Number(response.headers.get("retry-after")) * 100);
          response = await send(id);
        }
        assert.equal(response.status, 200);
      }
      await until(() => handled.size === 300, "every request to be handled");
      await sleep(200);
      assert.deepEqual(
        [...handled.values()].filter((count) => count !== 1),
        [],
        "a request handled more than once",
      );
    } finally {
      await runtime.stop();
    }
  });
});
