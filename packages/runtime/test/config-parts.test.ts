// The pieces of the module.yaml loader on their own: Flink's duration syntax, StateFun's
// function patterns and URL templates, and the warnings for settings that silently do nothing.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  applyUrlTemplate,
  formatDuration,
  functionUrl,
  parseDuration,
  parseFunctionPattern,
  parseModule,
} from "../src/index.ts";

describe("Flink durations", () => {
  test("every unit label Flink accepts, with and without whitespace and plurals", () => {
    const cases: [string, number][] = [
      ["2d", 172_800_000],
      ["1 day", 86_400_000],
      ["3days", 259_200_000],
      ["1h", 3_600_000],
      ["2 hours", 7_200_000],
      ["2min", 120_000],
      ["2m", 120_000],
      ["1minute", 60_000],
      ["5 minutes", 300_000],
      ["30s", 30_000],
      ["30sec", 30_000],
      ["30secs", 30_000],
      ["1second", 1000],
      ["10 seconds", 10_000],
      ["500ms", 500],
      ["500milli", 500],
      ["500millis", 500],
      ["1millisecond", 1],
      ["7 milliseconds", 7],
      ["1500µs", 1.5],
      ["1500us", 1.5],
      ["2000micros", 2],
      ["3000000ns", 3],
      ["3000000nanoseconds", 3],
      ["2500", 2500],
      ["  42  ", 42],
      ["2MIN", 120_000],
    ];
    for (const [text, ms] of cases) {
      assert.deepEqual(parseDuration(text), { ok: true, ms }, text);
    }
  });

  test("what Flink rejects is rejected, with the reason", () => {
    assert.deepEqual(parseDuration("2 mins"), { ok: false, reason: 'unknown unit "mins"' });
    assert.deepEqual(parseDuration("two minutes"), { ok: false, reason: "does not start with a number" });
    assert.deepEqual(parseDuration("-5s"), { ok: false, reason: "does not start with a number" });
    assert.deepEqual(parseDuration("1.5s"), { ok: false, reason: 'unknown unit ".5s"' });
    assert.deepEqual(parseDuration(""), { ok: false, reason: "does not start with a number" });
    assert.deepEqual(parseDuration("99999999999999999999d"), { ok: false, reason: "is too large" });
  });

  test("formatting picks the largest exact unit", () => {
    assert.deepEqual([120_000, 30_000, 1500, 86_400_000, 3_600_000, 0, 0.5].map(formatDuration), [
      "2min",
      "30s",
      "1500ms",
      "1d",
      "1h",
      "0ms",
      "0.5ms",
    ]);
  });
});

describe("function patterns", () => {
  test("a namespace, a single type, and the ways to get it wrong", () => {
    assert.deepEqual(parseFunctionPattern("com.example/*"), { kind: "namespace", namespace: "com.example" });
    assert.deepEqual(parseFunctionPattern("com.example/greeter"), {
      kind: "type",
      typename: "com.example/greeter",
      namespace: "com.example",
    });
    assert.deepEqual(parseFunctionPattern("com.example"), { invalid: 'has no "/"' });
    assert.deepEqual(parseFunctionPattern("a/b/c"), { invalid: 'has 2 "/"' });
    assert.deepEqual(parseFunctionPattern("/greeter"), { invalid: "has an empty namespace" });
    assert.deepEqual(parseFunctionPattern("com.example/"), { invalid: "has an empty name" });
    assert.deepEqual(parseFunctionPattern("*/greeter"), { invalid: '"*" is only allowed as the whole name' });
    assert.deepEqual(parseFunctionPattern("com.example/g*"), { invalid: '"*" is only allowed as the whole name' });
  });
});

describe("URL templates", () => {
  test("only the name is substituted, every occurrence, path and query kept", () => {
    assert.equal(
      applyUrlTemplate("http://svc:8000/{function.name}/x?fn={function.name}", "greeter"),
      "http://svc:8000/greeter/x?fn=greeter",
    );
    assert.deepEqual(functionUrl("http://svc:8000/statefun", "greeter"), {
      ok: true,
      url: { kind: "tcp", url: "http://svc:8000/statefun" },
    });
  });

  test("unix socket URLs: the first .sock segment ends the socket path", () => {
    assert.deepEqual(functionUrl("http+unix:///run/a.sock/b.sock/{function.name}?q=1", "fn"), {
      ok: true,
      url: { kind: "unix", socketPath: "/run/a.sock", path: "/b.sock/fn?q=1", tls: false },
    });
    assert.deepEqual(functionUrl("http+unix:///run/my%20dir/fns.sock/", "fn"), {
      ok: true,
      url: { kind: "unix", socketPath: "/run/my dir/fns.sock", path: "/", tls: false },
    });
  });

  test("malformed templates say what is wrong", () => {
    assert.deepEqual(functionUrl("functions:8000/statefun", "fn"), {
      ok: false,
      reason: "has the unsupported scheme functions",
    });
    assert.deepEqual(functionUrl("/statefun", "fn"), { ok: false, reason: "is not an absolute URL" });
    assert.deepEqual(functionUrl("http+unix://run/fns.sock/x", "fn"), {
      ok: false,
      reason: 'names the host "run"; a unix socket URL starts with three slashes',
    });
  });
});

describe("warnings for settings that do nothing", () => {
  const warningsOf = (...source: string[]) => {
    const result = parseModule(`${source.join("\n")}\n`, "module.yaml");
    assert.ok(result.ok, result.ok ? "" : result.errors.map((e) => e.format()).join("\n"));
    return result.warnings.map((w) => w.format());
  };

  test("async-only keys under the okhttp transport", () => {
    assert.deepEqual(
      warningsOf(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        "  functions: example/*",
        "  urlPathTemplate: http://x/",
        "  transport:",
        "    type: io.statefun.transports.v1/okhttp",
        "    call: 30s",
        "    pool_size: 4",
      ),
      [
        "module.yaml:7:5: spec.transport.call: call applies only to the async transport and is ignored by okhttp; use timeouts.call",
        "module.yaml:8:5: spec.transport.pool_size: pool_size applies only to the async transport and is ignored by okhttp",
      ],
    );
  });

  test("read and write timeouts under the async transport, TLS on plain http, duplicate keys", () => {
    assert.deepEqual(
      warningsOf(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        "  functions: example/*",
        "  functions: example/*",
        "  urlPathTemplate: http://x/",
        "  transport:",
        "    trust_cacerts: /certs/ca.pem",
        "    timeouts:",
        "      read: 5s",
      ),
      [
        "module.yaml:4:3: spec.functions: duplicate key; the last one wins",
        "module.yaml:7:5: spec.transport.trust_cacerts: TLS options have no effect: urlPathTemplate is not an https URL",
        "module.yaml:9:7: spec.transport.timeouts.read: read is ignored by the async transport",
      ],
    );
  });

  test("YAML anchors and aliases are followed", () => {
    const result = parseModule(
      [
        "kind: io.statefun.endpoints.v1/http",
        "spec:",
        "  functions: other/*",
        "  urlPathTemplate: http://y/",
        "  timeouts:",
        "    call: &short 3s",
        "    read: *short",
        "    connect: *short",
        "    write: *short",
      ].join("\n"),
      "module.yaml",
    );
    assert.ok(result.ok);
    assert.deepEqual(result.module.endpoints[0]?.transport, {
      type: "io.statefun.transports.v1/okhttp",
      callTimeoutMs: 3000,
      connectTimeoutMs: 3000,
      readTimeoutMs: 3000,
      writeTimeoutMs: 3000,
    });
  });
});
