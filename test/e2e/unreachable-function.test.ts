// A function Eddy cannot reach, with the real `eddy run`: a module that names a closed
// port or a host that does not resolve gets a line naming the URL and the cause at once
// (not when the call budget runs out, a minute later), a line when the function is
// reachable again, and failure lines that name the address once. The log is JSON lines on
// stderr: each line carries the function type, address and endpoint it is about, a failure
// repeated on every retry is logged once and then summed up with a count, and --log-level
// leaves out the levels below it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, egressMessage, serve, statefulFunction, types } from "@eddy/sdk";
import { type LogRecord, logRecords } from "../support/log-records.ts";
import { EddyProcess, freePort, playgroundYaml, withEddy } from "./smoke/cluster.ts";
import { pop } from "./smoke/driver.ts";

const Record = types.json<{ topic: string; payload: string }>("io.statefun.playground/EgressRecord");

const person = statefulFunction({
  typename: "example/person",
  handle(ctx, msg) {
    const name = new TextDecoder().decode(msg.bytes);
    ctx.send(egressMessage("io.statefun.playground/egress", { topic: "out", payload: `hello ${name}` }, Record));
  },
});

const faulty = statefulFunction({
  typename: "example/faulty",
  handle() {
    throw new Error("refuses on purpose");
  },
});

/** The first line of Eddy's output that matches `pattern`, waiting for it at most `withinMs`. */
async function lineMatching(eddy: EddyProcess, pattern: RegExp, withinMs: number): Promise<string> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const line = eddy.output.split("\n").find((candidate) => pattern.test(candidate));
    if (line !== undefined) return line;
    if (Date.now() > deadline) throw new Error(`no line matching ${pattern} within ${withinMs} ms`);
    await sleep(50);
  }
}

function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

async function send(eddy: EddyProcess, path: string, body: string): Promise<void> {
  const response = await fetch(`${eddy.ingressUrl()}${path}`, {
    method: "POST",
    headers: { "content-type": "application/vnd.test/text" },
    body,
  });
  assert.equal(response.status, 200, await response.text());
}

describe("a function Eddy cannot reach", { timeout: 120_000 }, () => {
  it("is logged at once with its URL and cause, and again once it is reachable", async () => {
    const port = await freePort();
    const personUrl = `http://127.0.0.1:${port}/person`;
    const lostUrl = "http://functions.invalid:8000/lost";
    const eddy = new EddyProcess({
      moduleYaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: http://127.0.0.1:${port}/{function.name}
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: elsewhere/*
  urlPathTemplate: http://functions.invalid:8000/{function.name}
---
${playgroundYaml(["out"])}`,
      args: ["run", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}"],
    });
    let functions: Awaited<ReturnType<typeof serve>> | undefined;
    await withEddy(eddy, async () => {
      await eddy.start();
      await send(eddy, "example/person/x", "x");
      await send(eddy, "elsewhere/lost/y", "y");

      // Well before the call budget (1 min) runs out.
      const refused = await lineMatching(
        eddy,
        new RegExp(`${literal(personUrl)}.*ECONNREFUSED 127\\.0\\.0\\.1:${port}`),
        10_000,
      );
      assert.match(refused, /example\/person/);
      assert.match(refused, /retry/, "the line says Eddy keeps retrying");
      const unresolved = await lineMatching(
        eddy,
        new RegExp(`${literal(lostUrl)}.*ENOTFOUND functions\\.invalid`),
        10_000,
      );
      assert.match(unresolved, /elsewhere\/lost/);

      functions = await serve(createEndpoint([person]), { port });
      const recovered = await lineMatching(
        eddy,
        new RegExp(`${literal(personUrl)} is reachable again after \\d+ failed call`),
        40_000,
      );
      assert.equal((JSON.parse(recovered) as LogRecord).level, "info");
      let record: string | undefined;
      const deadline = Date.now() + 10_000;
      while (record === undefined && Date.now() < deadline) {
        record = await pop(eddy, "out");
        if (record === undefined) await sleep(50);
      }
      assert.equal(record, "hello x");

      for (const { msg } of logRecords(eddy.output).filter((record) => record.msg.includes(personUrl))) {
        assert.ok(msg.split("example/person").length - 1 <= 1, `the function is named at most once in: ${msg}`);
      }
      const refusedRecord = JSON.parse(refused) as LogRecord;
      assert.deepEqual(
        [refusedRecord.level, refusedRecord.functionType, refusedRecord.address, refusedRecord.endpoint],
        ["warn", "example/person", "example/person/x", personUrl],
      );
    }).finally(() => functions?.close());
  });

  it("a function that fails is named once in the failure lines", async () => {
    const functions = await serve(createEndpoint([faulty]), { port: 0 });
    const eddy = new EddyProcess({
      moduleYaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: ${functions.url}{function.name}
  transport:
    call: 300ms
---
${playgroundYaml(["out"])}`,
      args: ["run", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}", "--failure-policy", "dead-letter"],
    });
    await withEddy(eddy, async () => {
      await eddy.start();
      await send(eddy, "example/faulty/x", "x");
      await lineMatching(eddy, /dead letter \S+ for example\/faulty\/x/, 10_000);
      const records = logRecords(eddy.output).filter((record) => record.msg.includes("refuses on purpose"));
      assert.ok(records.length >= 2, `a failure line and a dead letter line:\n${eddy.output}`);
      for (const { msg, address } of records) {
        const named = msg.match(/example\/faulty( \(id x\)|\/x)?/g) ?? [];
        assert.equal(named.length, 1, `the address is named once in: ${msg}`);
        assert.equal(address, "example/faulty/x");
      }
      assert.ok(records.some((record) => record.deadLetter !== undefined && record.level === "warn"));
    }).finally(() => functions.close());
  });

  it("a function that always fails is logged once, then summed up with a count; --log-level error shows only errors", async () => {
    const functions = await serve(createEndpoint([faulty]), { port: 0 });
    const module = `kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: ${functions.url}{function.name}
  transport:
    call: 300ms
---
${playgroundYaml(["out"])}`;
    const args = ["run", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}"];
    try {
      const eddy = new EddyProcess({ moduleYaml: module, args });
      await withEddy(eddy, async () => {
        await eddy.start();
        await send(eddy, "example/faulty/x", "x");
        await lineMatching(eddy, /example\/faulty\/x: POST .*refuses on purpose/, 10_000);
        await sleep(500); // the retries go on, unlogged
        assert.equal(await eddy.stop(), 0);
        const records = logRecords(eddy.output).filter((record) => record.address === "example/faulty/x");
        for (const record of records) assert.equal(record.functionType, "example/faulty");
        const failures = records.filter((record) => record.repeated === undefined);
        // One from the invoker (per endpoint, at the first failed call), one when the batch's budget ran out.
        assert.deepEqual(
          failures.map((record) => [record.level, record.endpoint !== undefined]).sort(),
          [
            ["warn", false],
            ["warn", true],
          ],
          eddy.output,
        );
        const summaries = records.filter((record) => record.repeated !== undefined);
        const calls = summaries.find((record) => record.endpoint === `${functions.url}faulty`);
        assert.ok(calls !== undefined && (calls.repeated ?? 0) >= 2, `a summary of the failed calls:\n${eddy.output}`);
        assert.match(calls.msg, /failed \d+ more times in the last \d+ s \(last: HTTP 500/);
      });

      // Under the stop policy the same failure ends in an error line, the only one left at this level.
      const quiet = new EddyProcess({
        moduleYaml: module,
        args: [...args, "--failure-policy", "stop", "--log-level", "error"],
      });
      await withEddy(quiet, async () => {
        await quiet.start();
        await send(quiet, "example/faulty/x", "x");
        await lineMatching(quiet, /stopping: /, 10_000);
        await quiet.stop();
        const levels = logRecords(quiet.output).map((record) => record.level);
        assert.ok(levels.length > 0 && levels.every((level) => level === "error"), quiet.output);
      });
    } finally {
      await functions.close();
    }
  });
});
