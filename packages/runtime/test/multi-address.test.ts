// Multi-address requests (invoker/multi-address.ts, @eddy/protocol's multi-address.ts): with
// an Eddy SDK server that announces them, the HTTP invoker sends the calls of many addresses
// in one request, with exactly the effects and state of one request per address, the state
// handshake included; a failing address fails alone; and a server that does not announce
// sees the standard StateFun protocol only, byte for byte.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  decodeMultiAddressRequest,
  decodeToFunction,
  encodeMultiAddressResponse,
  encodeToFunction,
  MULTI_ADDRESS_CONTENT_TYPE,
  type ToFunction,
} from "@eddy/protocol";
import {
  address,
  createEndpoint,
  type Endpoint,
  egressMessage,
  type HandlerOptions,
  message,
  nodeHandler,
  statefulFunction,
  types,
  verifySignature,
} from "@eddy/sdk";
import type { Address, FunctionTypename } from "../src/core/address.ts";
import type { FailurePolicy } from "../src/core/partition-core.ts";
import { type EgressConnector, Engine } from "../src/engine/engine.ts";
import { type HttpFunctionEndpoint, HttpInvoker } from "../src/invoker/http-invoker.ts";
import {
  AttemptCoalescer,
  multiAddressOutcomes,
  multiAddressRequest,
  type QueuedAttempt,
} from "../src/invoker/multi-address.ts";
import { LmdbStore } from "../src/store/lmdb-store.ts";

const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/** One call as the function server received it. */
interface ReceivedCall {
  readonly typename: string;
  readonly id: string;
  /** Entries in the request's state list: 0 for a function with states means the handshake follows. */
  readonly states: number;
  readonly traceparent: string | undefined;
}

/** One HTTP request as the function server received it. */
interface ReceivedRequest {
  readonly multiAddress: boolean;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly calls: readonly ReceivedCall[];
}

function received(toFunction: Uint8Array, traceparent: string | undefined): ReceivedCall {
  const decoded = decodeToFunction(toFunction);
  assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
  const batch = decoded.value.invocation;
  assert.ok(batch !== null && batch.target !== null);
  return {
    typename: `${batch.target.namespace}/${batch.target.type}`,
    id: batch.target.id,
    states: batch.state.length,
    traceparent,
  };
}

/**
 * An Eddy SDK server (nodeHandler) that records every request it is sent. `handler()` is
 * asked per request, so a test can replace the server's software while it runs.
 */
async function recordingServer(handler: () => ReturnType<typeof nodeHandler>) {
  const requests: ReceivedRequest[] = [];
  const server = createServer((req, res) => {
    // A second listener sees the same chunks as the handler's own.
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const multiAddress = req.headers["content-type"] === MULTI_ADDRESS_CONTENT_TYPE;
      let calls: ReceivedCall[] = [];
      if (multiAddress) {
        const decoded = decodeMultiAddressRequest(body, 1000);
        assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
        calls = decoded.value.map((call) => received(call.toFunction, call.traceparent));
      } else {
        const traceparent = req.headers.traceparent;
        calls = [received(body, typeof traceparent === "string" ? traceparent : undefined)];
      }
      requests.push({ multiAddress, headers: req.headers, body, calls });
    });
    handler()(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/functions`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function httpEndpoint(url: string, callTimeoutMs = 10_000): HttpFunctionEndpoint {
  return { url, callTimeoutMs, connectTimeoutMs: 1_000, maxResponseBytes: 1 << 20, poolSize: 8 };
}

function stringRequest(typename: string, id: string, text: string): ToFunction {
  const [namespace = "", type = ""] = typename.split("/");
  return {
    invocation: {
      target: { namespace, type, id },
      state: [],
      invocations: [
        {
          caller: null,
          argument: { typename: types.string.typename, hasValue: true, value: types.string.serialize(text) },
        },
      ],
    },
  } as unknown as ToFunction;
}

const target = (typename: string, id: string): Address => ({ typename: typename as FunctionTypename, id });

/** Polls `done` every 5 ms for up to `ms`. */
async function until(done: () => boolean, ms: number, what: string): Promise<void> {
  for (const started = Date.now(); !done(); ) {
    if (Date.now() - started > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// The workload's functions: a counter with two states that sends a message to a tally (another
// type at the same URL) and an egress record per message, and a stateless ping.
/** Ids whose counter throws while their count here is above zero (one decremented per throw); "always": always. */
const failing = new Map<string, number | "always">();
const counter = statefulFunction({
  typename: "multi/counter",
  state: { count: types.int, seen: types.string },
  handle(ctx, msg) {
    const text = msg.as(types.string);
    const fails = failing.get(ctx.self.id);
    if (fails === "always" || (fails !== undefined && fails > 0)) {
      if (fails !== "always") failing.set(ctx.self.id, fails - 1);
      throw new Error(`refusing ${ctx.self.id} on purpose`);
    }
    ctx.storage.count = (ctx.storage.count ?? 0) + 1;
    ctx.storage.seen = `${ctx.storage.seen ?? ""}${text};`;
    ctx.send(message(address("multi/tally", ctx.self.id), text, types.string));
    ctx.send(egressMessage("multi/out", `${ctx.self.id}:${text}`, types.string));
  },
});
const tally = statefulFunction({
  typename: "multi/tally",
  state: { total: types.int },
  handle(ctx) {
    ctx.storage.total = (ctx.storage.total ?? 0) + 1;
  },
});
const ping = statefulFunction({ typename: "multi/ping", handle() {} });
const functions: Endpoint = createEndpoint([counter, tally, ping]);

const stateDirs: string[] = [];
after(() => {
  for (const dir of stateDirs) rmSync(dir, { recursive: true, force: true });
});

/** An engine on a fresh store, its functions behind `url`, recording what the egress gets. */
async function startEngine(url: string, options: { failurePolicy?: FailurePolicy; callTimeoutMs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "eddy-multi-address-"));
  stateDirs.push(dir);
  const store = new LmdbStore({ path: dir });
  const egressed: { id: string; text: string }[] = [];
  const egress: EgressConnector = {
    egressIds: ["multi/out"],
    deliver(entry, _transaction, settle) {
      egressed.push({ id: entry.source.id, text: types.string.deserialize(entry.value.value ?? new Uint8Array()) });
      settle.delivered();
    },
  };
  const endpoint = httpEndpoint(url, options.callTimeoutMs);
  const invoker = new HttpInvoker({ endpointFor: () => endpoint }, { retryBaseMs: 20 });
  // The first reply tells the invoker whether the server takes multi-address requests, so that the
  // workload's first calls (the state handshake) already go together when it does.
  const warm = await invoker.invoke(target("multi/ping", "warm-up"), stringRequest("multi/ping", "warm-up", "hi"));
  assert.ok(warm.ok, warm.ok ? "" : warm.reason);
  const settings = {
    maxBatchCount: 100,
    maxBatchBytes: 1 << 20,
    backlogLimit: 0,
    failurePolicy: options.failurePolicy ?? "retry",
  };
  const deadLetters: string[] = [];
  const engine = new Engine({
    store,
    catalog: {
      functionSettings: (typename) => (typename.startsWith("multi/") ? settings : undefined),
      hasEgress: (id) => id === "multi/out",
    },
    invoker,
    partitionCount: 8,
    egress: [egress],
    onDeadLetter: (letter) => deadLetters.push(letter.target.id),
  });
  engine.start();
  const stateOf = (typename: string, id: string): Record<string, unknown> => {
    const view = engine.addressView(target(typename, id));
    const out: Record<string, unknown> = {};
    for (const [name, state] of view?.states ?? []) {
      out[name] =
        state.typename === types.int.typename
          ? types.int.deserialize(state.value)
          : types.string.deserialize(state.value);
    }
    return out;
  };
  const send = (id: string, text: string) =>
    engine.accept({
      target: target("multi/counter", id),
      argument: { typename: types.string.typename, hasValue: true, value: types.string.serialize(text) },
    });
  return { engine, egressed, deadLetters, stateOf, send, stop: () => engine.stop() };
}

const IDS = Array.from({ length: 24 }, (_, index) => `a${index}`);
const ROUNDS = 3;

/** Runs the workload against a server announcing or not; returns the final states, the effects and what the server saw. */
async function runWorkload(announce: boolean) {
  const server = await recordingServer(() => handlers[announce ? "announcing" : "standard"]);
  const runtime = await startEngine(server.url);
  // Rounds: each address gets a message per round, so each round's calls are issued together.
  for (let round = 0; round < ROUNDS; round++) await Promise.all(IDS.map((id) => runtime.send(id, `m${round}`)));
  await until(
    () =>
      runtime.egressed.length >= IDS.length * ROUNDS &&
      IDS.every((id) => runtime.stateOf("multi/tally", id).total === ROUNDS),
    10_000,
    "the workload to finish",
  );
  const states = Object.fromEntries(
    IDS.map((id) => [id, { counter: runtime.stateOf("multi/counter", id), tally: runtime.stateOf("multi/tally", id) }]),
  );
  // Per address, in the order the egress got them.
  const effects = Object.fromEntries(
    IDS.map((id) => [id, runtime.egressed.filter((e) => e.id === id).map((e) => e.text)]),
  );
  await runtime.stop();
  await server.close();
  return { states, effects, deadLetters: runtime.deadLetters, requests: server.requests.slice(1) };
}

const handlers = {
  announcing: nodeHandler(functions),
  standard: nodeHandler(functions, { multiAddress: false } satisfies HandlerOptions),
};

describe("multi-address requests through the engine", () => {
  it("give exactly the effects and state of one request per address, state handshake included, in fewer requests than addresses", async () => {
    const standard = await runWorkload(false);
    const multi = await runWorkload(true);

    assert.deepEqual(multi.states, standard.states);
    assert.deepEqual(multi.effects, standard.effects);
    assert.deepEqual(standard.states.a7, {
      counter: { count: 3, seen: "m0;m1;m2;" },
      tally: { total: 3 },
    });
    assert.deepEqual(standard.effects.a7, ["a7:m0", "a7:m1", "a7:m2"]);
    assert.deepEqual([multi.deadLetters, standard.deadLetters], [[], []]);

    // The standard run: one call per request, never the multi-address content type.
    assert.ok(standard.requests.every((request) => !request.multiAddress && request.calls.length === 1));
    assert.ok(standard.requests.length >= 2 * IDS.length, `${standard.requests.length} requests`);
    // The announcing run: fewer requests than there are addresses, most calls in shared ones.
    assert.ok(multi.requests.length < IDS.length, `${multi.requests.length} requests for ${2 * IDS.length} addresses`);
    const shared = multi.requests.filter((request) => request.multiAddress);
    assert.ok(shared.some((request) => request.calls.length > 1));
    // The handshake went through shared requests: counters called without their states, then with them.
    const handshakes = shared
      .flatMap((request) => request.calls)
      .filter((call) => call.typename === "multi/counter" && call.states === 0);
    assert.ok(handshakes.length > 1, `${handshakes.length} handshake calls in multi-address requests`);
    const callsOf = (run: typeof multi) => run.requests.reduce((sum, request) => sum + request.calls.length, 0);
    assert.ok(callsOf(multi) >= 2 * IDS.length);
    assert.ok(callsOf(standard) >= 2 * IDS.length);
  });

  it("a failing address in the middle of a batch fails alone: the others commit, it retries alone and succeeds", async () => {
    const server = await recordingServer(() => handlers.announcing);
    const runtime = await startEngine(server.url);
    const ids = ["b0", "b1", "b2", "bad", "b4", "b5"];
    failing.set("bad", 2);
    try {
      await Promise.all(ids.map((id) => runtime.send(id, "only")));
      await until(() => runtime.egressed.length === ids.length, 10_000, "every address to commit");
      for (const id of ids) assert.deepEqual(runtime.stateOf("multi/counter", id), { count: 1, seen: "only;" }, id);
      assert.deepEqual(
        runtime.egressed.map((e) => e.id).sort(),
        [...ids].sort(),
        "each address's effects exactly once",
      );
      const counterCalls = server.requests.slice(1).flatMap((request) =>
        request.calls
          .filter((call) => call.typename === "multi/counter")
          .map((call) => ({
            ...call,
            // The counters' calls in the same request (a tally's call may share it too).
            together: request.calls.filter((other) => other.typename === "multi/counter").length,
          })),
      );
      // The call that failed first was in a request with the others.
      const badCalls = counterCalls.filter((call) => call.id === "bad" && call.states > 0);
      assert.equal(badCalls.length, 3, "two failures, then the success");
      assert.ok((badCalls[0]?.together ?? 0) >= ids.length, "the first failing call shared its request");
      // Its retries went without the other counters (done already), and no other address was called again.
      assert.deepEqual(
        badCalls.slice(1).map((call) => call.together),
        [1, 1],
      );
      for (const id of ids.filter((id) => id !== "bad")) {
        assert.equal(
          counterCalls.filter((call) => call.id === id && call.states > 0).length,
          1,
          `${id} called once with its states`,
        );
      }
      assert.deepEqual(runtime.deadLetters, []);
    } finally {
      failing.clear();
      await runtime.stop();
      await server.close();
    }
  });

  it("a failing address whose budget runs out becomes a dead letter; the others in its requests commit", async () => {
    const server = await recordingServer(() => handlers.announcing);
    const runtime = await startEngine(server.url, { failurePolicy: "dead-letter", callTimeoutMs: 300 });
    const ids = ["c0", "c1", "doomed", "c3"];
    failing.set("doomed", "always");
    try {
      await Promise.all(ids.map((id) => runtime.send(id, "only")));
      await until(() => runtime.deadLetters.length === 1 && runtime.egressed.length === 3, 10_000, "the dead letter");
      assert.deepEqual(runtime.deadLetters, ["doomed"]);
      for (const id of ["c0", "c1", "c3"])
        assert.deepEqual(runtime.stateOf("multi/counter", id), { count: 1, seen: "only;" });
      assert.deepEqual(runtime.stateOf("multi/counter", "doomed"), {});
      assert.ok(
        server.requests.some(
          (request) => request.multiAddress && request.calls.some((call) => call.id === "doomed" && call.states > 0),
        ),
      );
    } finally {
      failing.clear();
      await runtime.stop();
      await server.close();
    }
  });
});

describe("servers that do not announce multi-address requests", () => {
  it("get the standard protocol only, byte for byte: one ToFunction per POST with the standard headers", async () => {
    // An announcement of a version this runtime does not speak counts as none.
    let announced = "";
    const server = await recordingServer(() => (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", async () => {
        const result = await functions.invoke(Buffer.concat(chunks));
        assert.ok(result.ok);
        res.writeHead(200, {
          "content-type": "application/octet-stream",
          ...(announced === "" ? {} : { "eddy-multi-address": announced }),
        });
        res.end(result.body);
      });
    });
    const endpoint = httpEndpoint(server.url);
    const invoker = new HttpInvoker({ endpointFor: () => endpoint });
    try {
      const sent: Buffer[] = [];
      for (const version of ["", "2", "0, 2"]) {
        announced = version;
        for (let wave = 0; wave < 3; wave++) {
          const requests = Array.from({ length: 10 }, (_, index) =>
            stringRequest("multi/ping", `p${index}`, `${version}/${wave}`),
          );
          for (const request of requests) sent.push(Buffer.from(encodeToFunction(request)));
          const outcomes = await Promise.all(
            requests.map((request, index) =>
              invoker.invoke(target("multi/ping", `p${index}`), request, index % 2 === 0 ? TRACEPARENT : undefined),
            ),
          );
          assert.ok(outcomes.every((outcome) => outcome.ok));
        }
      }
      assert.equal(server.requests.length, sent.length);
      assert.deepEqual(
        server.requests.map((request) => request.body.toString("hex")).sort(),
        sent.map((body) => body.toString("hex")).sort(),
        "each body is the call's ToFunction, unchanged",
      );
      for (const request of server.requests) {
        const { host, connection, "content-length": length, traceparent, ...rest } = request.headers;
        assert.deepEqual(rest, {
          "content-type": "application/octet-stream",
          accept: "application/octet-stream",
          "user-agent": "eddy",
        });
        assert.equal(Number(length), request.body.length);
        assert.ok(traceparent === undefined || traceparent === TRACEPARENT);
      }
    } finally {
      await invoker.close();
      await server.close();
    }
  });

  it("a server that stops announcing is sent single requests again, and its calls still succeed", async () => {
    let announcing = true;
    const server = await recordingServer(() => handlers[announcing ? "announcing" : "standard"]);
    const endpoint = httpEndpoint(server.url);
    const invoker = new HttpInvoker({ endpointFor: () => endpoint }, { retryBaseMs: 5 });
    const wave = (name: string) =>
      Promise.all(
        Array.from({ length: 8 }, (_, index) =>
          invoker.invoke(target("multi/ping", `${name}${index}`), stringRequest("multi/ping", `${name}${index}`, name)),
        ),
      );
    try {
      assert.ok((await invoker.invoke(target("multi/ping", "first"), stringRequest("multi/ping", "first", "x"))).ok);
      assert.ok((await wave("shared")).every((outcome) => outcome.ok));
      assert.equal(server.requests.at(-1)?.multiAddress, true);
      // Replaced by a server that takes the standard protocol only (it answers 415 to the format).
      announcing = false;
      const before = server.requests.length;
      assert.ok((await wave("after")).every((outcome) => outcome.ok));
      assert.ok((await wave("later")).every((outcome) => outcome.ok));
      const since = server.requests.slice(before);
      assert.equal(
        since.filter((request) => request.multiAddress).length,
        1,
        "one refused multi-address request, then none",
      );
      assert.equal(since.filter((request) => !request.multiAddress).length, 16);
    } finally {
      await invoker.close();
      await server.close();
    }
  });
});

describe("multi-address requests from the HTTP invoker", () => {
  it("carry each call's traceparent in the call, signed as a whole like a single request", async () => {
    const signed = nodeHandler(functions, { signingKeys: "k1" });
    const server = await recordingServer(() => signed);
    const endpoint = { ...httpEndpoint(server.url), signingKey: "k1" };
    const invoker = new HttpInvoker({ endpointFor: () => endpoint });
    try {
      assert.ok((await invoker.invoke(target("multi/ping", "first"), stringRequest("multi/ping", "first", "x"))).ok);
      const traces = [TRACEPARENT, undefined, TRACEPARENT.replace("-01", "-00")];
      const outcomes = await Promise.all(
        traces.map((trace, index) =>
          invoker.invoke(target("multi/ping", `t${index}`), stringRequest("multi/ping", `t${index}`, "x"), trace),
        ),
      );
      assert.ok(outcomes.every((outcome) => outcome.ok));
      const shared = server.requests.at(-1);
      assert.equal(shared?.multiAddress, true);
      assert.deepEqual(
        shared?.calls.map((call) => call.traceparent),
        traces,
      );
      assert.equal(shared?.headers.traceparent, undefined, "no request-wide traceparent");
      const signature = shared?.headers["eddy-signature"];
      assert.equal(typeof signature, "string");
      assert.deepEqual(verifySignature(["k1"], signature as string, shared?.body ?? new Uint8Array(), Date.now()), {
        ok: true,
      });
    } finally {
      await invoker.close();
      await server.close();
    }
  });
});

describe("the attempt coalescer", () => {
  const attempt = (bytes: number, timeoutMs = 1_000): QueuedAttempt => ({
    target: target("multi/ping", String(bytes)),
    toFunction: new Uint8Array(bytes),
    traceparent: undefined,
    timeoutMs,
    settle: () => {},
    fail: () => {},
  });

  it("flushes what one event-loop iteration queued, per channel, in groups within the call and byte bounds", async () => {
    const sent: [string, number[]][] = [];
    const coalescer = new AttemptCoalescer<string>(
      (channel, group) => sent.push([channel, group.map((a) => a.toFunction.length)]),
      {
        callsMax: 3,
        bytesMax: 100,
      },
    );
    for (const bytes of [10, 11, 12, 13, 14]) coalescer.enqueue("a", attempt(bytes));
    coalescer.enqueue("b", attempt(1));
    for (const bytes of [60, 50, 200, 5]) coalescer.enqueue("c", attempt(bytes));
    await Promise.resolve();
    assert.deepEqual(sent, [], "nothing is sent before the event loop's I/O callbacks of this iteration are done");
    await new Promise(setImmediate);
    assert.deepEqual(sent, [
      ["a", [10, 11, 12]],
      ["a", [13, 14]],
      ["b", [1]],
      ["c", [60]],
      ["c", [50]],
      ["c", [200]],
      ["c", [5]],
    ]);
    coalescer.enqueue("a", attempt(7));
    await new Promise(setImmediate);
    assert.deepEqual(sent.at(-1), ["a", [7]], "the next iteration starts afresh");
  });

  it("gives a request the smallest budget left of its calls", () => {
    assert.equal(multiAddressRequest([attempt(1, 900), attempt(2, 40), attempt(3, 500)]).timeoutMs, 40);
  });

  it("fails every call of a request that failed as a whole, each retrying alone; a call's error fails only that call", () => {
    const group = [attempt(1), attempt(2)];
    const down = multiAddressOutcomes({ ok: false, reason: "connect ECONNREFUSED" }, group);
    assert.deepEqual(down, [
      { ok: false, reason: "connect ECONNREFUSED (a multi-address request of 2 calls)", alone: true },
      { ok: false, reason: "connect ECONNREFUSED (a multi-address request of 2 calls)", alone: true },
    ]);
    const reply = (statusCode: number, contentType: string, body: Uint8Array) =>
      ({ ok: true, statusCode, contentType, multiAddress: "1", body }) as const;
    const refused = multiAddressOutcomes(reply(500, "text/plain", Buffer.from("garbage")), group);
    assert.match(
      (refused[0] as { reason: string }).reason,
      /^HTTP 500: garbage \(a multi-address request of 2 calls\)$/,
    );
    const octets = multiAddressOutcomes(reply(200, "application/octet-stream", new Uint8Array()), group);
    assert.match(
      (octets[1] as { reason: string }).reason,
      /^reply has content type application\/octet-stream; expected/,
    );
    const short = multiAddressOutcomes(reply(200, MULTI_ADDRESS_CONTENT_TYPE, Buffer.from("0a020a00", "hex")), group);
    assert.match((short[1] as { reason: string }).reason, /the reply has 1 results for 2 calls/);
    assert.ok([...refused, ...octets, ...short].every((outcome) => !outcome.ok && outcome.alone === true));
    // One result a FromFunction (empty: success without effects), the other an error naming the address.
    const mixed = multiAddressOutcomes(
      reply(
        200,
        MULTI_ADDRESS_CONTENT_TYPE,
        encodeMultiAddressResponse([
          { ok: true, fromFunction: new Uint8Array() },
          { ok: false, error: "multi/ping (id 2) failed!" },
        ]),
      ),
      group,
    );
    assert.equal(mixed[0]?.ok, true);
    assert.deepEqual(mixed[1], { ok: false, reason: "the function failed!" });
  });
});
