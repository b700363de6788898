// Bad input to the real `eddy run`: malformed module files stop it with file, line and
// field; functions that answer garbage, the wrong content type, an empty reply, 4xx, 5xx
// or nothing at all each get a precise error while other traffic keeps flowing, and
// their batches end as dead letters rather than vanishing.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, egressMessage, nodeHandler, serve, statefulFunction, types } from "@eddy/sdk";
import { EddyProcess, playgroundYaml } from "./smoke/cluster.ts";
import { pop } from "./smoke/driver.ts";

const root = resolve(import.meta.dirname, "../..");
const eddyBin = resolve(root, "node_modules/.bin/eddy");

describe("malformed module.yaml", () => {
  const cases: { name: string; yaml: string; expected: RegExp }[] = [
    {
      name: "a YAML syntax error names its line",
      yaml: "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n urlPathTemplate: http://x/\n",
      expected: /module\.yaml:4:\d+: invalid YAML/,
    },
    {
      name: "a missing urlPathTemplate names the field",
      yaml: "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: example/*\n",
      expected: /module\.yaml:\d+:\d+: spec\.urlPathTemplate: .*expected/,
    },
    {
      name: "a bad duration names the field and the units",
      yaml: "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: example/*\n  urlPathTemplate: http://127.0.0.1:1/\n  transport:\n    call: 2 mins\n",
      expected: /module\.yaml:6:\d+: spec\.transport\.call: "2 mins" is not a duration/,
    },
    {
      name: "an unknown kind is named",
      yaml: "kind: io.statefun.nonsense.v9/thing\nspec: {}\n",
      expected: /module\.yaml:1:\d+: kind: .*io\.statefun\.nonsense\.v9\/thing/,
    },
  ];
  for (const { name, yaml, expected } of cases) {
    it(name, async () => {
      const eddy = new EddyProcess({ moduleYaml: yaml, args: [] });
      const path = eddy.writeFile("module.yaml", yaml);
      const run = spawnSync(eddyBin, ["run", path, "--state-dir", eddy.stateDir], { cwd: root, encoding: "utf8" });
      assert.equal(run.status, 1, run.stderr);
      assert.match(run.stderr, expected);
      assert.match(run.stderr, /nothing was started/);
      await eddy.dispose();
    });
  }
});

const Record = types.json<{ topic: string; payload: string }>("io.statefun.playground/EgressRecord");
const modes = ["garbage", "html", "blank", "notfound", "overloaded", "silent"] as const;
/** What the function server answers once it is healed: every bad/* type works. */
const healed = nodeHandler(
  createEndpoint(
    modes.map((mode) =>
      statefulFunction({
        typename: `bad/${mode}`,
        handle(ctx) {
          ctx.send(egressMessage("io.statefun.playground/egress", { topic: "out", payload: `healed ${mode}` }, Record));
        },
      }),
    ),
  ),
);
let isHealed = false;

/** A function server that misbehaves in the way its function type names (until healed). */
function misbehave(req: IncomingMessage, res: ServerResponse): void {
  if (isHealed) {
    healed(req, res);
    return;
  }
  const mode = (req.url ?? "").split("/").pop();
  req.resume();
  switch (mode) {
    case "garbage":
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.end(Buffer.from([0xff, 0xff, 0xff, 0x07, 0x01]));
      return;
    case "html":
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<h1>It works!</h1>");
      return;
    case "blank":
      res.writeHead(200);
      res.end();
      return;
    case "notfound":
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("no such function here");
      return;
    case "overloaded":
      res.writeHead(503, { "content-type": "text/plain" });
      res.end("try later");
      return;
    case "silent":
      return; // never answers
  }
}

const expectedReasons: Record<string, RegExp> = {
  garbage: /bad\/garbage\/1: .*reply is not a FromFunction/,
  html: /bad\/html\/1: .*reply has content type text\/html; expected application\/octet-stream/,
  blank: /bad\/blank\/1: .*reply is empty and has no content type/,
  notfound: /bad\/notfound\/1: .*HTTP 404: no such function here/,
  overloaded: /bad\/overloaded\/1: .*HTTP 503: try later/,
  silent: /bad\/silent\/1: .*(abort|timeout|Timeout)/,
};

describe("functions that answer badly", { timeout: 120_000 }, () => {
  const badServer = createServer(misbehave);
  let goodServer: Awaited<ReturnType<typeof serve>>;
  let eddy: EddyProcess;
  const echo = statefulFunction({
    typename: "good/echo",
    handle(ctx, msg) {
      // The playground ingress passes the body through as it is: plain text here.
      const payload = new TextDecoder().decode(msg.bytes);
      ctx.send(egressMessage("io.statefun.playground/egress", { topic: "out", payload }, Record));
    },
  });

  before(async () => {
    await new Promise<void>((done) => badServer.listen(0, "127.0.0.1", done));
    const badUrl = `http://127.0.0.1:${(badServer.address() as AddressInfo).port}/{function.name}`;
    goodServer = await serve(createEndpoint([echo]), { port: 0 });
    const yaml = `kind: io.statefun.endpoints.v2/http
spec:
  functions: bad/*
  urlPathTemplate: ${badUrl}
  transport:
    call: 400ms
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: good/*
  urlPathTemplate: ${goodServer.url}
---
${playgroundYaml(["out"])}`;
    eddy = new EddyProcess({
      moduleYaml: yaml,
      args: ["run", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}", "--failure-policy", "dead-letter"],
    });
    await eddy.start();
  });

  after(async () => {
    await eddy.dispose();
    badServer.closeAllConnections();
    badServer.close();
    await goodServer.close();
  });

  async function send(path: string, body: string): Promise<Response> {
    return fetch(`${eddy.ingressUrl()}${path}`, {
      method: "POST",
      headers: { "content-type": "application/vnd.test/text" },
      body,
    });
  }

  it("each failure is named precisely and dead-lettered, while other functions keep flowing", async () => {
    for (const mode of modes) assert.equal((await send(`bad/${mode}/1`, "x")).status, 200);
    // Healthy traffic is not held up by the failing addresses.
    for (let index = 0; index < 5; index++)
      assert.equal((await send(`good/echo/${index}`, `hello ${index}`)).status, 200);
    const received = new Set<string>();
    const deadline = Date.now() + 20_000;
    while (received.size < 5 && Date.now() < deadline) {
      const record = await pop(eddy, "out");
      if (record === undefined) await sleep(20);
      else received.add(record);
    }
    assert.equal(received.size, 5, "the healthy function's messages all arrived");

    const deadLetterLine = (mode: string) => new RegExp(`dead letter \\d+-\\d+-\\d+ for bad/${mode}/1`);
    while (Date.now() < deadline && !modes.every((mode) => deadLetterLine(mode).test(eddy.output))) await sleep(50);
    for (const [mode, reason] of Object.entries(expectedReasons)) {
      assert.match(eddy.output, reason, `reason for ${mode}`);
      assert.match(eddy.output, deadLetterLine(mode), `dead letter for ${mode}`);
    }
  });

  it("dead letters are listed while Eddy runs, and replayed at its next start once the function is healed", async () => {
    const list = spawnSync(eddyBin, ["dead-letters", "list", "--state-dir", eddy.stateDir], {
      cwd: root,
      encoding: "utf8",
    });
    assert.equal(list.status, 0, list.stderr);
    for (const mode of modes) {
      // The list names each letter by the id the log gave it.
      const logged = new RegExp(`dead letter (\\d+-\\d+-\\d+) for bad/${mode}/1`).exec(eddy.output)?.[1];
      assert.ok(logged !== undefined, `dead letter for ${mode} logged`);
      assert.match(list.stdout, new RegExp(`^${logged} .* bad/${mode}/1 {2}1 message\\(s\\)`, "m"));
    }
    assert.match(list.stdout, /6 dead letter\(s\)/);

    assert.equal(await eddy.stop(), 0);
    isHealed = true;
    const replay = spawnSync(eddyBin, ["dead-letters", "replay", "--all", "--state-dir", eddy.stateDir], {
      cwd: root,
      encoding: "utf8",
    });
    assert.equal(replay.status, 0, replay.stderr);
    assert.match(replay.stdout, /6 dead letter\(s\) queued/);
    await eddy.start();

    const healedPayloads = new Set<string>();
    const deadline = Date.now() + 20_000;
    while (healedPayloads.size < modes.length && Date.now() < deadline) {
      const record = await pop(eddy, "out");
      if (record === undefined) await sleep(20);
      else if (record.startsWith("healed ")) healedPayloads.add(record);
    }
    assert.deepEqual([...healedPayloads].sort(), modes.map((mode) => `healed ${mode}`).sort());
    const after = spawnSync(eddyBin, ["dead-letters", "list", "--state-dir", eddy.stateDir], {
      cwd: root,
      encoding: "utf8",
    });
    assert.match(after.stdout, /^0 dead letter\(s\)/m);
  });

  it("a body over the ingress limit is refused with 413 and the runtime keeps serving", async () => {
    const response = await send("good/echo/big", "x".repeat(5 * 1024 * 1024));
    assert.equal(response.status, 413);
    assert.match(await response.text(), /larger than 4 MiB \(--ingress-body-limit\)/);
    assert.equal((await send("good/echo/after", "still here")).status, 200);
  });

  it("a message to an unknown function type is refused with 404 naming it", async () => {
    const response = await send("nobody/home/1", "x");
    assert.equal(response.status, 404);
    assert.match(await response.text(), /unknown function type nobody\/home/);
  });
});
