// Secure calls from `eddy run` to functions: requests signed with the endpoint's
// `signing_key` are answered by an SDK handler holding the key, and refused (401) when the
// keys differ or the request is unsigned; TLS with the module's CA bundle and a client
// certificate (mutual TLS) reaches an HTTPS function server that requires one, and without
// the certificate the call fails and the failure policy applies.
//
// The runtime's own ingress and egress listen on 127.0.0.1 by default and, given a token,
// answer only requests that carry it.
//
// The certificates in tls/ were made once with openssl (EC P-256, valid until 2126): a test
// CA (its key thrown away), a server certificate for localhost/127.0.0.1 and a client
// certificate, both signed by that CA.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpsServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  createEndpoint,
  nodeHandler,
  type RunningServer,
  SIGNATURE_HEADER,
  serve,
  statefulFunction,
  types,
} from "@eddy/sdk";
import { EddyProcess, greeterDevArgs, playgroundYaml, runEddyCommand } from "./smoke/cluster.ts";

const tlsDir = join(import.meta.dirname, "tls");

function greeterOf(namespace: string) {
  return statefulFunction({
    typename: `${namespace}/greeter`,
    handle(ctx) {
      if (ctx.caller !== undefined) ctx.reply(`hello ${ctx.self.id} from ${namespace}`, types.string);
    },
  });
}

async function untilOutput(eddy: EddyProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(eddy.output)) {
    if (Date.now() > deadline) assert.fail(`no ${pattern} in the runtime's output:\n${eddy.output}`);
    await sleep(50);
  }
}

describe("secure calls to functions", { timeout: 60_000 }, () => {
  let signed: RunningServer;
  let forged: RunningServer;
  let https: Server;
  let eddy: EddyProcess;
  const keyDir = mkdtempSync(join(tmpdir(), "eddy-key-"));

  before(async () => {
    signed = await serve(createEndpoint([greeterOf("signed")]), { port: 0, signingKeys: "fn-key-1" });
    forged = await serve(createEndpoint([greeterOf("forged")]), { port: 0, signingKeys: "another-key" });
    https = createHttpsServer(
      {
        key: readFileSync(join(tlsDir, "server-key.pem")),
        cert: readFileSync(join(tlsDir, "server.pem")),
        ca: readFileSync(join(tlsDir, "ca.pem")),
        requestCert: true,
        rejectUnauthorized: true,
      },
      nodeHandler(createEndpoint([greeterOf("mtls"), greeterOf("nocert")])),
    );
    await new Promise<void>((done) => https.listen(0, "127.0.0.1", done));
    const httpsUrl = `https://localhost:${(https.address() as AddressInfo).port}/`;
    const keyFile = join(keyDir, "fn.key");
    writeFileSync(keyFile, "fn-key-1\n");
    const endpoint = (pattern: string, url: string, transport: string[]) =>
      [
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        `  functions: ${pattern}`,
        `  urlPathTemplate: ${url}`,
        "  transport:",
        ...transport.map((line) => `    ${line}`),
        "---",
        "",
      ].join("\n");
    const yaml = [
      endpoint("signed/*", signed.url, [`signing_key: ${keyFile}`]),
      endpoint("forged/*", forged.url, ["call: 1s", `signing_key: ${keyFile}`]),
      endpoint("mtls/*", httpsUrl, [
        `trust_cacerts: ${join(tlsDir, "ca.pem")}`,
        `client_cert: ${join(tlsDir, "client.pem")}`,
        `client_key: ${join(tlsDir, "client-key.pem")}`,
      ]),
      endpoint("nocert/*", httpsUrl, ["call: 1s", `trust_cacerts: ${join(tlsDir, "ca.pem")}`]),
      playgroundYaml(["unused"]),
    ].join("");
    eddy = new EddyProcess({
      moduleYaml: yaml,
      args: ["run", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}", "--failure-policy", "dead-letter"],
    });
    await eddy.start();
  });

  after(async () => {
    await eddy?.dispose();
    await signed?.close();
    await forged?.close();
    https?.closeAllConnections();
    https?.close();
    rmSync(keyDir, { recursive: true, force: true });
  });

  const ask = async (path: string) => {
    const response = await fetch(`${eddy.ingressUrl()}${path}`, {
      method: "POST",
      headers: { prefer: "wait=5" },
      body: "x",
    });
    return { status: response.status, body: await response.text() };
  };

  it("signs every call, and the function holding the key answers", async () => {
    assert.deepEqual(await ask("signed/greeter/a"), { status: 200, body: "hello a from signed" }, eddy.output);
  });

  it("the function refuses requests that are not signed with its key: unsigned (401) or signed with another", async () => {
    const unsigned = await fetch(signed.url, { method: "POST", body: new Uint8Array(8) });
    assert.equal(unsigned.status, 401);
    assert.match(await unsigned.text(), new RegExp(`no ${SIGNATURE_HEADER} header`));
    const answer = await fetch(`${eddy.ingressUrl()}forged/greeter/b`, {
      method: "POST",
      headers: { prefer: "wait=0.2" },
      body: "x",
    });
    assert.equal(answer.status, 202, "never answered");
    await untilOutput(
      eddy,
      /dead letter \d+-\d+-\d+ for forged\/greeter\/b: .*HTTP 401: refused: the signature does not match/,
      15_000,
    );
  });

  it("reaches an HTTPS function with the module's CA and client certificate (mutual TLS)", async () => {
    assert.deepEqual(await ask("mtls/greeter/c"), { status: 200, body: "hello c from mtls" }, eddy.output);
  });

  it("without the client certificate the server refuses the connection and the failure policy applies", async () => {
    const answer = await fetch(`${eddy.ingressUrl()}nocert/greeter/d`, {
      method: "POST",
      headers: { prefer: "wait=0.2" },
      body: "x",
    });
    assert.equal(answer.status, 202);
    await untilOutput(
      eddy,
      /dead letter \d+-\d+-\d+ for nocert\/greeter\/d: POST https:\/\/localhost:\d+\/.* failed/,
      15_000,
    );
  });
});

describe("ingress and egress with a bearer token", { timeout: 60_000 }, () => {
  let eddy: EddyProcess;
  const tokenDir = mkdtempSync(join(tmpdir(), "eddy-token-"));
  const tokenFile = join(tokenDir, "token");

  before(async () => {
    writeFileSync(tokenFile, "s3cret-token\n");
    eddy = new EddyProcess({
      moduleYaml: playgroundYaml(["greetings"]),
      args: greeterDevArgs("--token-file", tokenFile),
    });
    await eddy.start();
  });

  after(async () => {
    await eddy?.dispose();
    rmSync(tokenDir, { recursive: true, force: true });
  });

  const greet = (headers: Record<string, string>) =>
    fetch(`${eddy.ingressUrl()}example/person/ann`, {
      method: "POST",
      headers: { "content-type": "application/vnd.example/GreetRequest", prefer: "wait=5", ...headers },
      body: '{"name":"ann"}',
    });

  it("listens on 127.0.0.1 by default", () => {
    assert.match(eddy.output, /eddy: ingress listening on http:\/\/127\.0\.0\.1:\d+\//);
    assert.match(eddy.output, /eddy: egress listening on http:\/\/127\.0\.0\.1:\d+\//);
  });

  it("answers only requests with the token: 401 without it or with another", async () => {
    const missing = await greet({});
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get("www-authenticate"), 'Bearer realm="eddy"');
    assert.match(await missing.text(), /missing bearer token/);
    const wrong = await greet({ authorization: "Bearer guess" });
    assert.equal(wrong.status, 401);
    assert.match(await wrong.text(), /wrong bearer token/);
    const right = await greet({ authorization: "Bearer s3cret-token" });
    assert.deepEqual([right.status, await right.text()], [200, "Welcome ann!"]);

    const popWithout = await fetch(`${eddy.egressUrl()}greetings`);
    assert.equal(popWithout.status, 401);
    const popped = await fetch(`${eddy.egressUrl()}greetings`, { headers: { authorization: "Bearer s3cret-token" } });
    assert.deepEqual([popped.status, await popped.text()], [200, "Welcome ann!"]);
  });

  it("eddy send takes the token from EDDY_TOKEN (or --token-file)", async () => {
    const run = (token: string) =>
      runEddyCommand(
        [
          "send",
          "example/person/bo",
          '{"name":"bo"}',
          "--type",
          "example/GreetRequest",
          "--wait",
          "5",
          "--ingress",
          eddy.ingressUrl(),
        ],
        { ...process.env, EDDY_TOKEN: token },
      );
    const refused = await run("");
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /HTTP 401: missing bearer token/);
    assert.deepEqual(await run("s3cret-token"), { status: 0, stdout: "Welcome bo!\n", stderr: "" });
  });
});
