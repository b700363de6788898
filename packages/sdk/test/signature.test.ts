// Signed function calls: the signature binds the body and the time to a key, and every
// HTTP adapter given keys refuses requests that are unsigned, tampered with, signed with
// another key or too old, before running anything.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeMultiAddressRequest, encodeToFunction, MULTI_ADDRESS_CONTENT_TYPE } from "@eddy/protocol";
import {
  createEndpoint,
  fetchHandler,
  SIGNATURE_HEADER,
  serve,
  signBody,
  statefulFunction,
  types,
  verifySignature,
} from "@eddy/sdk";

const body = new TextEncoder().encode("a ToFunction, say");
const NOW = 1_700_000_000_000;

describe("signatures", () => {
  it("verify with the key that signed, at any time within the tolerance", () => {
    const header = signBody("secret", body, NOW);
    assert.match(header, /^t=1700000000000,v1=[0-9a-f]{64}$/);
    assert.deepEqual(verifySignature(["secret"], header, body, NOW + 60_000), { ok: true });
    assert.deepEqual(verifySignature(["old", "secret"], header, body, NOW), { ok: true }, "any of several keys");
  });

  it("refuse a missing, malformed, tampered, foreign or stale signature, saying which", () => {
    const header = signBody("secret", body, NOW);
    const reason = (check: ReturnType<typeof verifySignature>) => (check.ok ? "ok" : check.reason);
    assert.match(reason(verifySignature(["secret"], undefined, body, NOW)), /no eddy-signature header/);
    assert.match(reason(verifySignature(["secret"], "v1=zz", body, NOW)), /malformed/);
    const tampered = Uint8Array.from(body);
    tampered[0] = 0x41;
    assert.match(reason(verifySignature(["secret"], header, tampered, NOW)), /does not match/);
    assert.match(reason(verifySignature(["other"], header, body, NOW)), /does not match/);
    const replayed = header.replace("t=1700000000000", "t=1700000000001");
    assert.match(reason(verifySignature(["secret"], replayed, body, NOW)), /does not match/, "the time is signed too");
    assert.match(reason(verifySignature(["secret"], header, body, NOW + 6 * 60_000)), /360 s away from now/);
  });
});

describe("handlers with signing keys", () => {
  const counter = statefulFunction({
    typename: "sig/counter",
    state: { n: types.int },
    handle(ctx) {
      ctx.storage.n = (ctx.storage.n ?? 0) + 1;
    },
  });
  const endpoint = createEndpoint([counter]);
  const request = encodeToFunction({
    invocation: {
      target: { namespace: "sig", type: "counter", id: "1" },
      state: [{ stateName: "n" }],
      invocations: [{ argument: { typename: "x/y", hasValue: true, value: new Uint8Array(0) } }],
    },
  });

  it("serve() answers signed requests and refuses the rest with 401, naming why", async () => {
    const server = await serve(endpoint, { port: 0, signingKeys: "k1" });
    try {
      const post = (headers: Record<string, string>) =>
        fetch(server.url, {
          method: "POST",
          headers: { "content-type": "application/octet-stream", ...headers },
          body: request,
        });
      const signed = await post({ [SIGNATURE_HEADER]: signBody("k1", request, Date.now()) });
      assert.equal(signed.status, 200);
      assert.equal(signed.headers.get("content-type"), "application/octet-stream");
      const unsigned = await post({});
      assert.equal(unsigned.status, 401);
      assert.match(await unsigned.text(), /refused: the request has no eddy-signature header/);
      const foreign = await post({ [SIGNATURE_HEADER]: signBody("k2", request, Date.now()) });
      assert.equal(foreign.status, 401);
    } finally {
      await server.close();
    }
  });

  it("a multi-address body is signed and checked as a whole, the same way", async () => {
    const strict = fetchHandler(endpoint, { signingKeys: "k1" });
    const body = encodeMultiAddressRequest([{ toFunction: request }, { toFunction: request }]);
    const make = (headers: Record<string, string>, sent: Uint8Array = body) =>
      new Request("http://fn/", {
        method: "POST",
        headers: { "content-type": MULTI_ADDRESS_CONTENT_TYPE, ...headers },
        body: sent as Uint8Array<ArrayBuffer>,
      });
    const signed = await strict(make({ [SIGNATURE_HEADER]: signBody("k1", body, Date.now()) }));
    assert.equal(signed.status, 200);
    assert.equal(signed.headers.get("content-type"), MULTI_ADDRESS_CONTENT_TYPE);
    const unsigned = await strict(make({}));
    assert.equal(unsigned.status, 401);
    assert.match(await unsigned.text(), /refused: the request has no eddy-signature header/);
    // A signature of one call's bytes does not pass for the request that carries it.
    const partial = await strict(make({ [SIGNATURE_HEADER]: signBody("k1", request, Date.now()) }));
    assert.equal(partial.status, 401);
  });

  it("fetchHandler does the same; without keys, nothing is checked", async () => {
    const strict = fetchHandler(endpoint, { signingKeys: [new TextEncoder().encode("k1")] });
    const open = fetchHandler(endpoint);
    const make = (headers: Record<string, string>) =>
      new Request("http://fn/", { method: "POST", headers, body: request });
    assert.equal((await strict(make({}))).status, 401);
    assert.equal((await strict(make({ [SIGNATURE_HEADER]: signBody("k1", request, Date.now()) }))).status, 200);
    assert.equal((await open(make({}))).status, 200);
  });
});
