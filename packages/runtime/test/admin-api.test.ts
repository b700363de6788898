// The admin API (/v1/, docs/admin-api.md) against a running Eddy with in-process functions, a
// playground ingress and checkpoints: every route answers as documented, bad input gets a
// precise 4xx, operator writes are seen by the function's next invocation, a paused type's
// messages wait and then run, a dead letter is replayed and discarded while Eddy runs, the
// OpenAPI document validates and describes every route the server answers, and a request
// without the token is refused.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, statefulFunction, types } from "@eddy/sdk";
import { Validator } from "@seriousme/openapi-schema-validator";
import { parseModule } from "../src/config/module.ts";
import { CONTROL_SOCKET, callControlSocket } from "../src/control-socket.ts";
import { ADMIN_ROUTES, matchRoute } from "../src/observe/admin-api.ts";
import { type RunningRuntime, startRuntime } from "../src/runtime.ts";

const TOKEN = "admin-api-token";

/** A JSON answer, read field by field: a wrong field reads undefined and fails its assertion. */
// biome-ignore lint/suspicious/noExplicitAny: see above
type Answer = Record<string, any>;
const auth = { authorization: `Bearer ${TOKEN}` };

describe("the admin API", () => {
  const dir = mkdtempSync(join(tmpdir(), "eddy-admin-api-"));
  let runtime: RunningRuntime;
  let admin: string;
  let ingress: string;
  /** What each counter invocation saw in its state before counting: the function's view. */
  const seen: number[] = [];
  let failing = true;
  /** Every route a request of this test reached, by operationId. */
  const reached = new Set<string>();

  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = auth) => {
    try {
      const matched = matchRoute(method, path.split("?")[0] as string);
      if ("route" in matched) reached.add(matched.route.operationId);
    } catch {
      // A path the server refuses to decode reaches no route.
    }
    const response = await fetch(`${admin}${path.slice(1)}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: JSON.parse(text) as Answer };
  };

  const send = async (typename: string, id: string, text: string) => {
    const response = await fetch(`${ingress}${typename}/${encodeURIComponent(id)}`, {
      method: "POST",
      headers: { ...auth, "content-type": "text/plain" },
      body: text,
    });
    assert.equal(response.status, 200, await response.text());
  };

  const until = async (condition: () => boolean | Promise<boolean>, what: string) => {
    for (let waited = 0; waited < 10_000; waited += 20) {
      if (await condition()) return;
      await sleep(20);
    }
    assert.fail(`timed out waiting for ${what}`);
  };

  before(async () => {
    const counter = statefulFunction({
      typename: "test/counter",
      state: { count: types.int, profile: types.json<Record<string, unknown>>("test/Profile") },
      handle(ctx) {
        const count = ctx.storage.count ?? 0;
        seen.push(count);
        ctx.storage.count = count + 1;
        ctx.storage.profile ??= { name: ctx.self.id };
      },
    });
    const flaky = statefulFunction({
      typename: "test/flaky",
      state: {},
      handle() {
        if (failing) throw new Error("flaky is failing on purpose");
      },
    });
    const loaded = parseModule("kind: io.statefun.playground.v1/ingress\nspec:\n  port: 8090\n", "module.yaml");
    if (!loaded.ok) throw new Error("bad module");
    runtime = await startRuntime({
      module: loaded.module,
      stateDir: join(dir, "state"),
      inProcess: createEndpoint([counter, flaky]),
      portOverride: 0,
      partitionCount: 8,
      token: TOKEN,
      failurePolicy: "dead-letter",
      checkpoints: { location: `file://${join(dir, "checkpoints")}`, intervalMs: 0 },
      admin: { port: 0 },
      log: () => undefined,
    });
    admin = runtime.adminUrl as string;
    ingress = runtime.ingressUrls[0] as string;
  });

  after(async () => {
    await runtime?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers health and readiness without a token, and everything else only with it", async () => {
    assert.deepEqual((await api("GET", "/healthz", undefined, {})).body, { status: "ok" });
    assert.deepEqual((await api("GET", "/readyz", undefined, {})).body, { status: "ready" });
    for (const path of ["/v1/overview", "/metrics", "/openapi.json"]) {
      const refused = await fetch(`${admin}${path.slice(1)}`);
      assert.equal(refused.status, 401, path);
      assert.equal(((await refused.json()) as { code: string }).code, "unauthorized");
    }
  });

  it("refuses a request naming another host (DNS rebinding), on loopback", async () => {
    const port = new URL(admin).port;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port, path: "/v1/overview", headers: { ...auth, host: `attacker.example:${port}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
    assert.equal(status, 403);
    assert.equal((await api("GET", "/v1/overview")).status, 200, "127.0.0.1 is a loopback name");
  });

  it("lists function types with their health, and shows an address's state decoded", async () => {
    for (let i = 0; i < 3; i++) await send("test/counter", "alice", "hi");
    await send("test/counter", "bob", "hi");
    await until(() => seen.length === 4, "four invocations");
    const types = await api("GET", "/v1/function-types");
    assert.equal(types.status, 200);
    const counterType = types.body.functionTypes.find((type: { typename: string }) => type.typename === "test/counter");
    assert.equal(counterType.invocations, 4);
    assert.equal(counterType.health.status, "ok");
    assert.deepEqual(counterType.endpoint, { kind: "in-process" });
    assert.equal((await api("GET", "/v1/function-types/test/counter")).body.invocations, 4);

    const alice = await api("GET", "/v1/state/test/counter/alice");
    assert.equal(alice.status, 200);
    assert.deepEqual(alice.body.address, { namespace: "test", type: "counter", id: "alice" });
    assert.equal(alice.body.state.count.typename, "io.statefun.types/int");
    assert.equal(alice.body.state.count.value, 3);
    assert.equal(alice.body.state.count.encoding, "json");
    assert.deepEqual(alice.body.state.profile.value, { name: "alice" });
    assert.equal(alice.body.backlog, 0);
    assert.equal(alice.body.inFlight, null);
    assert.equal(alice.body.delayedMessages, 0);

    const stats = await api("GET", "/v1/stats");
    assert.equal(stats.body.functionTypes["test/counter"].invocations, 4);
    assert.equal(stats.body.totals.ingressRequests, 4);
    const overview = await api("GET", "/v1/overview");
    assert.equal(overview.body.mode, "embedded");
    assert.equal(overview.body.partitions, 8);
    assert.equal(overview.body.checkpoints.enabled, true);
  });

  it("lists ids holding state a page at a time, by prefix", async () => {
    for (const id of ["carol", "cathy", "dave"]) await send("test/counter", id, "hi");
    await until(() => seen.length === 7, "seven invocations");
    const first = await api("GET", "/v1/state/test/counter?limit=2");
    assert.deepEqual(first.body, { ids: ["alice", "bob"], next: "bob" });
    const second = await api("GET", "/v1/state/test/counter?limit=2&after=bob");
    assert.deepEqual(second.body, { ids: ["carol", "cathy"], next: "cathy" });
    const last = await api("GET", "/v1/state/test/counter?limit=2&after=cathy");
    assert.deepEqual(last.body, { ids: ["dave"], next: null });
    assert.deepEqual((await api("GET", "/v1/state/test/counter?prefix=ca")).body, {
      ids: ["carol", "cathy"],
      next: null,
    });
    assert.equal((await api("GET", "/v1/state/test/counter?limit=0")).body.code, "bad-request");
  });

  it("writes state that the function sees next, and refuses values its type cannot hold", async () => {
    const put = await api("PUT", "/v1/state/test/counter/alice/count", { value: 41 });
    assert.equal(put.status, 200);
    assert.equal(put.body.value, 41);
    await send("test/counter", "alice", "hi");
    await until(() => seen.length === 8, "the next invocation");
    assert.equal(seen.at(-1), 41, "the function saw the value written through the API");

    const wrongType = await api("PUT", "/v1/state/test/counter/alice/count", { value: "forty" });
    assert.equal(wrongType.status, 400);
    assert.equal(wrongType.body.code, "value-type-mismatch");
    assert.match(wrongType.body.message, /32-bit integer/);
    const tooBig = await api("PUT", "/v1/state/test/counter/alice/count", { value: 2 ** 31 });
    assert.equal(tooBig.body.code, "value-type-mismatch");
    const otherTypename = await api("PUT", "/v1/state/test/counter/alice/count", { value: 1, typename: "test/Other" });
    assert.equal(otherTypename.body.code, "value-type-mismatch");
    const unknownState = await api("PUT", "/v1/state/test/counter/alice/nope", { value: 1 });
    assert.equal(unknownState.status, 404);
    assert.equal(unknownState.body.code, "unknown-state");
    assert.match(unknownState.body.message, /its states: count, profile/);
    const notJson = await api("PUT", "/v1/state/test/counter/alice/count", "{oops");
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.code, "bad-request");

    const profile = await api("PUT", "/v1/state/test/counter/alice/profile", { value: { name: "Alice", vip: true } });
    assert.deepEqual(profile.body.value, { name: "Alice", vip: true });
    const raw = await api("PUT", "/v1/state/test/counter/erin/count", {
      base64: Buffer.from(types.int.serialize(5)).toString("base64"),
    });
    assert.equal(raw.body.value, 5, "bytes given as base64 are taken as they are");

    const deleted = await api("DELETE", "/v1/state/test/counter/erin/count");
    assert.deepEqual(deleted.body, { deleted: true });
    assert.deepEqual((await api("DELETE", "/v1/state/test/counter/erin/count")).body, { deleted: false });
    assert.deepEqual((await api("GET", "/v1/state/test/counter/erin")).body.state, {});
  });

  it("refuses unknown function types and malformed addresses precisely", async () => {
    const unknown = await api("GET", "/v1/state/nobody/here/x");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.code, "unknown-function-type");
    assert.match(unknown.body.message, /nobody\/here/);
    const badSegment = await api("GET", "/v1/state/test/counter/%E0%A4%A");
    assert.equal(badSegment.status, 400);
    assert.equal(badSegment.body.code, "bad-request");
    const missing = await api("GET", "/v1/no-such-route");
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, "not-found");
    const wrongMethod = await api("PATCH", "/v1/overview");
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.body.code, "method-not-allowed");
  });

  it("pauses a function type: its messages wait durably until it is resumed", async () => {
    const paused = await api("POST", "/v1/function-types/test/counter/pause");
    assert.equal(paused.body.paused, true);
    const before = seen.length;
    await send("test/counter", "bob", "hi");
    await sleep(200);
    assert.equal(seen.length, before, "a paused type is not invoked");
    const bob = await api("GET", "/v1/state/test/counter/bob");
    assert.deepEqual(bob.body.inFlight, { messages: 1, failedAttempts: 0, sent: false });
    assert.equal((await api("GET", "/v1/function-types/test/counter")).body.backlog, 1);
    // Written while paused: the held batch is sent with it.
    await api("PUT", "/v1/state/test/counter/bob/count", { value: 100 });
    const resumed = await api("POST", "/v1/function-types/test/counter/resume");
    assert.equal(resumed.body.paused, false);
    await until(() => seen.length === before + 1, "the held message");
    assert.equal(seen.at(-1), 100);
  });

  it("lists, shows, replays and discards dead letters while running", async () => {
    await send("test/flaky", "f1", "one");
    await send("test/flaky", "f2", "two");
    let letters: Answer[] = [];
    await until(async () => {
      letters = (await api("GET", "/v1/dead-letters")).body.deadLetters;
      return letters.length === 2;
    }, "two dead letters");
    const [first, second] = letters as [Answer, Answer];
    assert.equal(first.target.typename, "test/flaky");
    assert.match(first.reason, /failing on purpose/);
    assert.equal(first.replayable, true);
    const page = await api("GET", "/v1/dead-letters?limit=1");
    assert.equal(page.body.deadLetters[0].id, first.id);
    const nextPage = await api("GET", `/v1/dead-letters?after=${encodeURIComponent(page.body.next)}`);
    assert.deepEqual(
      nextPage.body.deadLetters.map((letter: { id: string }) => letter.id),
      [second.id],
    );
    assert.equal(nextPage.body.next, null);
    assert.equal((await api("GET", "/v1/dead-letters?after=nonsense")).body.code, "bad-request");
    const shown = await api("GET", `/v1/dead-letters/${first.id}`);
    assert.equal(shown.body.invocations.length, 1);
    assert.equal(types.string.deserialize(Buffer.from(shown.body.invocations[0].argument.value, "base64")), "one");

    const flaky = await api("GET", "/v1/function-types/test/flaky");
    assert.equal(flaky.body.health.status, "failing");
    assert.match(flaky.body.health.lastError, /failing on purpose/);

    failing = false;
    const replayed = await api("POST", `/v1/dead-letters/${first.id}/replay`);
    assert.deepEqual(replayed.body, { replayed: [first.id] });
    await until(
      async () => (await api("GET", "/v1/function-types/test/flaky")).body.health.status === "ok",
      "the replay",
    );
    const again = await api("POST", `/v1/dead-letters/${first.id}/replay`);
    assert.equal(again.status, 404);
    assert.equal(again.body.code, "no-such-dead-letter");
    // The page's end is a position: the next page is found though the letter it ended on is gone.
    assert.deepEqual(
      (await api("GET", `/v1/dead-letters?after=${encodeURIComponent(page.body.next)}`)).body.deadLetters.map(
        (letter: { id: string }) => letter.id,
      ),
      [second.id],
    );
    const discarded = await api("DELETE", `/v1/dead-letters/${second.id}`);
    assert.deepEqual(discarded.body, { discarded: [second.id] });
    assert.deepEqual((await api("GET", "/v1/dead-letters")).body.deadLetters, []);
    assert.equal((await api("GET", `/v1/dead-letters/${second.id}`)).status, 404);
    assert.equal((await api("POST", "/v1/dead-letters/not-an-id/replay")).body.code, "bad-request");

    failing = true;
    await send("test/flaky", "f3", "three");
    await until(async () => (await api("GET", "/v1/dead-letters")).body.deadLetters.length === 1, "a third letter");
    assert.equal((await api("POST", "/v1/dead-letters/replay", { ids: [] })).body.code, "bad-request");
    assert.equal((await api("POST", "/v1/dead-letters/replay", { ids: ["0-1-999999"] })).status, 404);
    failing = false;
    const all = await api("POST", "/v1/dead-letters/replay", { all: true });
    assert.equal(all.body.replayed.length, 1);
    failing = true;
    await send("test/flaky", "f4", "four");
    await until(async () => (await api("GET", "/v1/dead-letters")).body.deadLetters.length === 1, "a fourth letter");
    assert.equal((await api("POST", "/v1/dead-letters/discard", { all: true })).body.discarded.length, 1);
  });

  it("takes, lists and names checkpoints", async () => {
    const taken = await api("POST", "/v1/checkpoints");
    assert.equal(taken.status, 200);
    assert.equal(taken.body.kind, "checkpoint");
    const savepoint = await api("POST", "/v1/savepoints", { name: "before-upgrade" });
    assert.equal(savepoint.body.kind, "savepoint");
    assert.equal((await api("POST", "/v1/savepoints", {})).body.code, "bad-request");
    // A cluster's workers' part in a savepoint: an embedded Eddy is none of them.
    const phase = await api("POST", "/v1/cluster/savepoints/hold", { id: "x", name: "before-upgrade" });
    assert.equal(phase.status, 409);
    assert.equal(phase.body.code, "not-in-cluster-mode");
    const listed = await api("GET", "/v1/checkpoints");
    assert.equal(listed.body.enabled, true);
    assert.deepEqual(
      listed.body.checkpoints.map((entry: { kind: string; name?: string }) => entry.name ?? entry.kind).sort(),
      ["before-upgrade", "checkpoint"],
    );
  });

  it("answers the same API over the control socket, without a token", async () => {
    const overview = await new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
      const req = request({ socketPath: join(dir, "state", CONTROL_SOCKET), path: "/v1/overview" }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) }),
        );
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(overview.status, 200);
    assert.equal(overview.body.mode, "embedded");
    // The socket's own routes still answer.
    assert.equal((await callControlSocket(join(dir, "state"), "/memory")).status, 200);
  });

  it("has an OpenAPI 3.1 document that validates and describes every route the server answers", async () => {
    const document = await api("GET", "/openapi.json");
    const validated = await new Validator().validate(document.body);
    assert.deepEqual(validated, { valid: true });
    for (const route of ADMIN_ROUTES) {
      assert.ok(
        document.body.paths[route.path]?.[route.method.toLowerCase()],
        `${route.method} ${route.path} is described`,
      );
    }
    for (const path of ["/healthz", "/readyz", "/metrics", "/openapi.json"]) assert.ok(document.body.paths[path], path);
    // Every route of the table was reached by this test, so each one is tested, not only described.
    const untested = ADMIN_ROUTES.map((route) => route.operationId).filter((id) => !reached.has(id));
    assert.deepEqual(untested, []);
  });
});
