// `eddy serve` end to end: the real CLI process serving the greeter example over HTTP.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeFromFunction, encodeToFunction, MutationType } from "@eddy/protocol";

const root = resolve(import.meta.dirname, "../..");
const eddy = resolve(root, "node_modules/.bin/eddy");

function toFunctionForPerson(visits: Uint8Array | null): Uint8Array {
  return encodeToFunction({
    invocation: {
      target: { namespace: "example", type: "person", id: "seth" },
      state: [
        {
          stateName: "visits",
          stateValue: visits && { typename: "io.statefun.types/int", hasValue: true, value: visits },
        },
      ],
      invocations: [
        {
          argument: {
            typename: "example/GreetRequest",
            hasValue: true,
            value: new TextEncoder().encode('{"name":"seth"}'),
          },
        },
      ],
    },
  });
}

describe("eddy serve", () => {
  let server: ChildProcess;
  let url: string;

  before(async () => {
    server = spawn(eddy, ["serve", "examples/greeter/functions.ts", "--port", "0"], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const [firstChunk] = (await once(server.stdout as NodeJS.ReadableStream, "data")) as [Buffer];
    const match = /serving (.+) at (http:\/\/\S+)/.exec(firstChunk.toString());
    assert.ok(match, `unexpected first line: ${firstChunk.toString()}`);
    assert.equal(match[1], "example/greeter, example/person");
    url = match[2] as string;
  });

  after(() => {
    if (server.exitCode === null) server.kill("SIGKILL");
  });

  it("answers a StateFun request for example/person with the visit count and a message to the greeter", async () => {
    const response = await fetch(url, { method: "POST", body: toFunctionForPerson(Uint8Array.of(0x0d, 2, 0, 0, 0)) });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/octet-stream");
    const reply = decodeFromFunction(new Uint8Array(await response.arrayBuffer()));
    assert.ok(reply.ok);
    const result = reply.value.invocationResult;
    assert.equal(result?.stateMutations[0]?.mutationType, MutationType.MODIFY);
    assert.deepEqual([...(result?.stateMutations[0]?.stateValue?.value ?? [])], [0x0d, 3, 0, 0, 0]);
    assert.equal(result?.outgoingMessages[0]?.target?.type, "greeter");
    assert.equal(new TextDecoder().decode(result?.outgoingMessages[0]?.argument?.value), '{"name":"seth","visits":3}');
  });

  it("asks for the state spec when the runtime has not registered it yet", async () => {
    const request = encodeToFunction({
      invocation: {
        target: { namespace: "example", type: "person", id: "seth" },
        invocations: [{ argument: { typename: "example/GreetRequest", hasValue: true, value: new Uint8Array(0) } }],
      },
    });
    const reply = decodeFromFunction(
      new Uint8Array(await (await fetch(url, { method: "POST", body: request })).arrayBuffer()),
    );
    assert.ok(reply.ok);
    assert.equal(reply.value.incompleteInvocationContext?.missingValues[0]?.stateName, "visits");
  });

  it("stops cleanly on SIGTERM", async () => {
    server.kill("SIGTERM");
    const [code] = await once(server, "exit");
    assert.equal(code, 0);
  });
});

describe("eddy usage errors", () => {
  it("an unknown command exits 2 and names it", () => {
    const run = spawnSync(eddy, ["bogus"], { cwd: root, encoding: "utf8" });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /unknown command "bogus"/);
  });

  it("a module without functions exits 2 and says so", () => {
    const run = spawnSync(eddy, ["serve", "packages/sdk/src/typename.ts", "--port", "0"], {
      cwd: root,
      encoding: "utf8",
    });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /exports no stateful functions/);
  });

  it("a bad port exits 2 and names the flag", () => {
    const run = spawnSync(eddy, ["serve", "examples/greeter/functions.ts", "--port", "http"], {
      cwd: root,
      encoding: "utf8",
    });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /--port: "http" is not a port number/);
  });
});
