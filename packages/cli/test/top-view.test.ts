// eddy top's numbers: rates are counter differences over the server's own clock between two
// reads; a first read, or a restart between two (counters going down), has no rate rather
// than a wrong one; a type the stats have not seen yet is still listed from /v1/function-types.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatNumber, renderTop } from "../src/top/render.ts";
import { ratePerSecond, type Sample, type TypeStats, topView } from "../src/top/view.ts";

function typeStats(invocations: number, failures: number, extra: Partial<TypeStats> = {}): TypeStats {
  return { invocations, failures, deadLetters: 0, backlog: 0, inFlight: 0, paused: false, latencyMs: null, ...extra };
}

function sample(nowMs: number, types: Record<string, TypeStats>, totals: Partial<Sample["stats"]["totals"]> = {}) {
  return {
    stats: {
      nowMs,
      functionTypes: types,
      totals: {
        invocations: Object.values(types).reduce((sum, type) => sum + type.invocations, 0),
        failures: 0,
        ingressRequests: 0,
        egressRecords: 0,
        commits: 0,
        commitLatencyMs: null,
        kafkaLagMessages: null,
        ...totals,
      },
    },
    functionTypes: [],
  } satisfies Sample;
}

describe("ratePerSecond", () => {
  it("is the difference over the elapsed time, per second", () => {
    assert.equal(ratePerSecond(100, 350, 500), 500);
    assert.equal(ratePerSecond(7, 7, 1000), 0);
  });

  it("is unknown without an earlier read, without elapsed time, or when the counter went down", () => {
    assert.equal(ratePerSecond(undefined, 10, 1000), null);
    assert.equal(ratePerSecond(5, 10, 0), null);
    assert.equal(ratePerSecond(500, 10, 1000), null);
  });
});

describe("topView", () => {
  it("takes each type's messages and failures per second from two reads, on the server's clock", () => {
    const first = sample(10_000, { "example/person": typeStats(100, 2), "example/greeter": typeStats(50, 0) });
    const second = sample(12_000, {
      "example/person": typeStats(300, 6, { backlog: 4, inFlight: 1, latencyMs: { p50: 1.5, p99: 12 } }),
      "example/greeter": typeStats(50, 0, { paused: true }),
    });
    const view = topView(first, second);
    assert.deepEqual(
      view.rows.map(({ typename, messagesPerSecond, failuresPerSecond }) => [
        typename,
        messagesPerSecond,
        failuresPerSecond,
      ]),
      [
        ["example/greeter", 0, 0],
        ["example/person", 100, 2],
      ],
    );
    const person = view.rows[1];
    assert.equal(person?.backlog, 4);
    assert.equal(person?.inFlight, 1);
    assert.deepEqual(person?.latencyMs, { p50: 1.5, p99: 12 });
    assert.equal(view.rows[0]?.paused, true);
    assert.equal(view.totals.messagesPerSecond, 100);
  });

  it("has no rates on a first read, and none across a restart", () => {
    const only = topView(undefined, sample(1000, { "a/b": typeStats(10, 1) }));
    assert.equal(only.rows[0]?.messagesPerSecond, null);
    assert.equal(only.totals.ingressRequestsPerSecond, null);
    const restarted = topView(sample(1000, { "a/b": typeStats(900, 0) }), sample(2000, { "a/b": typeStats(3, 0) }));
    assert.equal(restarted.rows[0]?.messagesPerSecond, null);
    assert.equal(restarted.rows[0]?.failuresPerSecond, 0);
  });

  it("counts a type that appears between two reads from zero, and lists idle types from /v1/function-types", () => {
    const current = {
      ...sample(3000, { "a/new": typeStats(20, 0) }, { ingressRequests: 40, egressRecords: 10 }),
      functionTypes: [
        { typename: "a/idle", paused: false, backlog: 0, inFlight: 0, health: { status: "idle" as const } },
      ],
    };
    const view = topView(sample(1000, {}, { ingressRequests: 0, egressRecords: 0 }), current);
    assert.deepEqual(
      view.rows.map(({ typename, messagesPerSecond, health }) => [typename, messagesPerSecond, health]),
      [
        ["a/idle", 0, "idle"],
        ["a/new", 10, null],
      ],
    );
    assert.equal(view.totals.ingressRequestsPerSecond, 20);
    assert.equal(view.totals.egressRecordsPerSecond, 5);
  });
});

describe("renderTop", () => {
  it("writes the totals and a row per type, numbers right-aligned, unknowns as -", () => {
    const view = topView(
      sample(1000, { "example/person": typeStats(0, 0) }),
      sample(2000, { "example/person": typeStats(25, 0, { latencyMs: { p50: 2.25, p99: 40.4 } }) }),
    );
    const lines = renderTop(view, "header");
    assert.equal(lines[0], "header");
    assert.match(
      lines[1] ?? "",
      /^total 25 msg\/s {3}ingress 0\.0 req\/s {3}egress 0\.0 rec\/s {3}commit p99 - ms {3}Kafka lag -$/,
    );
    assert.match(
      lines[3] ?? "",
      /^FUNCTION TYPE +MSG\/S +P50 MS +P99 MS +BACKLOG +IN FLIGHT +FAIL\/S +PAUSED +HEALTH$/,
    );
    assert.match(lines[4] ?? "", /^example\/person +25 +2\.3 +40 +0 +0 +0\.0 +no +-$/);
    assert.equal(formatNumber(null), "-");
  });
});
