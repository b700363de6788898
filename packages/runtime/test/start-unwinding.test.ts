// A start that fails closes what it had opened (assembly/closers.ts), and what can be checked
// before anything opens is checked then (assembly/endpoints.ts, the connector registry):
//   - the playground ingress's port is taken after a Kinesis ingress was opened: the start fails
//     with one line, the Kinesis reader is stopped (its endpoint hears nothing more, where a
//     running one asks every second), and the same state directory starts again at once in
//     this process;
//   - a signing key that is empty or gone by the time Eddy starts is a StartupError naming the
//     module's file:line, before anything is opened (it used to fail the first call);
//   - a runtime that cannot go on and has no onStop stops itself.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, statefulFunction } from "@eddy/sdk";
import { parseModule } from "../src/config/module.ts";
import type { ModuleConfig } from "../src/config/types.ts";
import { runningProcess, StartupError, startRuntime } from "../src/runtime.ts";

const dirs: string[] = [];
const servers: Server[] = [];
after(async () => {
  for (const server of servers) await new Promise((done) => server.close(done));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "eddy-unwinding-"));
  dirs.push(dir);
  return dir;
}

function module(yaml: string): ModuleConfig {
  const loaded = parseModule(yaml, "module.yaml");
  if (!loaded.ok) throw new Error(loaded.errors.map((error) => error.format()).join("\n"));
  return loaded.module;
}

/** An HTTP server on 127.0.0.1 that counts requests and answers each with a Kinesis-style 500. */
async function countingEndpoint(): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    req.resume();
    res.writeHead(500, { "content-type": "application/x-amz-json-1.1" });
    res.end(JSON.stringify({ __type: "InternalFailure", message: "test endpoint" }));
  });
  servers.push(server);
  await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
}

const sink = statefulFunction({ typename: "test/sink", handle() {} });

describe("a start that fails late", () => {
  it("stops the readers it had started and frees the state directory for the next start", async () => {
    const kinesis = await countingEndpoint();
    const blocker = createServer();
    servers.push(blocker);
    await new Promise<void>((listening) => blocker.listen(0, "127.0.0.1", listening));
    const takenPort = (blocker.address() as AddressInfo).port;
    const yaml = (port: number) => `kind: io.statefun.kinesis.v1/ingress
spec:
  id: test/in
  awsRegion: {type: custom-endpoint, endpoint: "${kinesis.url}", id: us-east-1}
  awsCredentials: {type: basic, accessKeyId: test, secretAccessKey: test}
  startupPosition: {type: earliest}
  streams:
    - stream: s
      valueType: test/Text
      targets: [test/sink]
---
kind: io.statefun.playground.v1/ingress
spec:
  port: ${port}
`;
    const stateDir = join(freshDir(), "state");
    const lines: string[] = [];
    await assert.rejects(
      startRuntime({
        module: module(yaml(takenPort)),
        stateDir,
        inProcess: createEndpoint([sink]),
        log: (line) => lines.push(line),
      }),
      (error: unknown) =>
        error instanceof StartupError &&
        error.message ===
          `port ${takenPort} on 127.0.0.1 is in use; the ingress io.statefun.playground.v1/ingress (module.yaml:13:1) wants it`,
    );
    assert.equal(runningProcess(stateDir), undefined, "the state directory is free");
    // A reader left running would list the shards again within a second or two (it retries
    // failed listings every second, as the restart below shows it does).
    const heard = kinesis.requests();
    await sleep(2_500);
    assert.equal(kinesis.requests(), heard, "no reader keeps asking Kinesis after the failed start");

    const runtime = await startRuntime({
      module: module(yaml(0)),
      stateDir,
      inProcess: createEndpoint([sink]),
      log: () => undefined,
    });
    try {
      assert.equal(runtime.ingressUrls.length, 1);
      assert.equal(runningProcess(stateDir), process.pid);
      const deadline = Date.now() + 10_000;
      while (kinesis.requests() < heard + 2 && Date.now() < deadline) await sleep(20);
      assert.ok(kinesis.requests() >= heard + 2, "the same reader, running, asks Kinesis again and again");
    } finally {
      await runtime.stop();
    }
    assert.equal(runningProcess(stateDir), undefined);
    const after = kinesis.requests();
    await sleep(1_500);
    assert.equal(kinesis.requests(), after, "stop() stops the reader too");
  });
});

describe("files the module names are read at start", () => {
  function endpointYaml(keyFile: string): string {
    return `kind: io.statefun.endpoints.v2/http
spec:
  functions: remote/*
  urlPathTemplate: http://127.0.0.1:1/{function.name}
  transport:
    signing_key: ${keyFile}
`;
  }

  it("an empty signing key is a StartupError at the line naming it, and nothing is left open", async () => {
    const dir = freshDir();
    const keyFile = join(dir, "fn.key");
    writeFileSync(keyFile, "a key\n");
    const loaded = module(endpointYaml(keyFile));
    writeFileSync(keyFile, "  \n");
    const stateDir = join(dir, "state");
    await assert.rejects(
      startRuntime({ module: loaded, stateDir, log: () => undefined }),
      (error: unknown) =>
        error instanceof StartupError && /^module\.yaml:\d+:\d+: signing_key .*fn\.key is empty$/.test(error.message),
    );
    assert.equal(runningProcess(stateDir), undefined);
  });

  it("a signing key gone since the module was loaded is a StartupError at the line naming it", async () => {
    const dir = freshDir();
    const keyFile = join(dir, "fn.key");
    writeFileSync(keyFile, "a key\n");
    const loaded = module(endpointYaml(keyFile));
    rmSync(keyFile);
    await assert.rejects(
      startRuntime({ module: loaded, stateDir: join(dir, "state"), log: () => undefined }),
      (error: unknown) =>
        error instanceof StartupError &&
        /^module\.yaml:\d+:\d+: cannot read the signing key .*fn\.key \(ENOENT\)$/.test(error.message),
    );
  });
});

describe("a runtime that cannot go on", () => {
  it("stops itself when no onStop was given, so no address stays wedged", async () => {
    const failing = statefulFunction({
      typename: "test/failing",
      handle() {
        throw new Error("the function broke");
      },
    });
    const stateDir = join(freshDir(), "state");
    const lines: string[] = [];
    const runtime = await startRuntime({
      module: module("kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n"),
      stateDir,
      inProcess: createEndpoint([failing]),
      failurePolicy: "stop",
      log: (line) => lines.push(line),
    });
    try {
      const answer = await fetch(`${runtime.ingressUrls[0]}test/failing/x`, {
        method: "POST",
        headers: { "content-type": "application/vnd.test/Text" },
        body: "hi",
      });
      assert.equal(answer.status, 200);
      const deadline = Date.now() + 10_000;
      while (runningProcess(stateDir) !== undefined && Date.now() < deadline) await sleep(20);
      assert.equal(runningProcess(stateDir), undefined, "the runtime stopped and gave the directory up");
      assert.ok(
        lines.some((line) => line.startsWith("eddy: stopping: ")),
        lines.join("\n"),
      );
    } finally {
      await runtime.stop();
    }
  });
});
