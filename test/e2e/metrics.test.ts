// The admin listener's GET /metrics against a running `eddy dev` with the greeter: the
// exposition parses with the Prometheus project's own parser (its Python client, from PyPI),
// and the counters move exactly as the traffic says: N messages to example/person are N
// invocations of it and N of example/greeter, N ingress requests answered 200, N egress
// records delivered. The listener binds loopback, honours the ingress's token, and says in
// one line when its port is taken.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "../support/ports.ts";
import { type Family, parseExposition, sampleValue } from "../support/prometheus-text.ts";
import { ensurePython } from "../support/python-server.ts";
import { EddyProcess, greeterDevArgs, playgroundYaml, runEddyCommand } from "./smoke/cluster.ts";

const TOKEN = "metrics-test-token";
const MESSAGES = 40;

describe("GET /metrics on the admin listener", () => {
  let eddy: EddyProcess;
  let adminUrl: string;

  const scrape = async (headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) =>
    fetch(`${adminUrl}metrics`, { headers });

  const scrapeParsed = async (): Promise<Family[]> => {
    const response = await scrape();
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    return parseExposition(await response.text());
  };

  before(async () => {
    ensurePython();
    const adminPort = await freePort();
    adminUrl = `http://127.0.0.1:${adminPort}/`;
    eddy = new EddyProcess({
      moduleYaml: playgroundYaml(["greetings"]),
      args: greeterDevArgs("--admin-port", String(adminPort), "--token-file", "{{DIR}}/token"),
    });
    writeFileSync(join(eddy.dir, "token"), TOKEN);
    await eddy.start();
    assert.match(eddy.output, new RegExp(`eddy: admin listening on ${adminUrl.replaceAll(".", "\\.")}`));
  });

  after(async () => {
    await eddy?.stop();
  });

  it("parses as Prometheus text, and counts each message once per function type", async () => {
    const before = await scrapeParsed();
    assert.equal(sampleValue(before, "eddy_invocations_total", { function_type: "example/person" }), undefined);
    for (let i = 0; i < MESSAGES; i++) {
      const response = await fetch(`${eddy.ingressUrl()}example/person/visitor-${i}`, {
        method: "PUT",
        headers: {
          authorization: `Bearer ${TOKEN}`,
          "content-type": "application/vnd.example/GreetRequest",
        },
        body: JSON.stringify({ name: `visitor-${i}` }),
      });
      assert.equal(response.status, 200, await response.text());
    }
    // Messages are answered once durable; the greeter and the egress follow: wait for them.
    let families = await scrapeParsed();
    for (let waited = 0; waited < 10_000; waited += 100) {
      const delivered = sampleValue(families, "eddy_egress_records_total", { outcome: "delivered" }) ?? 0;
      if (delivered >= MESSAGES) break;
      await sleep(100);
      families = await scrapeParsed();
    }
    assert.equal(sampleValue(families, "eddy_invocations_total", { function_type: "example/person" }), MESSAGES);
    assert.equal(sampleValue(families, "eddy_invocations_total", { function_type: "example/greeter" }), MESSAGES);
    assert.equal(
      sampleValue(families, "eddy_ingress_requests_total", {
        ingress: "io.statefun.playground/ingress",
        status: "200",
      }),
      MESSAGES,
    );
    assert.equal(
      sampleValue(families, "eddy_egress_records_total", {
        egress: "io.statefun.playground/egress",
        outcome: "delivered",
      }),
      MESSAGES,
    );
    // Every message of a batch counts once: the batches' sizes add up to the invocations.
    assert.equal(
      sampleValue(families, "eddy_invocation_batch_messages_sum", { function_type: "example/greeter" }),
      MESSAGES,
    );
    const calls = sampleValue(families, "eddy_invocation_duration_seconds_count", {
      function_type: "example/person",
      outcome: "ok",
    });
    // A call per batch, and a state handshake before an instance's first (the SDK asks for its states).
    assert.ok(calls !== undefined && calls >= 1 && calls <= 2 * MESSAGES, `person calls ${calls}`);
    assert.ok((sampleValue(families, "eddy_commit_duration_seconds_count") ?? 0) >= 1);
    assert.ok((sampleValue(families, "eddy_commit_writes_sum") ?? 0) >= MESSAGES);
    assert.ok((sampleValue(families, "eddy_state_size_bytes") ?? 0) > 0);
    assert.equal(sampleValue(families, "eddy_backlog_messages", { function_type: "example/person" }), 0);
    assert.equal(sampleValue(families, "eddy_batches_in_flight", { function_type: "example/greeter" }), 0);
    assert.equal(sampleValue(families, "eddy_delayed_messages_pending"), 0);
    assert.ok((sampleValue(families, "process_cpu_seconds_total") ?? 0) > 0);

    const types = new Map(families.map((family) => [family.name, family.type]));
    // The parser names a counter's family without its _total suffix.
    assert.equal(types.get("eddy_invocations"), "counter");
    assert.equal(types.get("eddy_invocation_duration_seconds"), "histogram");
    assert.equal(types.get("eddy_commit_duration_seconds"), "histogram");
    assert.equal(types.get("eddy_backlog_messages"), "gauge");
    for (const family of families) {
      assert.match(family.name, /^(eddy|process|nodejs)_/, `${family.name}: not an eddy_, process_ or nodejs_ metric`);
      // No label carries an address id: the label sets stay as small as the module.
      for (const sample of family.samples) {
        for (const value of Object.values(sample.labels)) assert.doesNotMatch(value, /visitor-/);
      }
    }

    // Nothing more happens by itself: the counts stay.
    await sleep(300);
    const later = await scrapeParsed();
    assert.equal(sampleValue(later, "eddy_invocations_total", { function_type: "example/person" }), MESSAGES);
  });

  it("refuses a request without the token, and answers unknown routes with a JSON error", async () => {
    const refused = await scrape({});
    assert.equal(refused.status, 401);
    assert.deepEqual(await refused.json(), {
      code: "unauthorized",
      message: "missing bearer token: send Authorization: Bearer <token>",
    });
    const wrong = await scrape({ authorization: "Bearer nope" });
    assert.equal(wrong.status, 401);
    const missing = await fetch(`${adminUrl}nothing-here`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code: string }).code, "not-found");
    const posted = await fetch(`${adminUrl}metrics`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(posted.status, 405);
  });

  it("says in one line that the admin port is taken, and starts nothing", async () => {
    const second = new EddyProcess({
      moduleYaml: playgroundYaml(["greetings"]),
      args: greeterDevArgs("--admin-port", new URL(adminUrl).port),
    });
    await second.start().then(
      () => assert.fail("a second Eddy started on a taken admin port"),
      () => undefined,
    );
    const lines = second.output.trim().split("\n");
    assert.equal(lines.length, 1, second.output);
    assert.match(
      lines[0] ?? "",
      new RegExp(
        `the admin listener cannot listen on port ${new URL(adminUrl).port} of 127\\.0\\.0\\.1: it is in use \\(--admin-port\\)`,
      ),
    );
  });

  it("refuses a malformed --admin-port", async () => {
    const result = await runEddyCommand(["run", "examples/greeter/module.yaml", "--admin-port", "80x"]);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /--admin-port: "80x" is not a port/);
  });
});
