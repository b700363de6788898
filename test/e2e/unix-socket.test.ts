// Functions served on a unix socket (`http+unix:///…/fns.sock/<path>` in module.yaml, as
// StateFun's v2 endpoint spec allows): `eddy run` reaches them through the socket file,
// with the HTTP path after the socket kept, and state carries across messages.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createEndpoint, egressMessage, nodeHandler, statefulFunction, types } from "@eddy/sdk";
import { EddyProcess, playgroundYaml } from "./smoke/cluster.ts";
import { nextRecord } from "./smoke/driver.ts";

const Record = types.json<{ topic: string; payload: string }>("io.statefun.playground/EgressRecord");

const counter = statefulFunction({
  typename: "sock/counter",
  state: { seen: types.int },
  handle(ctx) {
    ctx.storage.seen = (ctx.storage.seen ?? 0) + 1;
    const payload = `${ctx.self.id} ${ctx.storage.seen}`;
    ctx.send(egressMessage("io.statefun.playground/egress", { topic: "out", payload }, Record));
  },
});

describe("functions on a unix socket", { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "eddy-unix-"));
  const socketPath = join(dir, "fns.sock");
  const paths: string[] = [];
  const handler = nodeHandler(createEndpoint([counter]));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    paths.push(req.url ?? "");
    handler(req, res);
  });
  let eddy: EddyProcess;

  before(async () => {
    await new Promise<void>((done) => server.listen(socketPath, done));
    eddy = new EddyProcess({
      moduleYaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: sock/*
  urlPathTemplate: http+unix://${socketPath}/statefun/{function.name}
---
${playgroundYaml(["out"])}`,
      args: ["run", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}"],
    });
    await eddy.start();
  });

  after(async () => {
    await eddy.dispose();
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("invokes the function through the socket file, on the path after it, keeping state", async () => {
    for (let visit = 1; visit <= 2; visit++) {
      const response = await fetch(`${eddy.ingressUrl()}sock/counter/ada`, { method: "POST", body: "x" });
      assert.equal(response.status, 200, await response.text());
      assert.equal(await nextRecord(eddy, "out"), `ada ${visit}`);
    }
    assert.ok(paths.length >= 2, "the function server saw the requests");
    assert.ok(
      paths.every((path) => path === "/statefun/counter"),
      `requests went to ${JSON.stringify(paths)}`,
    );
  });
});
