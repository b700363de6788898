// The HTTP ingress in a cluster: two PlaygroundIngress instances in this process, each over a
// fake RequestSink, with routings that point at each other, stand for two workers. What a
// request for an instance the other worker runs turns into (forwarded as it came, the answer
// relayed as it came back), and what is never forwarded: a forwarded request, a body over the
// limit, a request without the bearer token, headers outside the lists. No Kafka.
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { afterEach, describe, it } from "node:test";
import type { TypedValue } from "@eddy/protocol";
import { freePort } from "../../../test/support/ports.ts";
import type { Address } from "../src/core/address.ts";
import type { Envelope } from "../src/core/records.ts";
import type { AcceptOptions, AcceptResult, ReplyLookup, RequestSink } from "../src/engine/ports.ts";
import { closeServer, listenOn } from "../src/io/http-server.ts";
import { type IngressRouting, MINTED_REQUEST_ID } from "../src/io/playground/forwarding.ts";
import { PlaygroundIngress, type PlaygroundIngressOptions } from "../src/io/playground/ingress.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A RequestSink that records what reaches it and answers as the test sets it up. */
class RecordingSink implements RequestSink {
  readonly accepted: { envelope: Envelope; options: AcceptOptions | undefined }[] = [];
  readonly awaited: { requestId: string; waitMs: number }[] = [];
  /** Replies by request id (absent: unknown). */
  readonly replies = new Map<string, ReplyLookup>();
  /** The request id handed out for the next request that expects a reply. */
  nextRequestId = "request-1";

  accept(envelope: Envelope, options?: AcceptOptions): Promise<AcceptResult> {
    this.accepted.push({ envelope, options });
    if (options?.expectReply === true) {
      return Promise.resolve({ ok: true, duplicate: false, requestId: this.nextRequestId });
    }
    return Promise.resolve({ ok: true, duplicate: false });
  }

  lookupReply(requestId: string): ReplyLookup {
    return this.replies.get(requestId) ?? { state: "unknown" };
  }

  awaitReply(requestId: string, waitMs: number): Promise<ReplyLookup> {
    this.awaited.push({ requestId, waitMs });
    return Promise.resolve(this.lookupReply(requestId));
  }

  /** The one message this sink took (fails the test unless exactly one reached it). */
  only(): { envelope: Envelope; options: AcceptOptions | undefined } {
    assert.equal(this.accepted.length, 1, `${this.accepted.length} messages reached the sink`);
    return this.accepted[0] as { envelope: Envelope; options: AcceptOptions | undefined };
  }

  /** Whether anything at all reached this sink. */
  get touched(): boolean {
    return this.accepted.length > 0 || this.awaited.length > 0;
  }
}

/** A routing the test steers: where targets and requests go, and what it was asked. */
class SteeredRouting implements IngressRouting {
  target: string | null | undefined = undefined;
  readonly requests = new Map<string, string | null>();
  readonly targetsAsked: Address[] = [];
  readonly requestsAsked: string[] = [];
  /** The owner of every request id not in `requests` (undefined: this worker). */
  otherRequests: string | null | undefined = undefined;

  ownerOfTarget(target: Address): string | null | undefined {
    this.targetsAsked.push(target);
    return this.target;
  }

  ownerOfRequest(requestId: string): string | null | undefined {
    this.requestsAsked.push(requestId);
    return this.requests.has(requestId) ? this.requests.get(requestId) : this.otherRequests;
  }
}

interface Worker {
  readonly url: string;
  readonly sink: RecordingSink;
  readonly routing: SteeredRouting;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function startWorker(options: Partial<PlaygroundIngressOptions> = {}): Promise<Worker> {
  const sink = new RecordingSink();
  const routing = new SteeredRouting();
  const ingress = new PlaygroundIngress(sink, {
    port: 0,
    host: "127.0.0.1",
    maxBodyBytes: 1 << 20,
    routing,
    ...options,
  });
  const url = await ingress.listen();
  closers.push(() => ingress.close());
  return { url, sink, routing };
}

/** Two workers, A (where clients send) and B; each routing points at the other unless a test says otherwise. */
async function twoWorkers(options: Partial<PlaygroundIngressOptions> = {}): Promise<{ a: Worker; b: Worker }> {
  const a = await startWorker(options);
  const b = await startWorker(options);
  return { a, b };
}

interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/**
 * A stand-in owner that records the raw requests it gets and answers with the given status,
 * headers and body: shows exactly which headers a forward carries and which of an answer's
 * headers are relayed.
 */
async function recordingOwner(answer: {
  status: number;
  headers: Record<string, string>;
  body: string;
}): Promise<{ url: string; seen: SeenRequest[] }> {
  const seen: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      res.writeHead(answer.status, { ...answer.headers, "content-length": Buffer.byteLength(answer.body) });
      res.end(answer.body);
    });
  });
  const url = await listenOn(server, 0, "127.0.0.1");
  closers.push(() => closeServer(server));
  return { url, seen };
}

function typedValue(typename: string, text: string): TypedValue {
  return { typename, hasValue: true, value: encoder.encode(text) };
}

describe("a request for an instance another worker runs", () => {
  it("is forwarded to the owner, whose sink sees the message, and the owner's answer comes back", async () => {
    const { a, b } = await twoWorkers();
    a.routing.target = b.url;
    const response = await fetch(`${a.url}example/greeter/alice`, {
      method: "PUT",
      headers: { "content-type": "application/vnd.example/Greet", "idempotency-key": "key-7" },
      body: '{"name":"alice"}',
    });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "accepted\n");
    assert.deepEqual(a.routing.targetsAsked, [{ typename: "example/greeter", id: "alice" }]);
    assert.equal(a.sink.touched, false);
    const { envelope, options } = b.sink.only();
    assert.deepEqual(envelope.target, { typename: "example/greeter", id: "alice" });
    assert.equal(envelope.argument.typename, "example/Greet");
    assert.equal(decoder.decode(envelope.argument.value), '{"name":"alice"}');
    assert.equal(options?.idempotencyKey, "key-7");
    assert.equal(options?.expectReply, undefined);
  });

  it("without a Content-Type reaches the owner as its bytes under the string typename, as if sent there", async () => {
    const { a, b } = await twoWorkers();
    a.routing.target = b.url;
    const response = await fetch(`${a.url}example/greeter/bob`, {
      method: "POST",
      // Bytes, not a string: fetch gives a string body a text/plain Content-Type.
      body: encoder.encode("plain bytes"),
    });
    assert.equal(response.status, 200);
    const { argument } = b.sink.only().envelope;
    // What the owner would have read had the client sent it there: bytes under StateFun's string typename.
    assert.equal(argument.typename, "io.statefun.types/string");
    assert.equal(decoder.decode(argument.value), "plain bytes");
  });

  it("with Prefer: wait gets the owner's reply, with its content-type and the headers that name it", async () => {
    const { a, b } = await twoWorkers();
    a.routing.target = b.url;
    b.sink.nextRequestId = "request-42";
    b.sink.replies.set("request-42", { state: "answered", value: typedValue("example/Greeting", '{"hello":"alice"}') });
    const response = await fetch(`${a.url}example/greeter/alice`, {
      method: "PUT",
      headers: { "content-type": "application/vnd.example/Greet", prefer: "wait=5" },
      body: "{}",
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/json");
    assert.equal(response.headers.get("eddy-typename"), "example/Greeting");
    assert.equal(response.headers.get("content-location"), "/replies/request-42");
    assert.equal(await response.text(), '{"hello":"alice"}');
    assert.equal(b.sink.accepted[0]?.options?.expectReply, true);
    // The owner waited for the reply as long as the client asked (less what already passed).
    assert.equal(b.sink.awaited.length, 1);
    const waitedMs = b.sink.awaited[0]?.waitMs ?? 0;
    assert.ok(waitedMs > 4000 && waitedMs <= 5000, `the owner waited ${waitedMs} ms for the reply`);
    assert.equal(a.sink.touched, false);
  });

  it("with no reply yet gets 202 with the owner's Location, which polled at the first worker reaches the owner", async () => {
    const { a, b } = await twoWorkers();
    a.routing.target = b.url;
    // An id that must be %-escaped in the Location: the first worker asks its routing about the id itself.
    const requestId = "request 9:x";
    b.sink.nextRequestId = requestId;
    b.sink.replies.set(requestId, { state: "pending" });
    const first = await fetch(`${a.url}example/greeter/carol`, {
      method: "PUT",
      headers: { prefer: "wait=0" },
      body: "hi",
    });
    assert.equal(first.status, 202);
    const location = first.headers.get("location");
    assert.equal(location, `/replies/${encodeURIComponent(requestId)}`);
    await first.text();

    a.routing.requests.set(requestId, b.url);
    // The draws for an id of b's to forward the request with (none: the routing knows none).
    a.routing.requestsAsked.length = 0;
    b.sink.replies.set(requestId, { state: "answered", value: typedValue("example/Greeting", '["hi carol"]') });
    const poll = await fetch(new URL(location as string, a.url), { headers: { prefer: "wait=2" } });
    assert.equal(poll.status, 200);
    assert.equal(await poll.text(), '["hi carol"]');
    assert.equal(poll.headers.get("eddy-typename"), "example/Greeting");
    assert.deepEqual(a.routing.requestsAsked, [requestId]);
    assert.equal(a.sink.touched, false);
    assert.deepEqual(
      b.sink.awaited.map(({ requestId: id }) => id),
      [requestId, requestId],
    );
    // The poll's own Prefer: wait reached the owner.
    assert.equal(b.sink.awaited[1]?.waitMs, 2000);
  });

  it("polled while the request's partition is being restored: 503 with Retry-After, never a 404", async () => {
    const { a } = await twoWorkers();
    a.sink.replies.set("request-moving", { state: "elsewhere" });
    const poll = await fetch(`${a.url}replies/request-moving`);
    assert.equal(poll.status, 503);
    assert.equal(poll.headers.get("retry-after"), "1");
    assert.match(await poll.text(), /request-moving: its partition is moving/);
  });

  it("polled for a reply the owner does not know gets the owner's 404", async () => {
    const { a, b } = await twoWorkers();
    a.routing.requests.set("request-gone", b.url);
    const poll = await fetch(`${a.url}replies/request-gone`);
    assert.equal(poll.status, 404);
    assert.match(await poll.text(), /no request request-gone/);
    assert.deepEqual(
      b.sink.awaited.map(({ requestId }) => requestId),
      ["request-gone"],
    );
    assert.equal(a.sink.touched, false);
  });
});

describe("what is never forwarded", () => {
  it("a forwarded request is taken where it arrives even when that worker's routing names another: one hop", async () => {
    const { a, b } = await twoWorkers();
    // Both believe the other runs it (ownership moving): without the mark they would bounce it forever.
    a.routing.target = b.url;
    b.routing.target = a.url;
    const response = await fetch(`${a.url}example/greeter/dave`, {
      method: "PUT",
      body: "once",
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "accepted\n");
    assert.equal(a.sink.touched, false);
    assert.equal(b.sink.accepted.length, 1);
  });

  it("a request that arrives marked as forwarded is taken at the first worker", async () => {
    const { a, b } = await twoWorkers();
    a.routing.target = b.url;
    const response = await fetch(`${a.url}example/greeter/erin`, {
      method: "PUT",
      headers: { "eddy-forwarded": "1" },
      body: "here",
    });
    assert.equal(response.status, 200);
    assert.equal(a.sink.accepted.length, 1);
    assert.equal(b.sink.touched, false);
  });

  it("while nobody owns the instance: 503 with Retry-After, nothing taken anywhere", async () => {
    const { a, b } = await twoWorkers();
    a.routing.target = null;
    const response = await fetch(`${a.url}example/greeter/frank`, { method: "PUT", body: "x" });
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("retry-after"), "1");
    // Says the instance is between workers, not that some worker failed to answer.
    assert.match(await response.text(), /moving this instance/);
    a.routing.requests.set("request-1", null);
    const poll = await fetch(`${a.url}replies/request-1`);
    assert.equal(poll.status, 503);
    assert.equal(poll.headers.get("retry-after"), "1");
    assert.match(await poll.text(), /moving this instance/);
    assert.equal(a.sink.touched, false);
    assert.equal(b.sink.touched, false);
  });

  it("to an owner nobody answers at: 503 with Retry-After naming it, nothing taken", async () => {
    const { a, b } = await twoWorkers();
    const deadUrl = `http://127.0.0.1:${await freePort()}/`;
    a.routing.target = deadUrl;
    const response = await fetch(`${a.url}example/greeter/gina`, { method: "PUT", body: "x" });
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("retry-after"), "1");
    const text = await response.text();
    assert.ok(text.includes(deadUrl), text);
    assert.equal(a.sink.touched, false);
    assert.equal(b.sink.touched, false);
  });

  it("a request-reply without a key goes with an id whose replies the owner keeps, which the owner takes as the request's", async () => {
    const { a, b } = await twoWorkers();
    a.routing.target = b.url;
    a.routing.otherRequests = b.url;
    const response = await fetch(`${a.url}example/greeter/hana`, {
      method: "PUT",
      headers: { prefer: "wait=0" },
      body: "x",
    });
    await response.text();
    const { options } = b.sink.only();
    assert.match(options?.requestId ?? "", MINTED_REQUEST_ID);
    assert.equal(options?.expectReply, true);
    assert.ok(a.routing.requestsAsked.includes(options?.requestId as string), "the id was one the routing gave to b");
  });

  it("a request-reply with a key goes without one: its client sends it again with the key", async () => {
    const { a, b } = await twoWorkers();
    a.routing.target = b.url;
    a.routing.otherRequests = b.url;
    const response = await fetch(`${a.url}example/greeter/ines`, {
      method: "PUT",
      headers: { prefer: "wait=0", "idempotency-key": "k-1" },
      body: "x",
    });
    await response.text();
    assert.equal(b.sink.only().options?.requestId, undefined);
  });

  it("a request-reply without a key to an owner nobody answers at: 202 with the Location of its id, to poll wherever its partition goes", async () => {
    const { a, b } = await twoWorkers();
    const deadUrl = `http://127.0.0.1:${await freePort()}/`;
    a.routing.target = deadUrl;
    a.routing.otherRequests = deadUrl;
    const response = await fetch(`${a.url}example/greeter/jo`, {
      method: "PUT",
      headers: { prefer: "wait=1" },
      body: "x",
    });
    assert.equal(response.status, 202);
    const text = await response.text();
    assert.ok(text.includes(deadUrl) && text.includes("404"), text);
    const location = response.headers.get("location") ?? "";
    assert.match(decodeURIComponent(location.slice("/replies/".length)), MINTED_REQUEST_ID);
    assert.equal(a.sink.touched, false);
    assert.equal(b.sink.touched, false);
  });

  it("a request id a client sends is not taken: only a forwarding worker's is", async () => {
    const { a } = await twoWorkers();
    const response = await fetch(`${a.url}example/greeter/kim`, {
      method: "PUT",
      headers: { prefer: "wait=0", "eddy-request-id": "mxbzpw1k.bb209b35-115d-49c3-b8da-0ef8524eb1b0" },
      body: "x",
    });
    await response.text();
    assert.equal(a.sink.only().options?.requestId, undefined);
  });

  it("an owner that drops the connection in the middle of its answer: 503 with Retry-After naming it", async () => {
    const { a } = await twoWorkers();
    // Headers promise 100 bytes; 5 come, then the connection is gone (the owner died answering).
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "text/plain", "content-length": "100" });
        res.write("accep", () => res.destroy());
      });
    });
    const ownerUrl = await listenOn(server, 0, "127.0.0.1");
    closers.push(() => closeServer(server));
    a.routing.target = ownerUrl;
    const response = await fetch(`${a.url}example/greeter/hank`, { method: "PUT", body: "x" });
    const text = await response.text();
    assert.equal(response.status, 503, text);
    assert.equal(response.headers.get("retry-after"), "1");
    assert.ok(text.includes(ownerUrl), text);
    assert.equal(a.sink.touched, false);
  });

  it("a body over the limit: 413 at the first worker, before anything is forwarded", async () => {
    const { a, b } = await twoWorkers({ maxBodyBytes: 64 });
    a.routing.target = b.url;
    const withLength = await fetch(`${a.url}example/greeter/ivan`, { method: "PUT", body: "x".repeat(65) });
    assert.equal(withLength.status, 413);
    await withLength.text();
    // Without a Content-Length the limit is found while reading: still refused before any forward.
    const chunked = await fetch(`${a.url}example/greeter/ivan`, {
      method: "PUT",
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(encoder.encode("y".repeat(40)));
          controller.enqueue(encoder.encode("y".repeat(40)));
          controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    assert.equal(chunked.status, 413);
    await chunked.text();
    assert.deepEqual(a.routing.targetsAsked, []);
    assert.equal(a.sink.touched, false);
    assert.equal(b.sink.touched, false);
    // At the limit exactly it goes through.
    const atLimit = await fetch(`${a.url}example/greeter/ivan`, {
      method: "PUT",
      body: encoder.encode("z".repeat(64)),
    });
    assert.equal(atLimit.status, 200);
    assert.equal(b.sink.accepted[0]?.envelope.argument.value.length, 64);
  });

  it("with a bearer token: the client's Authorization reaches the owner; without it, 401 at the first worker", async () => {
    const { a, b } = await twoWorkers({ token: "s3cret" });
    a.routing.target = b.url;
    a.routing.requests.set("request-1", b.url);
    b.sink.replies.set("request-1", { state: "pending" });
    const allowed = await fetch(`${a.url}example/greeter/judy`, {
      method: "PUT",
      headers: { authorization: "Bearer s3cret" },
      body: "x",
    });
    // The owner checks the token too: a 200 means the forward carried it.
    assert.equal(allowed.status, 200, await allowed.text());
    assert.equal(b.sink.accepted.length, 1);
    const allowedPoll = await fetch(`${a.url}replies/request-1`, { headers: { authorization: "Bearer s3cret" } });
    assert.equal(allowedPoll.status, 202, await allowedPoll.text());

    const refused = await fetch(`${a.url}example/greeter/judy`, { method: "PUT", body: "x" });
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get("www-authenticate"), 'Bearer realm="eddy"');
    await refused.text();
    const wrong = await fetch(`${a.url}replies/request-1`, { headers: { authorization: "Bearer guess" } });
    assert.equal(wrong.status, 401);
    await wrong.text();
    assert.equal(b.sink.accepted.length, 1);
    assert.equal(b.sink.awaited.length, 1);
    assert.equal(a.routing.targetsAsked.length, 1);
    assert.equal(a.routing.requestsAsked.length, 1);
    assert.equal(a.sink.touched, false);
  });

  it("an owner that refuses the token (workers rotating it) is relayed as its 401 with WWW-Authenticate", async () => {
    const a = await startWorker({ token: "old" });
    const b = await startWorker({ token: "new" });
    a.routing.target = b.url;
    const response = await fetch(`${a.url}example/greeter/judy`, {
      method: "PUT",
      headers: { authorization: "Bearer old" },
      body: "x",
    });
    assert.equal(response.status, 401);
    // A 401 without a challenge breaks clients that answer one (RFC 9110 §15.5.2: it must carry it).
    assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="eddy"');
    assert.match(await response.text(), /wrong bearer token/);
    assert.equal(b.sink.touched, false);
  });

  it("headers outside the forwarded list stay at the first worker; the listed ones and the mark go", async () => {
    const a = await startWorker();
    const owner = await recordingOwner({ status: 200, headers: { "content-type": "text/plain" }, body: "accepted\n" });
    a.routing.target = owner.url;
    const response = await fetch(`${a.url}example/greeter/kim?trace=1`, {
      method: "POST",
      headers: {
        "content-type": "application/vnd.example/Greet",
        "idempotency-key": "key-1",
        prefer: "wait=1",
        accept: "application/vnd.example/Greeting",
        cookie: "session=private",
        "x-client-note": "not for the owner",
        "user-agent": "test-client",
      },
      body: "payload",
    });
    assert.equal(response.status, 200);
    await response.text();
    assert.equal(owner.seen.length, 1);
    const [seen] = owner.seen as [SeenRequest];
    assert.equal(seen.method, "POST");
    assert.equal(seen.url, "/example/greeter/kim?trace=1");
    assert.equal(seen.body, "payload");
    assert.equal(seen.headers["eddy-forwarded"], "1");
    assert.equal(seen.headers["content-type"], "application/vnd.example/Greet");
    assert.equal(seen.headers["idempotency-key"], "key-1");
    assert.equal(seen.headers.prefer, "wait=1");
    assert.equal(seen.headers.accept, "application/vnd.example/Greeting");
    assert.equal(seen.headers.cookie, undefined);
    assert.equal(seen.headers["x-client-note"], undefined);
    assert.notEqual(seen.headers["user-agent"], "test-client");
    assert.equal(a.sink.touched, false);
  });

  it("the owner's answer is relayed with the listed headers only", async () => {
    const a = await startWorker();
    const owner = await recordingOwner({
      status: 202,
      headers: {
        "content-type": "text/plain; charset=utf-8",
        location: "/replies/request-5",
        "retry-after": "3",
        "eddy-typename": "example/Greeting",
        "content-location": "/replies/request-5",
        "set-cookie": "owner=internal",
        "x-owner-detail": "worker-b internals",
      },
      body: "accepted; no reply yet\n",
    });
    a.routing.target = owner.url;
    const response = await fetch(`${a.url}example/greeter/lee`, { method: "PUT", body: "x" });
    assert.equal(response.status, 202);
    assert.equal(await response.text(), "accepted; no reply yet\n");
    assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(response.headers.get("location"), "/replies/request-5");
    assert.equal(response.headers.get("retry-after"), "3");
    assert.equal(response.headers.get("eddy-typename"), "example/Greeting");
    assert.equal(response.headers.get("content-location"), "/replies/request-5");
    assert.equal(response.headers.get("content-length"), String(Buffer.byteLength("accepted; no reply yet\n")));
    assert.equal(response.headers.get("set-cookie"), null);
    assert.equal(response.headers.get("x-owner-detail"), null);
    assert.equal(owner.seen[0]?.method, "PUT");
  });
});
