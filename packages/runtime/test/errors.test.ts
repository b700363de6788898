// errors.ts: which errors are retried (isRetriable), the code callers branch on (errorCode),
// and a Failure value surviving a trip through a throw (EddyError.from / toFailure).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BugError, EddyError, errorCode, errorMessage, failure, isRetriable, success } from "../src/errors.ts";

describe("isRetriable", () => {
  it("takes an EddyError's own word for it", () => {
    assert.equal(isRetriable(new EddyError("commit-aborted", "fenced", { retriable: true })), true);
    assert.equal(isRetriable(new EddyError("unauthorized", "no", { retriable: false })), false);
  });

  it("never retries a bug: BugError and JavaScript's errors for wrong code", () => {
    assert.equal(isRetriable(new BugError("broken invariant")), false);
    assert.equal(isRetriable(new TypeError("undefined is not a function")), false);
    assert.equal(isRetriable(new RangeError("invalid array length")), false);
    assert.equal(isRetriable(new ReferenceError("x is not defined")), false);
    assert.equal(isRetriable(new SyntaxError("Unexpected token")), false);
  });

  it("takes anything else as the world's trouble, retriable", () => {
    const reset = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    assert.equal(isRetriable(reset), true);
    assert.equal(isRetriable("a string thrown"), true);
    assert.equal(isRetriable(undefined), true);
  });
});

describe("errorCode", () => {
  it("is an EddyError's code, a system error's code, else unknown", () => {
    assert.equal(errorCode(new EddyError("commit-aborted", "x", { retriable: true })), "commit-aborted");
    assert.equal(errorCode(new BugError("x")), "bug");
    assert.equal(errorCode(Object.assign(new Error("refused"), { code: "ECONNREFUSED" })), "ECONNREFUSED");
    assert.equal(errorCode(Object.assign(new Error("numeric"), { code: 3 })), "unknown", "only string codes");
    assert.equal(errorCode(new Error("plain")), "unknown");
    assert.equal(errorCode(undefined), "unknown");
    assert.equal(errorCode(null), "unknown");
  });
});

describe("EddyError", () => {
  it("carries a Failure through a throw and back unchanged", () => {
    const failed = failure("overloaded", "no room within 10 ms", true);
    const thrown = EddyError.from(failed);
    assert.ok(thrown instanceof Error);
    assert.equal(thrown.name, "EddyError");
    assert.equal(thrown.message, "no room within 10 ms");
    assert.deepEqual(thrown.toFailure(), failed);
    assert.deepEqual(failed, { ok: false, code: "overloaded", message: "no room within 10 ms", retriable: true });
  });

  it("keeps its cause, and a BugError is an EddyError coded bug that is not retriable", () => {
    const cause = new Error("underneath");
    const error = new EddyError("x", "on top", { retriable: true, cause });
    assert.equal(error.cause, cause);
    assert.equal(new EddyError("x", "alone", { retriable: true }).cause, undefined);
    const bug = new BugError("broken", cause);
    assert.ok(bug instanceof EddyError);
    assert.equal(bug.name, "BugError");
    assert.deepEqual(bug.toFailure(), { ok: false, code: "bug", message: "broken", retriable: false });
    assert.equal(bug.cause, cause);
  });

  it("success wraps a value; errorMessage is a message without the stack", () => {
    assert.deepEqual(success(3), { ok: true, value: 3 });
    assert.equal(errorMessage(new Error("one line")), "one line");
    assert.equal(errorMessage(42), "42");
  });
});
