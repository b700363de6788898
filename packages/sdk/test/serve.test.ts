// Every HTTP adapter, over real sockets: node serve(), Express (with and without
// express.raw() in front), the Fastify plugin and the fetch handler (behind a small
// node:http bridge). Each must answer a StateFun request with 200 octet-stream, turn
// bad input into a precise 4xx/5xx, and keep serving afterwards. Each also announces and
// answers Eddy's multi-address requests (several calls in one body), unless turned off.
import assert from "node:assert/strict";
import { createServer, type RequestListener } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import {
  decodeFromFunction,
  decodeMultiAddressResponse,
  encodeMultiAddressRequest,
  encodeToFunction,
  encodeTypedValue,
  MULTI_ADDRESS_CONTENT_TYPE,
} from "@eddy/protocol";
import {
  createEndpoint,
  egressMessage,
  fastifyPlugin,
  fetchHandler,
  nodeHandler,
  serve,
  statefulFunction,
  types,
} from "@eddy/sdk";
import express from "express";
import Fastify from "fastify";
import { Agent, request } from "undici";

const MAX_BODY_BYTES = 4096;

type FetchBody = RequestInit["body"];

const echo = statefulFunction({
  typename: "test/echo",
  handle(ctx, message) {
    const text = message.as(types.string);
    if (text === "boom") throw new Error("user code exploded on purpose");
    ctx.send(egressMessage("test/out", `echo: ${text}`));
  },
});
const endpoint = createEndpoint([echo]);

function invocationOf(typename: string, text: string, id = "1"): Uint8Array {
  const [namespace = "", type = ""] = typename.split("/");
  const argument = { typename: types.string.typename, hasValue: true, value: types.string.serialize(text) };
  return encodeToFunction({ invocation: { target: { namespace, type, id }, invocations: [{ argument }] } });
}

/** Each result of a multi-address reply: the echoed egress text, or the call's error. */
function multiAddressOutcomes(body: Uint8Array): ({ echo: string } | { error: string })[] {
  const decoded = decodeMultiAddressResponse(body, 100);
  assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
  return decoded.value.map((result) => {
    if (!result.ok) return { error: result.error };
    const reply = decodeFromFunction(result.fromFunction);
    assert.ok(reply.ok);
    const argument = reply.value.invocationResult?.outgoingEgresses[0]?.argument;
    return { echo: types.string.deserialize(argument?.value ?? new Uint8Array(0)) };
  });
}

const agent = new Agent({ keepAliveTimeout: 1000 });
after(() => agent.close());

interface Reply {
  readonly status: number;
  readonly contentType: string;
  readonly allow: string | undefined;
  /** The eddy-multi-address announcement. */
  readonly announced: string | undefined;
  readonly body: Buffer;
  readonly text: string;
}

type Body = Uint8Array | string | AsyncIterable<Uint8Array> | undefined;

async function call(url: string, options: { method?: string; body?: Body; contentType?: string } = {}) {
  const headers: Record<string, string> = {};
  if (options.contentType !== undefined) headers["content-type"] = options.contentType;
  else if (options.body !== undefined) headers["content-type"] = "application/octet-stream";
  const response = await request(url, {
    method: (options.method ?? "POST") as "POST",
    headers,
    body: options.body as Uint8Array,
    dispatcher: agent,
    // A handler that never answers fails the test instead of stalling it.
    headersTimeout: 5000,
  });
  const body = Buffer.from(await response.body.arrayBuffer());
  const header = (name: string) => {
    const value = response.headers[name];
    return Array.isArray(value) ? value.join(", ") : value;
  };
  return {
    status: response.statusCode,
    contentType: header("content-type") ?? "",
    allow: header("allow"),
    announced: header("eddy-multi-address"),
    body,
    text: body.toString("utf8"),
  } satisfies Reply;
}

/** POSTs a valid request and checks the echo comes back: the server still serves. */
async function assertServes(url: string, text = "hello"): Promise<void> {
  const reply = await call(url, { body: invocationOf("test/echo", text) });
  assert.equal(reply.status, 200, reply.text);
  assert.equal(reply.contentType, "application/octet-stream");
  const decoded = decodeFromFunction(reply.body);
  assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
  const egress = decoded.value.invocationResult?.outgoingEgresses ?? [];
  assert.equal(egress.length, 1);
  assert.equal(`${egress[0]?.egressNamespace}/${egress[0]?.egressType}`, "test/out");
  assert.equal(types.string.deserialize(egress[0]?.argument?.value ?? new Uint8Array(0)), `echo: ${text}`);
}

async function* chunked(total: number): AsyncIterable<Uint8Array> {
  for (let sent = 0; sent < total; sent += 1024) yield new Uint8Array(1024).fill(0x41);
}

interface Running {
  readonly url: string;
  close(): Promise<void>;
}

async function listen(listener: RequestListener, path: string): Promise<Running> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/**
 * The smallest useful node:http -> fetch bridge. The body stream keeps draining the
 * socket after the handler cancels it, so a 413 can still be written back.
 */
function fetchBridge(handler: (request: Request) => Promise<Response>): RequestListener {
  return (req, res) => {
    const headers = new Headers();
    for (let index = 0; index < req.rawHeaders.length; index += 2) {
      headers.append(req.rawHeaders[index] as string, req.rawHeaders[index + 1] as string);
    }
    let cancelled = false;
    const body =
      req.method === "GET" || req.method === "HEAD"
        ? null
        : new ReadableStream<Uint8Array>({
            start(controller) {
              req.on("data", (chunk: Buffer) => cancelled || controller.enqueue(new Uint8Array(chunk)));
              req.on("end", () => cancelled || controller.close());
              req.on("error", (error) => cancelled || controller.error(error));
            },
            cancel() {
              cancelled = true;
            },
          });
    const init: RequestInit & { duplex: "half" } = { method: req.method ?? "GET", headers, body, duplex: "half" };
    handler(new Request(`http://127.0.0.1${req.url}`, init))
      .then(async (response) => {
        res.writeHead(response.status, Object.fromEntries(response.headers));
        res.end(new Uint8Array(await response.arrayBuffer()));
      })
      .catch((error: unknown) => res.destroy(error as Error));
  };
}

const adapters: { readonly name: string; start(): Promise<Running> }[] = [
  {
    name: "serve() (node:http)",
    start: () => serve(endpoint, { port: 0, host: "127.0.0.1", maxBodyBytes: MAX_BODY_BYTES }),
  },
  {
    name: "nodeHandler() as Express middleware mounted at /statefun",
    start() {
      const app = express();
      app.use("/statefun", nodeHandler(endpoint, { maxBodyBytes: MAX_BODY_BYTES }));
      return listen(app, "/statefun");
    },
  },
  {
    name: "nodeHandler() behind express.raw() at /statefun",
    start() {
      const app = express();
      // raw() parses application/octet-stream up to its own 100 kB limit; the handler then applies its own.
      app.use("/statefun", express.raw(), nodeHandler(endpoint, { maxBodyBytes: MAX_BODY_BYTES }));
      return listen(app, "/statefun");
    },
  },
  {
    name: "fastifyPlugin() registered at /statefun",
    async start() {
      const app = Fastify();
      await app.register(fastifyPlugin(endpoint, { path: "/statefun", maxBodyBytes: MAX_BODY_BYTES }));
      const base = await app.listen({ host: "127.0.0.1", port: 0 });
      return { url: `${base}/statefun`, close: () => app.close() };
    },
  },
  {
    name: "fetchHandler() behind a node:http bridge",
    start: () => listen(fetchBridge(fetchHandler(endpoint, { maxBodyBytes: MAX_BODY_BYTES })), "/statefun"),
  },
];

for (const adapter of adapters) {
  describe(adapter.name, () => {
    let server: Running;
    before(async () => {
      server = await adapter.start();
    });
    after(() => server.close());

    it("answers a valid request with 200 application/octet-stream and a FromFunction that decodes", async () => {
      await assertServes(server.url, "first");
      await assertServes(server.url, "second");
    });

    it("answers a body that is not a ToFunction with 400 saying so, then keeps serving", async () => {
      for (const body of ['{"not":"protobuf"}', "hello", encodeTypedValue({ typename: "a/b", hasValue: true })]) {
        const reply = await call(server.url, { body });
        assert.equal(reply.status, 400, reply.text);
        assert.match(reply.text, /request body is not a ToFunction/);
        await assertServes(server.url);
      }
    });

    it("answers an empty body with 400: there is no invocation batch", async () => {
      const reply = await call(server.url, { body: new Uint8Array(0) });
      assert.equal(reply.status, 400, reply.text);
      assert.match(reply.text, /no invocation batch/);
      await assertServes(server.url);
    });

    it("answers a truncated ToFunction with 400", async () => {
      const valid = invocationOf("test/echo", "cut short");
      const reply = await call(server.url, { body: valid.subarray(0, valid.length - 4) });
      assert.equal(reply.status, 400, reply.text);
      assert.match(reply.text, /not a valid ToFunction/);
      await assertServes(server.url);
    });

    it("answers a function type it does not serve with 404 naming the type", async () => {
      const reply = await call(server.url, { body: invocationOf("test/nope", "x") });
      assert.equal(reply.status, 404, reply.text);
      assert.match(reply.text, /unknown function type test\/nope; this endpoint serves test\/echo/);
      await assertServes(server.url);
    });

    it("answers an exception in user code with 500 and the error text, then keeps serving", async () => {
      const reply = await call(server.url, { body: invocationOf("test/echo", "boom") });
      assert.equal(reply.status, 500, reply.text);
      assert.match(reply.contentType, /^text\/plain/);
      assert.match(reply.text, /test\/echo \(id 1\) failed: user code exploded on purpose/);
      await assertServes(server.url);
    });

    it("answers GET with 405 and Allow: POST", async () => {
      const reply = await call(server.url, { method: "GET" });
      assert.equal(reply.status, 405, reply.text);
      assert.equal(reply.allow, "POST");
      await assertServes(server.url);
    });

    it("answers a body over maxBodyBytes with 413, with or without a content-length, then keeps serving", async () => {
      const declared = await call(server.url, { body: new Uint8Array(MAX_BODY_BYTES + 1) });
      assert.equal(declared.status, 413, declared.text);
      await assertServes(server.url);
      const streamed = await call(server.url, { body: chunked(4 * MAX_BODY_BYTES) });
      assert.equal(streamed.status, 413, streamed.text);
      await assertServes(server.url);
      // Exactly at the limit is still accepted (and then judged on its content).
      const atLimit = await call(server.url, { body: new Uint8Array(MAX_BODY_BYTES) });
      assert.equal(atLimit.status, 400, atLimit.text);
    });

    it("reads the body as bytes whatever the content type says", async () => {
      for (const contentType of ["text/plain", "application/json", "application/x-protobuf"]) {
        const reply = await call(server.url, { body: invocationOf("test/echo", contentType), contentType });
        assert.equal(reply.status, 200, `${contentType}: ${reply.text}`);
        const decoded = decodeFromFunction(reply.body);
        assert.ok(decoded.ok);
        const argument = decoded.value.invocationResult?.outgoingEgresses[0]?.argument;
        assert.equal(types.string.deserialize(argument?.value ?? new Uint8Array(0)), `echo: ${contentType}`);
      }
    });

    it("serves concurrent requests for different ids", async () => {
      await Promise.all(Array.from({ length: 20 }, (_, index) => assertServes(server.url, `parallel ${index}`)));
    });

    it("announces multi-address requests on its replies, failures included", async () => {
      assert.equal((await call(server.url, { body: invocationOf("test/echo", "x") })).announced, "1");
      assert.equal((await call(server.url, { body: invocationOf("test/nope", "x") })).announced, "1");
    });

    it("answers a multi-address request with every call's outcome in order, a failing call as its error only", async () => {
      const reply = await call(server.url, {
        contentType: MULTI_ADDRESS_CONTENT_TYPE,
        body: encodeMultiAddressRequest([
          { toFunction: invocationOf("test/echo", "a", "1") },
          {
            toFunction: invocationOf("test/echo", "boom", "2"),
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
          },
          { toFunction: invocationOf("test/nope", "x", "3") },
          { toFunction: new Uint8Array([1, 2, 3]) },
          { toFunction: invocationOf("test/echo", "b", "4") },
        ]),
      });
      assert.equal(reply.status, 200, reply.text);
      assert.equal(reply.contentType, MULTI_ADDRESS_CONTENT_TYPE);
      const outcomes = multiAddressOutcomes(reply.body);
      assert.equal(outcomes.length, 5);
      assert.deepEqual(outcomes[0], { echo: "echo: a" });
      assert.match(
        (outcomes[1] as { error: string }).error,
        /^test\/echo \(id 2\) failed: user code exploded on purpose/,
      );
      assert.match((outcomes[2] as { error: string }).error, /^unknown function type test\/nope/);
      assert.match((outcomes[3] as { error: string }).error, /^request body is not a ToFunction/);
      assert.deepEqual(outcomes[4], { echo: "echo: b" });
      await assertServes(server.url);
    });

    it("answers a malformed multi-address body with 400, and one over the call bound with 413", async () => {
      const malformed = await call(server.url, {
        contentType: MULTI_ADDRESS_CONTENT_TYPE,
        body: new Uint8Array([0x0a, 0x05, 0x0a]),
      });
      assert.equal(malformed.status, 400, malformed.text);
      assert.match(malformed.text, /not a valid multi-address request \(3 bytes\)/);
      const many = encodeMultiAddressRequest(Array.from({ length: 257 }, () => ({ toFunction: new Uint8Array(0) })));
      assert.ok(many.length <= MAX_BODY_BYTES);
      const tooMany = await call(server.url, { contentType: MULTI_ADDRESS_CONTENT_TYPE, body: many });
      assert.equal(tooMany.status, 413, tooMany.text);
      assert.match(tooMany.text, /a multi-address request holds more than 256 calls, the most accepted/);
      await assertServes(server.url);
    });
  });
}

describe("an endpoint with multiAddress: false", () => {
  let server: Running;
  before(async () => {
    server = await serve(endpoint, { port: 0, host: "127.0.0.1", multiAddress: false });
  });
  after(() => server.close());

  it("does not announce multi-address requests, and refuses them with 415", async () => {
    const single = await call(server.url, { body: invocationOf("test/echo", "x") });
    assert.equal(single.status, 200);
    assert.equal(single.announced, undefined);
    const multi = await call(server.url, {
      contentType: MULTI_ADDRESS_CONTENT_TYPE,
      body: encodeMultiAddressRequest([{ toFunction: invocationOf("test/echo", "x") }]),
    });
    assert.equal(multi.status, 415, multi.text);
    assert.match(multi.text, /is turned off at this endpoint \(multiAddress: false\)/);
    assert.equal(multi.announced, undefined);
  });
});

describe("nodeHandler() behind Express parsers that consume the body", () => {
  let server: Running;
  before(async () => {
    const app = express();
    app.use(express.json(), express.text());
    app.use("/statefun", nodeHandler(endpoint));
    server = await listen(app, "/statefun");
  });
  after(() => server.close());

  it("answers at once with 500 saying which parser got there first, instead of waiting forever", async () => {
    for (const [contentType, parsedAs] of [
      ["application/json", "object"],
      ["text/plain", "string"],
    ] as const) {
      const body = contentType === "application/json" ? '{"a":1}' : "some text";
      const reply = await call(server.url, { body, contentType });
      assert.equal(reply.status, 500, reply.text);
      assert.match(reply.text, new RegExp(`already read by another body parser \\(req.body is ${parsedAs}\\)`));
    }
    // application/octet-stream passes those parsers untouched.
    await assertServes(server.url);
  });
});

describe("fastifyPlugin() encapsulation", () => {
  it("leaves the body parsers of the rest of the app alone", async () => {
    const app = Fastify();
    await app.register(fastifyPlugin(endpoint, { path: "/statefun" }));
    app.post("/json", async (req) => ({ parsed: req.body }));
    try {
      const base = await app.listen({ host: "127.0.0.1", port: 0 });
      const reply = await call(`${base}/json`, { body: '{"a":1}', contentType: "application/json" });
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual(JSON.parse(reply.text), { parsed: { a: 1 } });
      await assertServes(`${base}/statefun`);
    } finally {
      await app.close();
    }
  });
});

describe("fetchHandler() called directly", () => {
  const handle = fetchHandler(endpoint, { maxBodyBytes: MAX_BODY_BYTES });
  const post = (body: FetchBody, headers: Record<string, string> = {}) =>
    handle(
      new Request("http://functions.test/statefun", { method: "POST", body, headers, duplex: "half" } as RequestInit),
    );

  it("answers a valid request with 200 application/octet-stream", async () => {
    const response = await post(invocationOf("test/echo", "direct") as Uint8Array<ArrayBuffer>);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/octet-stream");
    const decoded = decodeFromFunction(new Uint8Array(await response.arrayBuffer()));
    assert.ok(decoded.ok);
    const argument = decoded.value.invocationResult?.outgoingEgresses[0]?.argument;
    assert.equal(types.string.deserialize(argument?.value ?? new Uint8Array(0)), "echo: direct");
  });

  it("maps each failure to its status and message", async () => {
    const cases: [FetchBody, number, RegExp][] = [
      ["not protobuf at all", 400, /request body is not a ToFunction/],
      [null, 400, /no invocation batch/],
      [invocationOf("test/echo", "cut").subarray(0, 10) as Uint8Array<ArrayBuffer>, 400, /not a valid ToFunction/],
      [invocationOf("test/nope", "x") as Uint8Array<ArrayBuffer>, 404, /unknown function type test\/nope/],
      [invocationOf("test/echo", "boom") as Uint8Array<ArrayBuffer>, 500, /user code exploded on purpose/],
    ];
    for (const [body, status, text] of cases) {
      const response = await post(body);
      assert.equal(response.status, status);
      assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
      assert.match(await response.text(), text);
    }
  });

  it("answers GET with 405 and Allow: POST", async () => {
    const response = await handle(new Request("http://functions.test/statefun"));
    assert.equal(response.status, 405);
    assert.equal(response.headers.get("allow"), "POST");
  });

  it("refuses a declared content-length over the limit without reading the body", async () => {
    let pulled = false;
    const body = new ReadableStream(
      {
        pull() {
          pulled = true;
        },
      },
      { highWaterMark: 0 },
    );
    const init = {
      method: "POST",
      body,
      duplex: "half",
      headers: { "content-length": String(MAX_BODY_BYTES + 1) },
    } as RequestInit;
    const response = await handle(new Request("http://functions.test/statefun", init));
    assert.equal(response.status, 413);
    assert.equal(pulled, false);
  });

  it("stops reading an endless body once it passes the limit (413, no unbounded buffering)", async () => {
    let chunksPulled = 0;
    let cancelled = false;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        chunksPulled++;
        // A handler that buffers everything would read forever (and starve the event loop); fail it instead.
        if (chunksPulled > 1000) controller.error(new Error("the handler kept reading far past the limit"));
        else controller.enqueue(new Uint8Array(1024));
      },
      cancel() {
        cancelled = true;
      },
    });
    const response = await post(endless as unknown as FetchBody);
    assert.equal(response.status, 413);
    assert.match(await response.text(), new RegExp(`limit of ${MAX_BODY_BYTES} bytes`));
    assert.ok(chunksPulled <= MAX_BODY_BYTES / 1024 + 2, `pulled ${chunksPulled} chunks`);
    assert.equal(cancelled, true);
  });
});
