import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type FailureReport, RepeatedFailureLog } from "../src/observe/repeated-failure-log.ts";

const URL_A = "http://127.0.0.1:8000/a";
const URL_B = "http://functions.invalid:8000/b";

function harness(options: { readonly keysMax?: number } = {}) {
  let nowMs = 1_000_000;
  const reports: FailureReport<string>[] = [];
  const log = new RepeatedFailureLog<string>({
    report: (report) => reports.push(report),
    clock: () => nowMs,
    summaryIntervalMs: 30_000,
    ...options,
  });
  return {
    log,
    reports,
    advance(ms: number) {
      nowMs += ms;
    },
  };
}

describe("RepeatedFailureLog", () => {
  it("reports the first failure at once, repeats once per interval with their count, and the recovery", () => {
    const { log, reports, advance } = harness();
    log.failed(URL_A, "connect ECONNREFUSED 127.0.0.1:8000", "example/person");
    assert.deepEqual(reports, [
      { kind: "failing", key: URL_A, cause: "connect ECONNREFUSED 127.0.0.1:8000", context: "example/person" },
    ]);
    for (let second = 1; second < 30; second++) {
      advance(1_000);
      log.failed(URL_A, "connect ECONNREFUSED 127.0.0.1:8000", "example/person");
    }
    assert.equal(reports.length, 1, "no line for repeats within the interval");
    advance(1_000);
    log.failed(URL_A, "HTTP 503: try later", "example/person");
    assert.deepEqual(reports[1], {
      kind: "repeated",
      key: URL_A,
      count: 30,
      periodMs: 30_000,
      lastCause: "HTTP 503: try later",
      context: "example/person",
    });
    advance(5_000);
    log.failed(URL_A, "HTTP 503: try later", "example/person");
    log.succeeded(URL_A);
    assert.deepEqual(reports[2], { kind: "recovered", key: URL_A, failedCount: 32 });
    log.succeeded(URL_A);
    assert.equal(reports.length, 3);
  });

  it("keeps endpoints apart", () => {
    const { log, reports } = harness();
    log.failed(URL_A, "connect ECONNREFUSED 127.0.0.1:8000", "example/person");
    log.failed(URL_B, "getaddrinfo ENOTFOUND functions.invalid", "example/lost");
    log.failed(URL_A, "connect ECONNREFUSED 127.0.0.1:8000", "example/person");
    log.succeeded(URL_B);
    assert.deepEqual(
      reports.map((report) => [report.kind, report.key]),
      [
        ["failing", URL_A],
        ["failing", URL_B],
        ["recovered", URL_B],
      ],
    );
  });

  it("a success with nothing failing reports nothing", () => {
    const { log, reports } = harness();
    log.succeeded(URL_A);
    assert.deepEqual(reports, []);
  });

  it("an endpoint that flaps costs at most one line per interval after its first failure and recovery", () => {
    const { log, reports, advance } = harness();
    // 10 minutes of a failure every 10th call, a call every 100 ms.
    for (let call = 0; call < 6_000; call++) {
      advance(100);
      if (call % 10 === 0) log.failed(URL_A, "HTTP 503: injected", "example/person");
      else log.succeeded(URL_A);
    }
    assert.equal(reports[0]?.kind, "failing");
    assert.equal(reports[1]?.kind, "recovered");
    assert.ok(reports.length <= 2 + 600 / 30, `${reports.length} reports`);
    const repeats = reports.filter((report) => report.kind === "repeated");
    assert.ok(repeats.length > 0, "repeats are summarized");
    const counted = repeats.reduce((sum, report) => sum + (report.kind === "repeated" ? report.count : 0), 0);
    assert.ok(counted > 500, `the summaries count the failures (${counted})`);
  });

  it("a new outage after a quiet interval is reported at once again", () => {
    const { log, reports, advance } = harness();
    log.failed(URL_A, "connect ECONNREFUSED 127.0.0.1:8000", "example/person");
    log.succeeded(URL_A);
    advance(31_000);
    log.succeeded(URL_A); // healthy for a whole interval: forgotten
    log.failed(URL_A, "connect ECONNREFUSED 127.0.0.1:8000", "example/person");
    assert.deepEqual(
      reports.map((report) => report.kind),
      ["failing", "recovered", "failing"],
    );
  });

  it("an outage that follows a recovery within the interval is summarized, then its recovery reported", () => {
    const { log, reports, advance } = harness();
    log.failed(URL_A, "connect ECONNREFUSED 127.0.0.1:8000", "example/person");
    log.succeeded(URL_A);
    for (let second = 0; second < 40; second++) {
      advance(1_000);
      log.failed(URL_A, "connect ECONNREFUSED 127.0.0.1:8000", "example/person");
    }
    log.succeeded(URL_A);
    assert.deepEqual(
      reports.map((report) => report.kind),
      ["failing", "recovered", "repeated", "recovered"],
    );
    assert.deepEqual(reports[3], { kind: "recovered", key: URL_A, failedCount: 40 });
  });

  it("flush reports what is unreported, and only that", () => {
    const { log, reports, advance } = harness();
    log.failed(URL_A, "HTTP 500: boom", "example/person/a");
    log.failed(URL_B, "ENOTFOUND", "example/lost/b");
    advance(4_000);
    for (let call = 0; call < 57; call++) log.failed(URL_A, "HTTP 500: boom", "example/person/c");
    log.flush();
    assert.deepEqual(reports.slice(2), [
      {
        kind: "repeated",
        key: URL_A,
        count: 57,
        periodMs: 4_000,
        lastCause: "HTTP 500: boom",
        context: "example/person/c",
      },
    ]);
    log.flush();
    assert.equal(reports.length, 3, "a second flush has nothing to say");
  });

  it("remembers a bounded number of endpoints", () => {
    const { log, reports } = harness({ keysMax: 2 });
    for (let index = 0; index < 5; index++) log.failed(`http://host-${index}/`, "ENOTFOUND", "t");
    log.failed("http://host-0/", "ENOTFOUND", "t"); // forgotten, so reported as new
    assert.equal(reports.filter((report) => report.kind === "failing").length, 6);
  });
});
