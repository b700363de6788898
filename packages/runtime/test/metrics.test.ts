// The Prometheus metrics (observe/metrics.ts) record events into counts of their own and print
// them only when scraped: the exposition, read by the Prometheus project's parser, gives the
// exact counts, cumulative buckets up to +Inf, sums and one series per label set the events
// named; and it prints what prom-client's own Histogram and Counter print for the same events.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { Counter, Histogram, Registry } from "prom-client";
import { type Family, parseExposition, sampleValue } from "../../../test/support/prometheus-text.ts";
import { ensurePython } from "../../../test/support/python-server.ts";
import { type RuntimeGauges, RuntimeMetrics } from "../src/observe/metrics.ts";

const LATENCY_BOUNDS = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1"];
const LATENCY_BOUNDS_ALL = [...LATENCY_BOUNDS, "2.5", "5", "10", "+Inf"];
const COUNT_BOUNDS_ALL = ["1", "4", "16", "64", "256", "1024", "4096", "16384", "+Inf"];

async function scraped(metrics: RuntimeMetrics): Promise<Family[]> {
  return parseExposition((await metrics.exposition()).body);
}

/** A histogram series' buckets as [le, cumulative count], in the order they were printed. */
function buckets(families: readonly Family[], name: string, labels: Record<string, string> = {}): [string, number][] {
  const samples = families.flatMap((family) => family.samples);
  return samples
    .filter((sample) => sample.name === `${name}_bucket`)
    .filter((sample) => Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .map((sample) => [sample.labels.le as string, sample.value]);
}

/** The label sets of the samples named `name`, without `le`. */
function labelSets(families: readonly Family[], name: string): Record<string, string>[] {
  return families
    .flatMap((family) => family.samples)
    .filter((sample) => sample.name === name)
    .map((sample) => sample.labels);
}

/** The counts `expected` gives from one bound on (and 0 below it), over `bounds`. */
function steps(bounds: readonly string[], expected: Record<string, number>): [string, number][] {
  let count = 0;
  return bounds.map((le) => {
    count = expected[le] ?? count;
    return [le, count];
  });
}

/** The text of one family (# HELP to its last sample) in an exposition. */
function familyText(exposition: string, name: string): string {
  const block = exposition.split("\n\n").find((text) => text.startsWith(`# HELP ${name} `));
  assert.ok(block !== undefined, `${name} is not in the exposition`);
  return block.trim();
}

describe("Prometheus metrics", () => {
  before(() => ensurePython());

  it("gives the exact counts, cumulative buckets with +Inf, sums and one series per label set", async () => {
    const metrics = new RuntimeMetrics();
    metrics.invoked("t/a", 3, 0.0005, "ok"); // on a bound: in that bound's bucket
    metrics.invoked("t/a", 1, 0.002, "ok");
    metrics.invoked("t/a", 0, 0.3, "ok"); // a state handshake: a call, no batch
    metrics.invoked("t/a", 0, 12, "failed"); // above every bound: only in +Inf
    metrics.invoked("t/b", 20, 0.04, "ok");
    metrics.resent("t/a");
    metrics.resent("t/a");
    metrics.deadLettered("t/b");
    metrics.committed(0.003, 5);
    metrics.committed(0.2, 100);
    for (let i = 0; i < 3; i++) metrics.egressSettled("e/out", "delivered");
    metrics.egressSettled("e/out", "rejected");
    metrics.ingressAnswered("i/in", 200);
    metrics.ingressAnswered("i/in", 200);
    metrics.ingressAnswered("i/in", 503);
    const families = await scraped(metrics);

    assert.deepEqual(labelSets(families, "eddy_invocations_total"), [
      { function_type: "t/a" },
      { function_type: "t/b" },
    ]);
    assert.equal(sampleValue(families, "eddy_invocations_total", { function_type: "t/a" }), 4);
    assert.equal(sampleValue(families, "eddy_invocations_total", { function_type: "t/b" }), 20);

    const duration = "eddy_invocation_duration_seconds";
    assert.deepEqual(labelSets(families, `${duration}_count`), [
      { function_type: "t/a", outcome: "ok" },
      { function_type: "t/a", outcome: "failed" },
      { function_type: "t/b", outcome: "ok" },
    ]);
    const aOk = { function_type: "t/a", outcome: "ok" };
    assert.deepEqual(
      buckets(families, duration, aOk),
      steps(LATENCY_BOUNDS_ALL, { "0.0005": 1, "0.0025": 2, "0.5": 3 }),
    );
    assert.equal(sampleValue(families, `${duration}_sum`, aOk), 0.0005 + 0.002 + 0.3);
    assert.equal(sampleValue(families, `${duration}_count`, aOk), 3);
    const aFailed = { function_type: "t/a", outcome: "failed" };
    assert.deepEqual(buckets(families, duration, aFailed), steps(LATENCY_BOUNDS_ALL, { "+Inf": 1 }));
    assert.equal(sampleValue(families, `${duration}_sum`, aFailed), 12);
    const bOk = { function_type: "t/b", outcome: "ok" };
    assert.deepEqual(buckets(families, duration, bOk), steps(LATENCY_BOUNDS_ALL, { "0.05": 1 }));

    const batch = "eddy_invocation_batch_messages";
    assert.deepEqual(labelSets(families, `${batch}_count`), [{ function_type: "t/a" }, { function_type: "t/b" }]);
    assert.deepEqual(buckets(families, batch, { function_type: "t/a" }), steps(COUNT_BOUNDS_ALL, { "1": 1, "4": 2 }));
    assert.equal(sampleValue(families, `${batch}_sum`, { function_type: "t/a" }), 4);
    assert.equal(sampleValue(families, `${batch}_count`, { function_type: "t/a" }), 2);
    assert.deepEqual(buckets(families, batch, { function_type: "t/b" }), steps(COUNT_BOUNDS_ALL, { "64": 1 }));

    assert.deepEqual(labelSets(families, "eddy_invocation_retries_total"), [{ function_type: "t/a" }]);
    assert.equal(sampleValue(families, "eddy_invocation_retries_total", { function_type: "t/a" }), 2);
    assert.deepEqual(labelSets(families, "eddy_dead_letters_total"), [{ function_type: "t/b" }]);
    assert.equal(sampleValue(families, "eddy_dead_letters_total", { function_type: "t/b" }), 1);

    assert.deepEqual(
      buckets(families, "eddy_commit_duration_seconds"),
      steps(LATENCY_BOUNDS_ALL, { "0.005": 1, "0.25": 2 }),
    );
    assert.equal(sampleValue(families, "eddy_commit_duration_seconds_sum"), 0.003 + 0.2);
    assert.deepEqual(buckets(families, "eddy_commit_writes"), steps(COUNT_BOUNDS_ALL, { "16": 1, "256": 2 }));
    assert.equal(sampleValue(families, "eddy_commit_writes_sum"), 105);
    assert.equal(sampleValue(families, "eddy_commit_writes_count"), 2);
    assert.equal(sampleValue(families, "eddy_commits_refused_total"), 0);

    assert.deepEqual(labelSets(families, "eddy_egress_records_total"), [
      { egress: "e/out", outcome: "delivered" },
      { egress: "e/out", outcome: "rejected" },
    ]);
    assert.equal(sampleValue(families, "eddy_egress_records_total", { outcome: "delivered" }), 3);
    assert.equal(sampleValue(families, "eddy_egress_records_total", { outcome: "rejected" }), 1);
    assert.deepEqual(labelSets(families, "eddy_ingress_requests_total"), [
      { ingress: "i/in", status: "200" },
      { ingress: "i/in", status: "503" },
    ]);
    assert.equal(sampleValue(families, "eddy_ingress_requests_total", { status: "200" }), 2);
    assert.equal(sampleValue(families, "eddy_ingress_requests_total", { status: "503" }), 1);

    const types = new Map(families.map((family) => [family.name, family.type]));
    assert.equal(types.get("eddy_invocations"), "counter");
    assert.equal(types.get(duration), "histogram");
    assert.equal(types.get("eddy_commit_writes"), "histogram");
  });

  it("has no series for a type never invoked, and keeps the counts of one invoked then idle", async () => {
    const metrics = new RuntimeMetrics();
    const gauges: RuntimeGauges = {
      functionTypes: () => new Map([["t/busy", { backlog: 2, inFlight: 1 }]]),
      delayedMessagesPending: () => 0,
      stateBytesOnDisk: () => 0,
      admission: () => ({ budgetBytes: 100, admittedBytes: 0 }),
      sourceLags: async () => [],
    };
    metrics.readLevelsFrom(gauges);
    const fresh = await scraped(metrics);
    assert.deepEqual(labelSets(fresh, "eddy_invocations_total"), []);
    assert.deepEqual(labelSets(fresh, "eddy_invocation_duration_seconds_count"), []);
    // An unlabelled family has its one series from the start, as prom-client's did.
    assert.deepEqual(buckets(fresh, "eddy_commit_duration_seconds"), steps(LATENCY_BOUNDS_ALL, {}));
    assert.equal(sampleValue(fresh, "eddy_commit_duration_seconds_count"), 0);

    metrics.invoked("t/idle", 2, 0.01, "ok");
    metrics.invoked("t/busy", 1, 0.01, "ok");
    const first = await scraped(metrics);
    for (let i = 0; i < 5; i++) metrics.invoked("t/busy", 1, 0.01, "ok");
    const later = await scraped(metrics);
    for (const families of [first, later]) {
      assert.equal(sampleValue(families, "eddy_invocations_total", { function_type: "t/idle" }), 2);
      assert.deepEqual(
        buckets(families, "eddy_invocation_duration_seconds", { function_type: "t/idle" }),
        steps(LATENCY_BOUNDS_ALL, { "0.01": 1 }),
      );
      // Its backlog reads 0 rather than vanishing.
      assert.equal(sampleValue(families, "eddy_backlog_messages", { function_type: "t/idle" }), 0);
      for (const family of families) {
        for (const sample of family.samples) assert.notEqual(sample.labels.function_type, "t/never", sample.name);
      }
    }
    assert.equal(sampleValue(later, "eddy_invocations_total", { function_type: "t/busy" }), 6);
    assert.equal(sampleValue(later, "eddy_backlog_messages", { function_type: "t/busy" }), 2);
  });

  it("prints what prom-client's own Histogram and Counter print for the same events", async () => {
    const metrics = new RuntimeMetrics();
    const registry = new Registry();
    const exposition = (await metrics.exposition()).body;
    const help = (name: string) =>
      (familyText(exposition, name).split("\n")[0] as string).slice(`# HELP ${name} `.length);
    const duration = new Histogram({
      name: "eddy_invocation_duration_seconds",
      help: help("eddy_invocation_duration_seconds"),
      labelNames: ["function_type", "outcome"],
      buckets: [...LATENCY_BOUNDS, 2.5, 5, 10].map(Number),
      registers: [registry],
    });
    const egress = new Counter({
      name: "eddy_egress_records_total",
      help: help("eddy_egress_records_total"),
      labelNames: ["egress", "outcome"],
      registers: [registry],
    });
    const seconds = [0, 0.0005, 0.00051, 0.7, 1, 2.5, 9.99, 10, 10.01, 300, 1e-9, 0.1 + 0.2];
    for (const [index, value] of seconds.entries()) {
      const typename = index % 3 === 0 ? "t/a" : 'odd "type"\\ with\nnewline';
      const outcome = index % 4 === 0 ? "failed" : "ok";
      metrics.invoked(typename, 0, value, outcome);
      duration.observe({ function_type: typename, outcome }, value);
      const egressOutcome = index % 5 === 0 ? "rejected" : "delivered";
      metrics.egressSettled(`e/${index % 2}`, egressOutcome);
      egress.inc({ egress: `e/${index % 2}`, outcome: egressOutcome });
    }
    const ours = (await metrics.exposition()).body;
    const theirs = await registry.metrics();
    for (const name of ["eddy_invocation_duration_seconds", "eddy_egress_records_total"]) {
      assert.equal(familyText(ours, name), familyText(theirs, name));
    }
  });
});
