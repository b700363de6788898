// The runtime's logger (observe/logger.ts, observe/pretty-log.ts): JSON lines that carry what
// they are about, levels that leave out what is below them, the line callback embedders pass,
// and readable lines for a terminal that do not say a thing twice.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Address, FunctionTypename } from "../src/core/address.ts";
import { addressFields, isLogLevel, lineLogger, pinoLogger, runtimeLogger } from "../src/observe/logger.ts";
import { prettyLine } from "../src/observe/pretty-log.ts";

const target: Address = { typename: "example/person" as FunctionTypename, id: "ada" };

function captured(level?: "debug" | "info" | "warn" | "error") {
  const lines: string[] = [];
  const log = pinoLogger({
    ...(level === undefined ? {} : { level }),
    destination: { write: (line: string) => void lines.push(line) },
  });
  return { log, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe("logger", () => {
  it("writes one JSON line per call, with its level by name, its message and its fields", () => {
    const { log, records } = captured();
    log.warn("example/person/ada: HTTP 500", { ...addressFields(target), endpoint: "http://fn/person" });
    const [record] = records();
    assert.equal(typeof record?.time, "string");
    assert.deepEqual(
      { ...record, time: undefined },
      {
        level: "warn",
        time: undefined,
        msg: "example/person/ada: HTTP 500",
        functionType: "example/person",
        address: "example/person/ada",
        endpoint: "http://fn/person",
      },
    );
  });

  it("a child's lines carry its fields as well as their own", () => {
    const { log, records } = captured();
    log.child({ connector: "Kafka ingress example/in" }).info("starts orders at 0@0", { worker: "w1" });
    assert.deepEqual(
      records().map(({ connector, worker, msg }) => ({ connector, worker, msg })),
      [{ connector: "Kafka ingress example/in", worker: "w1", msg: "starts orders at 0@0" }],
    );
  });

  it("leaves out the levels below the one asked for", () => {
    const { log, records } = captured("warn");
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e");
    assert.deepEqual(
      records().map((record) => record.level),
      ["warn", "error"],
    );
    const lines: string[] = [];
    const quiet = lineLogger((line) => lines.push(line), "error");
    quiet.info("i");
    quiet.warn("w");
    quiet.error("stopping: a bug", { stack: "Error: a bug\n    at here" });
    assert.deepEqual(lines, ["eddy: stopping: a bug\nError: a bug\n    at here"]);
  });

  it("a line callback gets `eddy: <message>` at info and above by default", () => {
    const lines: string[] = [];
    const log = runtimeLogger({ log: (line) => lines.push(line) });
    log.debug("hidden");
    log.child({ connector: "x" }).warn("Kafka egress out: connection reset; retrying", { error: "ECONNRESET" });
    assert.deepEqual(lines, ["eddy: Kafka egress out: connection reset; retrying"]);
  });

  it("knows its levels", () => {
    assert.ok(isLogLevel("debug") && isLogLevel("error"));
    assert.ok(!isLogLevel("verbose") && !isLogLevel("INFO"));
  });
});

describe("readable lines", () => {
  const json = JSON.stringify({
    level: "warn",
    time: "2026-01-02T03:04:05.678Z",
    functionType: "example/person",
    address: "example/person/ada",
    endpoint: "http://fn/person",
    repeated: 57,
    msg: "http://fn/person failed 57 more times in the last 30 s",
  });

  it("show the time, the level and the message, then only the fields the message does not say", () => {
    assert.equal(
      prettyLine(`${json}\n`, false),
      "03:04:05.678 WARN  http://fn/person failed 57 more times in the last 30 s  functionType=example/person address=example/person/ada\n",
    );
  });

  it("put a stack on the lines after, and pass what is not JSON through", () => {
    const bug = JSON.stringify({
      level: "error",
      time: "2026-01-02T03:04:05.678Z",
      msg: "stopping",
      stack: "Error: x",
    });
    assert.equal(prettyLine(bug, false), "03:04:05.678 ERROR stopping\nError: x\n");
    assert.equal(prettyLine("not json\n", false), "not json\n");
  });
});
