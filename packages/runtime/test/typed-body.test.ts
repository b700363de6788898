// HTTP bodies <-> typed values at the ingress: what each Content-Type means for a request,
// and how each kind of reply reads.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TypedValue } from "@eddy/protocol";
import { types } from "@eddy/sdk";
import { argumentFromBody, replyBody } from "../src/io/typed-body.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (body: Uint8Array) => new TextDecoder().decode(body);

function argument(contentType: string | undefined, body: string): TypedValue {
  const read = argumentFromBody(contentType, bytes(body));
  assert.ok(read.ok, read.ok ? "" : read.message);
  return read.argument;
}

function refused(contentType: string, body: string | Uint8Array): { status: number; message: string } {
  const read = argumentFromBody(contentType, typeof body === "string" ? bytes(body) : body);
  assert.ok(!read.ok, "expected the body to be refused");
  return { status: read.status, message: read.message };
}

describe("request bodies", () => {
  it("application/vnd.<typename> is the value's bytes as they are, the typename's case kept", () => {
    const value = argument("application/vnd.Com.Example/Greet; charset=utf-8", '{"name":"x"}');
    assert.equal(value.typename, "Com.Example/Greet");
    assert.equal(text(value.value), '{"name":"x"}');
  });

  it("without a known Content-Type the bytes go under io.statefun.types/string unchanged (StateFun's playground)", () => {
    for (const contentType of [undefined, "application/x-www-form-urlencoded", "application/octet-stream"]) {
      const value = argument(contentType, "raw");
      assert.equal(value.typename, "io.statefun.types/string");
      assert.equal(text(value.value), "raw");
    }
  });

  it("text/plain is a string as StateFun's SDKs read it, or the built-in type the typename parameter names", () => {
    assert.equal(types.string.deserialize(argument("text/plain", "seth").value), "seth");
    assert.equal(types.string.deserialize(argument("text/plain; charset=utf-8", "").value), "");
    assert.equal(types.int.deserialize(argument("text/plain; typename=io.statefun.types/int", " -42\n").value), -42);
    assert.equal(
      types.long.deserialize(argument("text/plain; typename=io.statefun.types/long", "9007199254740993").value),
      9007199254740993n,
    );
    assert.equal(types.double.deserialize(argument("text/plain; typename=io.statefun.types/double", "2.5").value), 2.5);
    assert.equal(types.bool.deserialize(argument('text/plain; typename="io.statefun.types/bool"', "true").value), true);
    const custom = argument("text/plain; typename=example/Note", "hello");
    assert.deepEqual([custom.typename, text(custom.value)], ["example/Note", "hello"]);
  });

  it("text/plain that is not a value of the named type is a 400 naming the text and the type", () => {
    const notInt = refused("text/plain; typename=io.statefun.types/int", "12x");
    assert.equal(notInt.status, 400);
    assert.match(notInt.message, /"12x" is not a io\.statefun\.types\/int value \(expected a 32-bit integer\)/);
    assert.match(refused("text/plain; typename=io.statefun.types/int", "2147483648").message, /32-bit/);
    assert.match(refused("text/plain; typename=io.statefun.types/bool", "yes").message, /true or false/);
    assert.match(refused("text/plain", Uint8Array.of(0xff, 0xfe)).message, /not valid UTF-8/);
  });

  it("application/json needs a typename and must be JSON", () => {
    const value = argument("application/json; typename=example/Greet", '{"name":"seth"}');
    assert.deepEqual([value.typename, text(value.value)], ["example/Greet", '{"name":"seth"}']);
    const untyped = refused("application/json", "{}");
    assert.equal(untyped.status, 415);
    assert.match(untyped.message, /typename=<namespace>\/<type>/);
    const broken = refused("application/json; typename=example/Greet", "{name:");
    assert.equal(broken.status, 400);
    assert.match(broken.message, /not JSON/);
  });
});

describe("reply bodies", () => {
  const typed = (typename: string, value: Uint8Array): TypedValue => ({ typename, hasValue: true, value });

  it("built-in types read as text", () => {
    const cases: [TypedValue, string][] = [
      [typed(types.string.typename, types.string.serialize("Welcome seth!")), "Welcome seth!"],
      [typed(types.int.typename, types.int.serialize(-7)), "-7"],
      [typed(types.long.typename, types.long.serialize(2n ** 62n)), String(2n ** 62n)],
      [typed(types.double.typename, types.double.serialize(0.5)), "0.5"],
      [typed(types.bool.typename, types.bool.serialize(false)), "false"],
    ];
    for (const [value, expected] of cases) {
      const reply = replyBody(value, undefined);
      assert.equal(reply.contentType, "text/plain; charset=utf-8");
      assert.equal(text(reply.body), expected);
    }
  });

  it("JSON values read as application/json, anything else as its bytes under application/vnd.<typename>", () => {
    const json = replyBody(typed("example/Greeting", bytes(' {"text":"hi"}')), "*/*");
    assert.deepEqual([json.contentType, text(json.body)], ["application/json", ' {"text":"hi"}']);
    const opaque = replyBody(typed("example/Proto", Uint8Array.of(0x0a, 0x02, 0x68, 0x69)), undefined);
    assert.equal(opaque.contentType, "application/vnd.example/Proto");
    assert.deepEqual([...opaque.body], [0x0a, 0x02, 0x68, 0x69]);
  });

  it("Accept: application/vnd.* gets the bytes of any type, and malformed built-ins come as bytes", () => {
    const value = typed(types.string.typename, types.string.serialize("hi"));
    const raw = replyBody(value, "application/vnd.io.statefun.types/string");
    assert.equal(raw.contentType, "application/vnd.io.statefun.types/string");
    assert.deepEqual(raw.body, value.value);
    const malformed = replyBody(typed(types.int.typename, Uint8Array.of(0x0d, 0x01)), undefined);
    assert.equal(malformed.contentType, "application/vnd.io.statefun.types/int");
  });
});
