// What of a module the workers of a cluster must agree on (the function types served, the
// ingresses, the egresses), and what each may choose (URLs, transports, batch limits, ports,
// connection settings): the fingerprint changes with the first and never with the second; the
// differences between two modules in words; and the one line a refused worker prints.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clusterModule, moduleDifferences, moduleOfItems } from "../src/cluster/cluster-module.ts";
import { GROUP_PROTOCOL_FAMILY, groupProtocolName } from "../src/cluster/group-machine.ts";
import { mismatchMessage } from "../src/cluster/module-check.ts";
import { parseModule } from "../src/config/module.ts";
import type { ModuleConfig } from "../src/config/types.ts";

function module(yaml: string): ModuleConfig {
  const loaded = parseModule(yaml, "module.yaml");
  assert.ok(loaded.ok, JSON.stringify(!loaded.ok && loaded.errors.map((error) => error.format())));
  return loaded.module;
}

function endpoint(functions: string, url: string, extra = ""): string {
  return `kind: io.statefun.endpoints.v2/http
spec:
  functions: ${functions}
  urlPathTemplate: ${url}
${extra}---
`;
}

const ingress = (port: number) => `kind: io.statefun.playground.v1/ingress
spec:
  port: ${port}
---
`;

const kafkaEgress = (id: string, address: string) => `kind: io.statefun.kafka.v1/egress
spec:
  id: ${id}
  address: ${address}
  deliverySemantic:
    type: at-least-once
---
`;

const base = clusterModule(
  module(
    `${endpoint("shop/*", "http://functions:8000/{function.name}")}${endpoint("billing/invoice", "http://billing:8000/")}${ingress(8090)}${kafkaEgress("shop/out", "kafka-1:9092")}`,
  ),
);

describe("a cluster's module", () => {
  it("lists the function types and namespaces served, the ingresses and the egresses, sorted", () => {
    assert.deepEqual(base.items, [
      { kind: "function", name: "billing/invoice" },
      { kind: "function", name: "shop/*" },
      { kind: "ingress", name: "io.statefun.playground.v1/ingress" },
      { kind: "egress", name: "shop/out (io.statefun.kafka.v1/egress)" },
    ]);
    assert.match(base.fingerprint, /^[0-9a-f]{16}$/);
  });

  it("has the same fingerprint whatever each worker chooses: URLs, transports, batch limits, ports, brokers, order", () => {
    const elsewhere = clusterModule(
      module(
        `${kafkaEgress("shop/out", "kafka-2:9093")}${ingress(9190)}${endpoint("billing/invoice", "http://10.0.0.7:9000/invoice", "  maxNumBatchRequests: 10\n  transport:\n    timeouts:\n      call: 2m\n")}${endpoint("shop/*", "http://localhost:8001/{function.name}")}`,
      ),
    );
    assert.equal(elsewhere.fingerprint, base.fingerprint);
    assert.deepEqual(elsewhere.items, base.items);
  });

  it("drops a type its namespace already serves, and counts in-process functions as served", () => {
    const both = clusterModule(module(`${endpoint("shop/*", "http://f/")}${endpoint("shop/cart", "http://cart/")}`));
    const namespaceOnly = clusterModule(module(endpoint("shop/*", "http://f/")));
    assert.equal(both.fingerprint, namespaceOnly.fingerprint);
    const inProcess = clusterModule(module(endpoint("shop/*", "http://f/")), ["shop/cart", "audit/log"]);
    assert.deepEqual(
      inProcess.items.map((item) => item.name),
      ["audit/log", "shop/*"],
    );
  });

  it("has another fingerprint for another function type, namespace, ingress or egress", () => {
    const variants = [
      `${endpoint("shop/*", "http://f/")}${endpoint("billing/invoice", "http://b/")}${endpoint("billing/refund", "http://b/")}${ingress(8090)}${kafkaEgress("shop/out", "k:9092")}`,
      `${endpoint("shop/cart", "http://f/")}${endpoint("billing/invoice", "http://b/")}${ingress(8090)}${kafkaEgress("shop/out", "k:9092")}`,
      `${endpoint("shop/*", "http://f/")}${endpoint("billing/invoice", "http://b/")}${kafkaEgress("shop/out", "k:9092")}`,
      `${endpoint("shop/*", "http://f/")}${endpoint("billing/invoice", "http://b/")}${ingress(8090)}${kafkaEgress("shop/audit", "k:9092")}`,
    ];
    const fingerprints = new Set([
      base.fingerprint,
      ...variants.map((yaml) => clusterModule(module(yaml)).fingerprint),
    ]);
    assert.equal(fingerprints.size, variants.length + 1);
  });

  it("names the differences in words, the other worker's first, at most four and how many more", () => {
    const other = clusterModule(module(`${endpoint("shop/cart", "http://f/")}${ingress(8090)}`));
    assert.deepEqual(moduleDifferences(other, base.items, "w1"), [
      "function type billing/invoice is declared by worker w1's module but not by this one",
      "function namespace shop/* is declared by worker w1's module but not by this one",
      "egress shop/out (io.statefun.kafka.v1/egress) is declared by worker w1's module but not by this one",
      "function type shop/cart is declared by this worker's module but not by worker w1's",
    ]);
    const many = moduleOfItems(
      Array.from({ length: 7 }, (_, index) => ({ kind: "function" as const, name: `x/f${index}` })),
    );
    const differences = moduleDifferences(many, [], "w1");
    assert.equal(differences.length, 5);
    assert.equal(differences.at(-1), "and 3 more differences");
    assert.deepEqual(moduleDifferences(base, base.items, "w1"), []);
  });
});

describe("the line a worker with another module prints", () => {
  const mine = clusterModule(module(`${endpoint("shop/cart", "http://f/")}${ingress(8090)}`));
  const theirs = { workerId: "w1", url: "http://w1", owned: [], module: base };

  it("names the differences, both fingerprints, and what to do", () => {
    const message = mismatchMessage(mine, groupProtocolName(base), theirs, false, "w2");
    assert.equal(
      message,
      "its workers run another module than this worker: function type billing/invoice is declared by worker " +
        "w1's module but not by this one; function namespace shop/* is declared by worker w1's module but not by " +
        "this one; egress shop/out (io.statefun.kafka.v1/egress) is declared by worker w1's module but not by this " +
        `one; function type shop/cart is declared by this worker's module but not by worker w1's (module ` +
        `fingerprint ${base.fingerprint} in the cluster, ${mine.fingerprint} here). Start this worker with the ` +
        "module files the cluster's workers run; to change the cluster's function types, ingresses or egresses, " +
        "stop all its workers, then start them with the new module",
    );
  });

  it("says when the only member is this worker id's earlier process, and to wait for its session to time out", () => {
    const message = mismatchMessage(mine, groupProtocolName(base), { ...theirs, workerId: "w2" }, true, "w2");
    assert.match(
      message,
      /^its only member is worker w2's earlier process, which ran another module and stays a member until its session times out: .*\. If the module changed on purpose, start this worker again once that session has timed out; otherwise start it with the module files it ran before$/,
    );
  });

  it("gives the fingerprints alone when the member's items were too long to send", () => {
    const message = mismatchMessage(
      mine,
      `${GROUP_PROTOCOL_FAMILY}.${base.fingerprint}`,
      { ...theirs, module: { fingerprint: base.fingerprint, items: undefined } },
      false,
      "w2",
    );
    assert.match(
      message,
      new RegExp(
        `^its workers run another module than this worker: worker w1's module has too many items to compare here \\(module fingerprint ${base.fingerprint} in the cluster, ${mine.fingerprint} here\\)\\. `,
      ),
    );
    assert.doesNotMatch(message, /\n/);
  });
});
