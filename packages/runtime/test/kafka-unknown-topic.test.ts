// How the Kafka connectors recognize a missing topic (isUnknownTopic): by Kafka's error code
// where the client keeps it, and by the client's own UserError where it replaces the code,
// never by the text of just any error.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MultipleErrors, ProtocolError, UserError } from "@platformatic/kafka";
import { isUnknownTopic } from "../src/io/kafka/client-options.ts";

describe("isUnknownTopic", () => {
  it("knows UNKNOWN_TOPIC_OR_PARTITION by its code, also inside the client's aggregate errors", () => {
    assert.equal(isUnknownTopic(new ProtocolError(3)), true);
    assert.equal(isUnknownTopic(new MultipleErrors("failed 2 times", [new Error("x"), new ProtocolError(3)])), true);
    assert.equal(isUnknownTopic(new ProtocolError("LEADER_NOT_AVAILABLE")), false);
  });

  it("knows the client's UserError for a metadata request's unknown topic, and no other error by its words", () => {
    assert.equal(isUnknownTopic(new UserError("Unknown topic orders.")), true);
    assert.equal(isUnknownTopic(new UserError("Invalid options")), false);
    assert.equal(isUnknownTopic(new Error("Unknown topic orders.")), false, "not a client error");
    assert.equal(isUnknownTopic(undefined), false);
  });
});
