// Request-reply on the HTTP ingress against `eddy run`: a request with `Prefer: wait=<s>`
// gets the function's reply as its response, from functions written with Eddy's SDK, the
// official StateFun JS SDK and the official Python SDK; no reply within the wait is a 202
// with a Location to poll; an Idempotency-Key retry gets the same answer and applies once,
// also when the runtime is killed with SIGKILL while the client retries.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, serve } from "@eddy/sdk";
import { greeter, person } from "../../examples/greeter/functions.ts";
import { type PythonServer, startPythonServer } from "../support/python-server.ts";
import { countAcrossKills } from "./request-reply/across-kills.ts";
import { functions } from "./request-reply/eddy-functions.ts";
import { EddyProcess, greeterDevArgs, playgroundYaml, runEddyCommand } from "./smoke/cluster.ts";
import { nextRecord } from "./smoke/driver.ts";

const root = resolve(import.meta.dirname, "../..");
const require = createRequire(import.meta.url);

interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  readonly location: string | null;
}

async function ask(url: string, init: { body?: string; headers?: Record<string, string>; method?: string }) {
  const response = await fetch(url, {
    method: init.method ?? "POST",
    headers: init.headers ?? {},
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  return {
    status: response.status,
    contentType: response.headers.get("content-type") ?? "",
    body: await response.text(),
    location: response.headers.get("location"),
  } satisfies Answer;
}

/** The official StateFun JS SDK: a greeter that replies to its caller. */
async function serveOfficialGreeter(): Promise<{ url: string; close(): void }> {
  const { StateFun, messageBuilder } = require("apache-flink-statefun");
  const statefun = new StateFun();
  statefun.bind({
    typename: "official/greeter",
    specs: [{ name: "visits", type: StateFun.intType() }],
    fn(
      context: {
        self: { id: string };
        caller: { typename: string; id: string } | undefined;
        storage: { visits: number | null };
        send(message: unknown): void;
      },
      message: { asString(): string },
    ) {
      const visits = (context.storage.visits ?? 0) + 1;
      context.storage.visits = visits;
      const name = message.asString();
      if (context.caller === undefined) return;
      const value = visits === 1 ? `Welcome ${name}!` : `Welcome back ${name}!`;
      context.send(
        messageBuilder({
          typename: context.caller.typename,
          id: context.caller.id,
          value,
          valueType: StateFun.stringType(),
        }),
      );
    },
  });
  const server = createServer(statefun.handler());
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** The official Python SDK greeter (official-sdks/python/functions.py) behind the interop tests' server. */
function servePythonGreeter(): Promise<PythonServer> {
  return startPythonServer(resolve(root, "packages/sdk/test/interop/python/server.py"), {
    args: ["0", resolve(import.meta.dirname, "official-sdks/python")],
    echoStderr: true,
  });
}

describe("request-reply on the HTTP ingress", { timeout: 120_000 }, () => {
  let eddy: EddyProcess;
  let eddyFunctions: { url: string; close(): Promise<void> };
  let official: { url: string; close(): void };
  let python: PythonServer;

  before(async () => {
    eddyFunctions = await serve(createEndpoint([...functions, person, greeter]), { port: 0 });
    official = await serveOfficialGreeter();
    python = await servePythonGreeter();
    const endpoint = (pattern: string, url: string) =>
      `kind: io.statefun.endpoints.v2/http\nspec:\n  functions: ${pattern}\n  urlPathTemplate: ${url}\n---\n`;
    eddy = new EddyProcess({
      moduleYaml: `${endpoint("rr/*", eddyFunctions.url)}${endpoint("example/*", eddyFunctions.url)}${endpoint("official/*", official.url)}${endpoint("py/*", python.url)}${playgroundYaml(["unused"])}`,
      args: ["run", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}"],
    });
    await eddy.start();
  });

  after(async () => {
    await eddy?.dispose();
    await eddyFunctions?.close();
    official?.close();
    await python?.close();
  });

  const wait = (seconds: number) => ({ prefer: `wait=${seconds}` });

  it("answers with the reply of an Eddy SDK function, as text, counting each request once", async () => {
    const answers: Answer[] = [];
    for (let visit = 0; visit < 3; visit++) {
      answers.push(await ask(`${eddy.ingressUrl()}rr/greeter/seth`, { body: "hi", headers: wait(10) }));
    }
    assert.deepEqual(
      answers.map((answer) => [answer.status, answer.contentType, answer.body]),
      [
        [200, "text/plain; charset=utf-8", "Welcome seth!"],
        [200, "text/plain; charset=utf-8", "Welcome back seth!"],
        [200, "text/plain; charset=utf-8", "third time's the charm, seth!"],
      ],
      eddy.output,
    );
  });

  it("answers the greeter quickstart's request with the greeting the second function sends to the reply address", async () => {
    const headers = { ...wait(10), "content-type": "application/vnd.example/GreetRequest" };
    const greetings: string[] = [];
    for (let visit = 0; visit < 2; visit++) {
      const answer = await ask(`${eddy.ingressUrl()}example/person/seth`, { body: '{"name":"seth"}', headers });
      greetings.push(`${answer.status} ${answer.body}`);
    }
    assert.deepEqual(greetings, ["200 Welcome seth!", "200 Welcome back seth!"]);
  });

  it("keeps StateFun's fire-and-forget without the header", async () => {
    const sent = await ask(`${eddy.ingressUrl()}rr/greeter/quiet`, { body: "hi" });
    assert.deepEqual([sent.status, sent.body.trim()], [200, "accepted"]);
    const asked = await ask(`${eddy.ingressUrl()}rr/greeter/quiet`, { body: "hi", headers: wait(10) });
    assert.equal(asked.body, "Welcome back quiet!", "the fire-and-forget message counted once");
  });

  it("answers JSON as application/json, and the raw bytes to Accept: application/vnd.*", async () => {
    const json = await ask(`${eddy.ingressUrl()}rr/profile/ada`, { body: "x", headers: wait(10) });
    assert.equal(json.status, 200);
    assert.equal(json.contentType, "application/json");
    assert.deepEqual(JSON.parse(json.body), { id: "ada", visits: 1 });
    const raw = await ask(`${eddy.ingressUrl()}rr/counter/c1`, {
      body: "x",
      headers: { ...wait(10), accept: "application/vnd.io.statefun.types/int" },
    });
    assert.equal(raw.contentType, "application/vnd.io.statefun.types/int");
    const text = await ask(`${eddy.ingressUrl()}rr/counter/c1`, { body: "x", headers: wait(10) });
    assert.deepEqual([text.contentType, text.body], ["text/plain; charset=utf-8", "2"]);
  });

  it("answers with the reply of official JS SDK and Python SDK functions, reading text/plain as a string", async () => {
    for (const [path, name] of [
      ["official/greeter/x", "Ana"],
      ["py/greeter/bo", "bo"],
    ] as const) {
      const headers = { ...wait(15), "content-type": "text/plain" };
      const first = await ask(`${eddy.ingressUrl()}${path}`, { body: name, headers });
      const second = await ask(`${eddy.ingressUrl()}${path}`, { body: name, headers });
      assert.deepEqual(
        [first.status, first.body, second.status, second.body],
        [200, `Welcome ${name}!`, 200, `Welcome back ${name}!`],
        `${path}: ${eddy.output}`,
      );
    }
  });

  it("gives 202 with a Location when the reply takes longer than the wait, and the reply there later", async () => {
    const early = await ask(`${eddy.ingressUrl()}rr/slow/s1`, { body: "x", headers: wait(0.2) });
    assert.equal(early.status, 202, early.body);
    assert.match(early.location ?? "", /^\/replies\/[0-9a-z]+\.[0-9a-f-]{36}$/);
    const location = new URL(early.location ?? "", eddy.ingressUrl()).href;
    const answered = await ask(location, { method: "GET", headers: wait(10) });
    assert.deepEqual([answered.status, answered.body], [200, "done 1"]);
    const again = await ask(location, { method: "GET" });
    assert.deepEqual([again.status, again.body], [200, "done 1"], "the reply stays for the retention");
    const unknown = await ask(`${eddy.ingressUrl()}replies/no-such-request`, { method: "GET" });
    assert.equal(unknown.status, 404);
    const malformed = await ask(`${eddy.ingressUrl()}replies/%E0%A4%A`, { method: "GET" });
    assert.deepEqual([malformed.status, malformed.body.trim()], [400, "expected GET /replies/<request id>"]);
  });

  it("answers a retry with the same Idempotency-Key with the same reply, applying it once", async () => {
    const headers = { ...wait(10), "idempotency-key": "visit-1" };
    const first = await ask(`${eddy.ingressUrl()}rr/greeter/kim`, { body: "x", headers });
    const retry = await ask(`${eddy.ingressUrl()}rr/greeter/kim`, { body: "x", headers });
    const next = await ask(`${eddy.ingressUrl()}rr/greeter/kim`, {
      body: "x",
      headers: { ...wait(10), "idempotency-key": "visit-2" },
    });
    assert.deepEqual([first.body, retry.body, next.body], ["Welcome kim!", "Welcome kim!", "Welcome back kim!"]);
  });

  it("eddy send sends a value and prints the reply, or where to poll for it", async () => {
    const send = (...args: string[]) => runEddyCommand(["send", ...args, "--ingress", eddy.ingressUrl()]);
    const greeted = await send("rr/greeter/cli", "hi", "--wait", "10");
    assert.deepEqual([greeted.status, greeted.stdout], [0, "Welcome cli!\n"], greeted.stderr);
    const typed = await send("official/greeter/t", "Zoe", "--type", "io.statefun.types/string", "--wait", "10");
    assert.deepEqual([typed.status, typed.stdout], [0, "Welcome Zoe!\n"], typed.stderr);
    const json = await send("rr/profile/j", '{"any":1}', "--type", "rr/Anything", "--wait", "10");
    assert.deepEqual(JSON.parse(json.stdout), { id: "j", visits: 1 }, json.stderr);
    const fire = await send("rr/greeter/cli", "hi");
    assert.deepEqual([fire.status, fire.stdout], [0, "accepted\n"], fire.stderr);
    const late = await send("rr/slow/cli", "x", "--wait", "0.1");
    assert.equal(late.status, 0, late.stderr);
    assert.match(late.stderr, /accepted; no reply within 0\.1 s: GET http:\/\/127\.0\.0\.1:\d+\/replies\//);
    const badInt = await send("rr/greeter/cli", "many", "--type", "io.statefun.types/int");
    assert.equal(badInt.status, 1);
    assert.match(badInt.stderr, /HTTP 400: text\/plain body "many" is not a io\.statefun\.types\/int value/);
    const badAddress = await send("rr/greeter", "x");
    assert.equal(badAddress.status, 2);
    assert.match(badAddress.stderr, /"rr\/greeter" is not an address: expected <namespace>\/<type>\/<id>/);
  });

  it("refuses bad requests precisely", async () => {
    const badWait = await ask(`${eddy.ingressUrl()}rr/greeter/x`, { body: "x", headers: { prefer: "wait=soon" } });
    assert.deepEqual([badWait.status, badWait.body.trim()], [400, "Prefer: wait=soon is not a number of seconds"]);
    const untypedJson = await ask(`${eddy.ingressUrl()}rr/greeter/x`, {
      body: "{}",
      headers: { ...wait(1), "content-type": "application/json" },
    });
    assert.equal(untypedJson.status, 415);
    const unknown = await ask(`${eddy.ingressUrl()}nowhere/nobody/x`, { body: "x", headers: wait(1) });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body, /unknown function type nowhere\/nobody/);
  });

  it("applies a request once and answers its retries the same across kill -9 of the runtime", async () => {
    // Each answer is the count after that request (see countAcrossKills).
    const answers = await countAcrossKills(eddy, { path: "rr/counter/crash", keyPrefix: "crash" });
    assert.ok(answers.length >= 20);
    assert.deepEqual(
      answers,
      Array.from({ length: answers.length }, (_, index) => String(index + 1)),
    );
  });
});

describe("the retention of answers and idempotency keys", { timeout: 60_000 }, () => {
  let eddy: EddyProcess;

  before(async () => {
    eddy = new EddyProcess({
      moduleYaml: playgroundYaml(["greetings"]),
      // Long enough that the three requests before the first poll finish within it on a busy machine.
      args: greeterDevArgs("--retention", "3s"),
    });
    await eddy.start();
  });

  after(async () => {
    await eddy?.dispose();
  });

  it("forgets answers and keys after --retention: the poll is 404, the same key applies again", async () => {
    const headers = {
      prefer: "wait=5",
      "content-type": "application/vnd.example/GreetRequest",
      "idempotency-key": "once",
    };
    const greet = () =>
      fetch(`${eddy.ingressUrl()}example/person/rita`, { method: "POST", headers, body: '{"name":"rita"}' });
    const first = await greet();
    assert.equal(await first.text(), "Welcome rita!");
    const location = new URL(first.headers.get("content-location") ?? "", eddy.ingressUrl()).href;
    assert.equal((await fetch(location)).status, 200);
    assert.equal(await (await greet()).text(), "Welcome rita!", "within the retention: the same answer");
    const deadline = Date.now() + 10_000;
    while ((await fetch(location)).status !== 404) {
      if (Date.now() > deadline) assert.fail("the answer was never forgotten");
      await sleep(200);
    }
    assert.equal(await (await greet()).text(), "Welcome back rita!", "after the retention the key is new again");
  });

  it("refuses a retention that is not a duration", async () => {
    const refused = await runEddyCommand(["run", "module.yaml", "--retention", "soon"]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /--retention: "soon" does not start with a number; expected a duration such as 24h/);
  });
});

describe("the greeter quickstart with the official Python SDK", { timeout: 120_000 }, () => {
  let eddy: EddyProcess;
  let python: PythonServer;

  before(async () => {
    python = await startPythonServer(resolve(root, "examples/greeter/python/greeter.py"), {
      args: ["0"],
      echoStderr: true,
    });
    // The example's own module.yaml, on the ports this test picked.
    const yaml = readFileSync(resolve(root, "examples/greeter/module.yaml"), "utf8")
      .replaceAll("http://127.0.0.1:8000/", python.url)
      .replaceAll("port: 8090", "port: {{INGRESS_PORT}}")
      .replaceAll("port: 8091", "port: {{EGRESS_PORT}}");
    eddy = new EddyProcess({ moduleYaml: yaml, args: ["run", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}"] });
    await eddy.start();
  });

  after(async () => {
    await eddy?.dispose();
    await python?.close();
  });

  it("greets seth three ways, as the reply and on the greetings topic", async () => {
    const replies: string[] = [];
    for (let visit = 0; visit < 3; visit++) {
      const answer = await ask(`${eddy.ingressUrl()}example/person/seth`, {
        body: '{"name":"seth"}',
        headers: { prefer: "wait=10", "content-type": "application/vnd.example/GreetRequest" },
      });
      replies.push(`${answer.status} ${answer.body}`);
    }
    const expected = ["Welcome seth!", "Welcome back seth!", "third time's the charm, seth!"];
    assert.deepEqual(
      replies,
      expected.map((text) => `200 ${text}`),
      eddy.output,
    );
    const topic: string[] = [];
    for (let visit = 0; visit < 3; visit++) topic.push(await nextRecord(eddy, "greetings"));
    assert.deepEqual(topic, expected);
  });
});
