// How the invokers report a failed call: the reason leaves the address to whoever logs it
// (it is said once there), and the HTTP invoker says an endpoint is failing at the first
// failed call, with its URL and cause, rather than when the call budget is spent.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import type { ToFunction } from "@eddy/protocol";
import { createEndpoint, statefulFunction, types } from "@eddy/sdk";
import { freePort } from "../../../test/support/ports.ts";
import type { Address, FunctionTypename } from "../src/core/address.ts";
import { HttpInvoker } from "../src/invoker/http-invoker.ts";
import { InProcessInvoker } from "../src/invoker/in-process-invoker.ts";
import { lineLogger } from "../src/observe/logger.ts";

const target: Address = { typename: "example/person" as FunctionTypename, id: "x" };
const request: ToFunction = {
  invocation: {
    target: { namespace: "example", type: "person", id: "x" },
    state: [],
    invocations: [
      { caller: null, argument: { typename: types.string.typename, hasValue: true, value: new Uint8Array() } },
    ],
  },
} as unknown as ToFunction;

function endpoint(url: string, callTimeoutMs: number) {
  return { url, callTimeoutMs, connectTimeoutMs: 1_000, maxResponseBytes: 1 << 20, poolSize: 4 };
}

describe("invoker failures", () => {
  it("an in-process function's failure does not repeat the address", async () => {
    const person = statefulFunction({
      typename: "example/person",
      handle() {
        throw new Error("boom");
      },
    });
    const outcome = await new InProcessInvoker(createEndpoint([person])).invoke(target, request);
    assert.deepEqual(outcome, { ok: false, reason: "the function failed: boom" });
  });

  it("an endpoint at a closed port is logged at the first failed call, with the URL and cause", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/person`;
    const lines: string[] = [];
    const invoker = new HttpInvoker(
      { endpointFor: () => endpoint(url, 2_000) },
      { log: lineLogger((line) => lines.push(line)), failurePolicy: "dead-letter" },
    );
    const pending = invoker.invoke(target, request);
    // Logged while the call is still being retried.
    for (let wait = 0; lines.length === 0 && wait < 100; wait++) await new Promise((done) => setTimeout(done, 10));
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(
      lines[0] as string,
      new RegExp(
        `calling example/person/x at ${url} failed: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}; Eddy retries each batch for up to 2 s, then keeps it as a dead letter`,
      ),
    );
    const outcome = await pending;
    assert.equal(outcome.ok, false);
    assert.doesNotMatch(
      outcome.ok ? "" : outcome.reason,
      /example\/person/,
      "the reason leaves the address to the caller",
    );
    assert.equal(lines.length, 1, "repeats within the interval are not logged one by one");
    await invoker.close();
    assert.match(
      lines[1] ?? "",
      new RegExp(`${url} failed \\d+ more times? in the last \\d+ s`),
      "closing sums them up",
    );
  });

  it("a reply that never comes is a timeout, and the endpoint's recovery is logged", async () => {
    let answer = false;
    const server = createServer((req, res) => {
      req.resume();
      // An empty octet-stream reply is a success without effects.
      if (answer) res.writeHead(200, { "content-type": "application/octet-stream" }).end();
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/person`;
    const lines: string[] = [];
    const invoker = new HttpInvoker(
      { endpointFor: () => endpoint(url, 200) },
      {
        log: lineLogger((line) => lines.push(line)),
      },
    );
    const silent = await invoker.invoke(target, request);
    assert.match(silent.ok ? "" : silent.reason, /last: timeout: no reply within \d+ ms/);
    assert.match(lines[0] as string, /failed: timeout: no reply within \d+ ms/);
    answer = true;
    assert.equal((await invoker.invoke(target, request)).ok, true);
    assert.match(lines.at(-1) as string, new RegExp(`${url} is reachable again after \\d+ failed calls?$`));
    await invoker.close();
    server.closeAllConnections();
    server.close();
  });
});
