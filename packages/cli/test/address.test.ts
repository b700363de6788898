// Addresses on the command line: the first two `/`-separated parts are the function type,
// everything after the second `/` is the id (slashes and all); in a URL path each part is
// %-encoded, so an id's slashes stay inside the id.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatAddress, parseAddress, parseTypename, pathOf } from "../src/address.ts";
import { valueBody } from "../src/state-value.ts";
import { UsageError } from "../src/usage.ts";

describe("parseAddress", () => {
  it("takes namespace and type from the first two parts, the id from the rest", () => {
    assert.deepEqual(parseAddress("example/person/alice"), { namespace: "example", type: "person", id: "alice" });
    assert.deepEqual(parseAddress("com.acme.shop/cart/user/42/items"), {
      namespace: "com.acme.shop",
      type: "cart",
      id: "user/42/items",
    });
  });

  it("refuses a typename without an id, and empty parts, naming the expected form", () => {
    for (const text of ["example/person", "example/person/", "/person/alice", "example//alice", "alice", ""]) {
      assert.throws(
        () => parseAddress(text),
        (error: unknown) =>
          error instanceof UsageError &&
          error.message === `"${text}" is not an address: expected <namespace>/<type>/<id>`,
        text,
      );
    }
  });

  it("writes back what it read", () => {
    assert.equal(formatAddress(parseAddress("a.b/c/d/e f")), "a.b/c/d/e f");
  });
});

describe("parseTypename", () => {
  it("is exactly two non-empty parts", () => {
    assert.deepEqual(parseTypename("example/person"), { namespace: "example", type: "person" });
    assert.throws(() => parseTypename("example"), /"example" is not a function type: expected <namespace>\/<type>$/);
    assert.throws(() => parseTypename("example/"), UsageError);
    assert.throws(() => parseTypename("example/person/alice"), /an address's id does not belong here/);
  });
});

describe("pathOf", () => {
  it("%-encodes each part, so an id's slashes, spaces and percent signs stay in the id", () => {
    assert.equal(pathOf(parseAddress("example/person/a/b c%d?e#f")), "example/person/a%2Fb%20c%25d%3Fe%23f");
    assert.equal(pathOf(parseTypename("com.acme/cart")), "com.acme/cart");
  });
});

describe("the value eddy state put sends", () => {
  it("is JSON when the text parses as JSON, else the text as a string", () => {
    assert.deepEqual(valueBody("42", false), { value: 42 });
    assert.deepEqual(valueBody("true", false), { value: true });
    assert.deepEqual(valueBody('{"a":[1,2]}', false), { value: { a: [1, 2] } });
    assert.deepEqual(valueBody('"42"', false), { value: "42" });
    assert.deepEqual(valueBody("hello world", false), { value: "hello world" });
    assert.deepEqual(valueBody("{not json", false), { value: "{not json" });
  });

  it("with --base64 is the bytes as given, and refuses text that is not base64", () => {
    assert.deepEqual(valueBody("AAEC/w==", true), { base64: "AAEC/w==" });
    assert.throws(() => valueBody("not base64!", true), /--base64: "not base64!" is not base64/);
    assert.throws(() => valueBody("AAE", true), UsageError);
  });
});
