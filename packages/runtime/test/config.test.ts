// module.yaml as StateFun 3.x writes it: the playground's own modules load unchanged, every
// option of §4.1 lands in typed config with StateFun's defaults, and every malformed file
// gets errors that name the file, line, column, field and what was expected.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  type ConfigError,
  type HttpEndpointConfig,
  type LoadResult,
  loadModuleFile,
  loadModuleFiles,
  type ModuleConfig,
  parseModule,
  resolveFunction,
} from "../src/index.ts";

const lines = (...source: string[]) => `${source.join("\n")}\n`;

function loaded(result: LoadResult): ModuleConfig {
  if (!result.ok) assert.fail(`expected a valid module, got:\n${result.errors.map((e) => e.format()).join("\n")}`);
  return result.module;
}

function failed(result: LoadResult): readonly ConfigError[] {
  if (result.ok) assert.fail("expected configuration errors, got a valid module");
  return result.errors;
}

/** The one error of a file, as the fields a test pins down. */
function onlyError(text: string, file = "module.yaml") {
  const errors = failed(parseModule(text, file));
  assert.equal(errors.length, 1, errors.map((e) => e.format()).join("\n"));
  const [error] = errors;
  assert.ok(error);
  return error;
}

function onlyEndpoint(module: ModuleConfig): HttpEndpointConfig {
  assert.equal(module.endpoints.length, 1);
  const [endpoint] = module.endpoints;
  assert.ok(endpoint);
  return endpoint;
}

const GREETER = lines(
  "# Licensed to the Apache Software Foundation (ASF) ...",
  "kind: io.statefun.endpoints.v2/http",
  "spec:",
  "  functions: example/*",
  "  urlPathTemplate: http://functions:8000/statefun",
  "#  transport:",
  "#    type: io.statefun.transports.v1/async",
  "---",
  "kind: io.statefun.playground.v1/ingress",
  "spec:",
  "  port: 8090",
  "---",
  "kind: io.statefun.playground.v1/egress",
  "spec:",
  "  port: 8091",
  "  topics:",
  "    - greetings",
);

describe("valid modules", () => {
  test("the playground greeter module loads unchanged with StateFun's defaults", () => {
    const result = parseModule(GREETER, "greeter/module.yaml");
    const module = loaded(result);
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(module.files, ["greeter/module.yaml"]);
    const endpoint = onlyEndpoint(module);
    assert.equal(endpoint.kind, "io.statefun.endpoints.v2/http");
    assert.deepEqual(endpoint.functions, { kind: "namespace", namespace: "example" });
    assert.equal(endpoint.urlPathTemplate, "http://functions:8000/statefun");
    assert.equal(endpoint.maxNumBatchRequests, 1000);
    assert.deepEqual(endpoint.transport, {
      type: "io.statefun.transports.v1/async",
      callTimeoutMs: 120_000,
      connectTimeoutMs: 20_000,
      poolTtlMs: 15_000,
      poolSizeMax: 1024,
      payloadBytesMax: 33_554_432,
      tls: { trustCaCerts: undefined, client: undefined },
      signingKey: undefined,
    });
    assert.deepEqual(endpoint.source, { file: "greeter/module.yaml", line: 4, column: 14, field: "spec.functions" });
    assert.deepEqual(
      module.ingresses.map((ingress) => ({ kind: ingress.kind, port: "port" in ingress ? ingress.port : undefined })),
      [{ kind: "io.statefun.playground.v1/ingress", port: 8090 }],
    );
    assert.deepEqual(
      module.egresses.map((egress) => ({
        kind: egress.kind,
        id: egress.id,
        port: "port" in egress ? egress.port : undefined,
        topics: "topics" in egress ? egress.topics : undefined,
      })),
      [
        {
          kind: "io.statefun.playground.v1/egress",
          id: "io.statefun.playground/egress",
          port: 8091,
          topics: ["greetings"],
        },
      ],
    );
    assert.deepEqual(resolveFunction(module, "example/person")?.url, {
      kind: "tcp",
      url: "http://functions:8000/statefun",
    });
    assert.equal(resolveFunction(module, "other/person"), undefined);
  });

  test("the shopping-cart module with an explicit async transport", () => {
    const module = loaded(
      parseModule(
        lines(
          "kind: io.statefun.endpoints.v2/http",
          "spec:",
          "  functions: com.example/*",
          "  urlPathTemplate: http://shopping-cart-functions:1108/",
          "  transport:",
          "    type: io.statefun.transports.v1/async",
          "---",
          "kind: io.statefun.playground.v1/ingress",
          "spec:",
          "  port: 8090",
          "---",
          "kind: io.statefun.playground.v1/egress",
          "spec:",
          "  port: 8091",
          "  topics:",
          "    - receipts",
        ),
        "module.yaml",
      ),
    );
    const endpoint = onlyEndpoint(module);
    assert.equal(endpoint.transport.type, "io.statefun.transports.v1/async");
    assert.equal(endpoint.transport.callTimeoutMs, 120_000);
    assert.deepEqual(resolveFunction(module, "com.example/user-shopping-cart")?.url, {
      kind: "tcp",
      url: "http://shopping-cart-functions:1108/",
    });
    const [egress] = module.egresses;
    assert.deepEqual(egress !== undefined && "topics" in egress ? egress.topics : undefined, ["receipts"]);
  });

  test("{function.name} becomes the type's name, and an exact type wins over its namespace", () => {
    const module = loaded(
      parseModule(
        lines(
          "kind: io.statefun.endpoints.v2/http",
          "spec:",
          "  functions: com.example/*",
          "  urlPathTemplate: https://fns.example.com:8443/statefun/{function.name}?v=1",
          "---",
          "kind: io.statefun.endpoints.v2/http",
          "spec:",
          "  functions: com.example/special",
          "  urlPathTemplate: http://special:9000/{function.name}",
        ),
        "module.yaml",
      ),
    );
    assert.deepEqual(resolveFunction(module, "com.example/greeter")?.url, {
      kind: "tcp",
      url: "https://fns.example.com:8443/statefun/greeter?v=1",
    });
    const special = resolveFunction(module, "com.example/special");
    assert.deepEqual(special?.url, { kind: "tcp", url: "http://special:9000/special" });
    assert.deepEqual(special?.endpoint.functions, {
      kind: "type",
      typename: "com.example/special",
      namespace: "com.example",
    });
    assert.equal(resolveFunction(module, "com.example"), undefined);
  });

  test("a v1 endpoint uses OkHttp with timeouts directly under spec", () => {
    const endpoint = onlyEndpoint(
      loaded(
        parseModule(
          lines(
            "kind: io.statefun.endpoints.v1/http",
            "spec:",
            "  functions: com.foo.bar/*",
            "  urlPathTemplate: https://bar.foo.com:8080/{function.name}",
            "  maxNumBatchRequests: 10000",
            "  maxRetries: 5",
            "  timeouts:",
            "    call: 2minutes",
            "    connect: 20 seconds",
            "    read: 30s",
          ),
          "module.yaml",
        ),
      ),
    );
    assert.equal(endpoint.kind, "io.statefun.endpoints.v1/http");
    assert.equal(endpoint.maxNumBatchRequests, 10_000);
    assert.deepEqual(endpoint.transport, {
      type: "io.statefun.transports.v1/okhttp",
      callTimeoutMs: 120_000,
      connectTimeoutMs: 20_000,
      readTimeoutMs: 30_000,
      writeTimeoutMs: 10_000,
    });
  });

  test("a v2 endpoint with the okhttp transport and its defaults", () => {
    const endpoint = onlyEndpoint(
      loaded(
        parseModule(
          lines(
            "kind: io.statefun.endpoints.v2/http",
            "spec:",
            "  functions: com.example/greeter",
            "  urlPathTemplate: http://svc/{function.name}",
            "  maxNumBatchRequests: 0",
            "  transport:",
            "    type: io.statefun.transports.v1/okhttp",
            "    timeouts:",
            "      write: 1500",
          ),
          "module.yaml",
        ),
      ),
    );
    assert.equal(endpoint.maxNumBatchRequests, 0);
    assert.deepEqual(endpoint.transport, {
      type: "io.statefun.transports.v1/okhttp",
      callTimeoutMs: 60_000,
      connectTimeoutMs: 10_000,
      readTimeoutMs: 10_000,
      writeTimeoutMs: 1500,
    });
  });

  test("every async option, in Flink's duration syntax", () => {
    const result = parseModule(
      lines(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        "  functions: com.example/*",
        "  urlPathTemplate: http://svc/{function.name}",
        "  transport:",
        "    call: 1 min",
        "    connect: 500 ms",
        "    pool_ttl: 0",
        "    pool_size: 16",
        "    payload_max_bytes: '1048576'",
      ),
      "module.yaml",
    );
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(onlyEndpoint(loaded(result)).transport, {
      type: "io.statefun.transports.v1/async",
      callTimeoutMs: 60_000,
      connectTimeoutMs: 500,
      poolTtlMs: 0,
      poolSizeMax: 16,
      payloadBytesMax: 1_048_576,
      tls: { trustCaCerts: undefined, client: undefined },
      signingKey: undefined,
    });
  });

  test("signing_key (Eddy's) is a file path like the TLS files, relative to the module file", () => {
    const result = parseModule(
      lines(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        "  functions: com.example/*",
        "  urlPathTemplate: http://svc/",
        "  transport:",
        "    signing_key: secrets/fn.key",
      ),
      "/etc/eddy/module.yaml",
    );
    assert.deepEqual(result.warnings, []);
    const transport = onlyEndpoint(loaded(result)).transport;
    assert.equal(transport.type, "io.statefun.transports.v1/async");
    assert.equal(
      transport.type === "io.statefun.transports.v1/async" ? transport.signingKey?.path : "",
      "/etc/eddy/secrets/fn.key",
    );
  });

  test("a nested timeouts object wins over the flat keys, with its own 1 min / 10 s defaults", () => {
    const result = parseModule(
      lines(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        "  functions: com.example/*",
        "  urlPathTemplate: http://svc/",
        "  transport:",
        "    call: 5min",
        "    connect: 1s",
        "    timeouts:",
        "      call: 30s",
      ),
      "module.yaml",
    );
    const transport = onlyEndpoint(loaded(result)).transport;
    assert.equal(transport.callTimeoutMs, 30_000);
    assert.equal(transport.connectTimeoutMs, 10_000);
    assert.deepEqual(
      result.warnings.map((w) => [w.line, w.field, w.code]),
      [
        [6, "spec.transport.call", "ignored"],
        [7, "spec.transport.connect", "ignored"],
      ],
    );
  });

  test("http+unix and https+unix URLs split into socket file and HTTP path", () => {
    const module = loaded(
      parseModule(
        lines(
          "kind: io.statefun.endpoints.v2/http",
          "spec:",
          "  functions: com.example/*",
          "  urlPathTemplate: http+unix:///var/run/fns.sock/statefun/{function.name}",
          "  transport:",
          "    type: io.statefun.transports.v1/okhttp",
          "---",
          "kind: io.statefun.endpoints.v1/http",
          "spec:",
          "  functions: org.other/*",
          "  urlPathTemplate: https+unix:///tmp/other.sock",
        ),
        "module.yaml",
      ),
    );
    assert.deepEqual(resolveFunction(module, "com.example/greeter")?.url, {
      kind: "unix",
      socketPath: "/var/run/fns.sock",
      path: "/statefun/greeter",
      tls: false,
    });
    assert.deepEqual(resolveFunction(module, "org.other/x")?.url, {
      kind: "unix",
      socketPath: "/tmp/other.sock",
      path: "/",
      tls: true,
    });
  });

  test("empty and comment-only documents are skipped; an empty file is an empty module", () => {
    const module = loaded(parseModule(`---\n# nothing here\n---\n${GREETER}---\n`, "module.yaml"));
    assert.equal(module.endpoints.length, 1);
    assert.equal(module.ingresses.length, 1);
    assert.deepEqual(loaded(parseModule("# only a comment\n", "empty.yaml")), {
      files: ["empty.yaml"],
      endpoints: [],
      ingresses: [],
      egresses: [],
    });
  });

  test("unknown properties are ignored; a likely typo of a known one is a warning", () => {
    const result = parseModule(
      lines(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        "  functions: com.example/*",
        "  urlPathTemplate: http://svc/",
        "  annotations: whatever",
        "  maxNumBatchRequest: 5",
        "  transport:",
        "    pool-size: 3",
      ),
      "module.yaml",
    );
    assert.equal(onlyEndpoint(loaded(result)).maxNumBatchRequests, 1000);
    assert.deepEqual(
      result.warnings.map((w) => w.format()),
      [
        "module.yaml:6:3: spec.maxNumBatchRequest: unknown property, ignored; did you mean maxNumBatchRequests?",
        "module.yaml:8:5: spec.transport.pool-size: unknown property, ignored; did you mean pool_size?",
      ],
    );
  });

  test("the legacy 3.0 format is translated to a v1 endpoint", () => {
    const module = loaded(
      parseModule(
        lines(
          'version: "3.0"',
          "module:",
          "  meta:",
          "    type: remote",
          "  spec:",
          "    endpoints:",
          "      - endpoint:",
          "          meta:",
          "            kind: http",
          "          spec:",
          "            functions: example/*",
          "            urlPathTemplate: http://functions:8000/statefun",
          "            timeouts:",
          "              call: 2min",
        ),
        "module.yaml",
      ),
    );
    const endpoint = onlyEndpoint(module);
    assert.equal(endpoint.kind, "io.statefun.endpoints.v1/http");
    assert.equal(endpoint.transport.type, "io.statefun.transports.v1/okhttp");
    assert.equal(endpoint.transport.callTimeoutMs, 120_000);
    assert.equal(endpoint.source.field, "module.spec.endpoints[0].endpoint.spec.functions");
  });
});

describe("TLS files", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "eddy-config-"));
    for (const name of ["ca.pem", "client.crt", "client.key.p8", "key_password.txt"]) {
      await writeFile(join(dir, name), "x");
    }
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const tlsModule = (caPath: string) =>
    lines(
      "kind: io.statefun.endpoints.v2/http",
      "spec:",
      "  functions: com.example/*",
      "  urlPathTemplate: https://fns.example.com:8443/statefun/{function.name}",
      "  transport:",
      `    trust_cacerts: ${caPath}`,
      "    client_cert: file:client.crt",
      `    client_key: file://${dir}/client.key.p8`,
      "    client_key_password: ./key_password.txt",
    );

  test("paths resolve against the module file's directory; file: prefixes are accepted", async () => {
    await writeFile(join(dir, "module.yaml"), tlsModule("file:ca.pem"));
    const transport = onlyEndpoint(loaded(await loadModuleFile(dir))).transport;
    assert.equal(transport.type, "io.statefun.transports.v1/async");
    assert.equal(transport.tls.trustCaCerts?.path, join(dir, "ca.pem"));
    assert.equal(transport.tls.client?.cert.path, join(dir, "client.crt"));
    assert.equal(transport.tls.client?.key.path, join(dir, "client.key.p8"));
    assert.equal(transport.tls.client?.keyPassword?.path, join(dir, "key_password.txt"));
    assert.deepEqual(transport.tls.client?.key.source, {
      file: join(dir, "module.yaml"),
      line: 8,
      column: 17,
      field: "spec.transport.client_key",
    });
  });

  test("a TLS file that cannot be read is an error at the line naming it", async () => {
    const file = join(dir, "missing-ca.yaml");
    await writeFile(file, tlsModule("/nonexistent/ca.pem"));
    const errors = failed(await loadModuleFile(file));
    assert.equal(errors.length, 1);
    const [error] = errors;
    assert.equal(error?.code, "missing-file");
    assert.equal(error?.file, file);
    assert.equal(error?.line, 6);
    assert.equal(error?.column, 20);
    assert.equal(error?.field, "spec.transport.trust_cacerts");
    assert.equal(error?.message, "cannot read /nonexistent/ca.pem (ENOENT)");
  });
});

describe("several module files", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "eddy-modules-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("merge into one module; the same function pattern in two files is an error naming both", async () => {
    const a = join(dir, "a.yaml");
    const b = join(dir, "b.yaml");
    const c = join(dir, "c.yaml");
    const endpoint = (pattern: string) =>
      lines(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        `  functions: ${pattern}`,
        "  urlPathTemplate: http://svc/",
      );
    await writeFile(a, endpoint("com.example/*"));
    await writeFile(b, `# second module\n${endpoint("com.example/greeter")}`);
    await writeFile(c, endpoint("com.example/*"));

    const merged = loaded(await loadModuleFiles([a, b]));
    assert.deepEqual(merged.files, [a, b]);
    assert.equal(merged.endpoints.length, 2);

    const errors = failed(await loadModuleFiles([a, b, c]));
    assert.equal(errors.length, 1);
    assert.equal(
      errors[0]?.format(),
      `${c}:3:14: spec.functions: function pattern com.example/* is already bound at ${a}:3:14; expected each function type and each namespace bound by one endpoint only`,
    );
  });

  test("errors of every file are reported, not just the first file's", async () => {
    const bad1 = join(dir, "bad1.yaml");
    const bad2 = join(dir, "bad2.yaml");
    await writeFile(bad1, lines("kind: io.statefun.playground.v1/ingress", "spec:", "  port: http"));
    await writeFile(bad2, lines("spec: {}"));
    const errors = failed(await loadModuleFiles([bad1, bad2]));
    assert.deepEqual(
      errors.map((e) => [e.file, e.line, e.field]),
      [
        [bad1, 3, "spec.port"],
        [bad2, 1, "kind"],
      ],
    );
  });

  test("a file that does not exist is an error naming it", async () => {
    const error = failed(await loadModuleFile(join(dir, "nope.yaml")))[0];
    assert.equal(error?.code, "unreadable");
    assert.equal(
      error?.format(),
      `${join(dir, "nope.yaml")}:1:1: cannot read the module file (ENOENT); expected a readable module.yaml, or a directory containing one`,
    );
  });
});

describe("malformed modules", () => {
  test("bad YAML syntax names the line of the syntax error", () => {
    const error = onlyError(
      lines(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        "\tfunctions: com.example/*",
        "  urlPathTemplate: http://svc/",
      ),
    );
    assert.equal(error.code, "syntax");
    assert.deepEqual([error.file, error.line, error.column, error.field], ["module.yaml", 3, 1, ""]);
    assert.equal(error.message, "invalid YAML: Tabs are not allowed as indentation");
  });

  test("an unclosed quote is reported where it opens, not where the file ends", () => {
    const error = onlyError(
      lines(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        '  functions: "com.example/*',
        "  urlPathTemplate: http://svc/",
        "---",
        "kind: io.statefun.playground.v1/ingress",
      ),
    );
    assert.deepEqual(
      [error.line, error.column, error.message],
      [3, 14, "invalid YAML: this quoted string is never closed"],
    );
  });

  test("a document without kind", () => {
    const error = onlyError(lines("---", "spec:", "  port: 8090"));
    assert.deepEqual(
      [error.code, error.line, error.column, error.field, error.message],
      ["missing-field", 2, 1, "kind", "missing required field kind"],
    );
    assert.match(error.expected, /^one of the supported kinds: io\.statefun\.endpoints\.v2\/http, /);
  });

  test("an unknown kind names the kind and lists the supported ones", () => {
    const error = onlyError(lines("kind: io.statefun.playground.v1/ingres", "spec:", "  port: 8090"));
    assert.equal(
      error.format(),
      'module.yaml:1:7: kind: unknown kind "io.statefun.playground.v1/ingres" (did you mean io.statefun.playground.v1/ingress?); expected one of the supported kinds: io.statefun.endpoints.v2/http, io.statefun.endpoints.v1/http, io.statefun.playground.v1/ingress, io.statefun.playground.v1/egress, io.statefun.kafka.v1/ingress, io.statefun.kafka.v1/egress, io.statefun.kinesis.v1/ingress, io.statefun.kinesis.v1/egress',
    );
  });

  test("Kinesis ingress and egress kinds are bound beside the endpoints", () => {
    const module = loaded(
      parseModule(
        lines(
          "kind: io.statefun.endpoints.v2/http",
          "spec:",
          "  functions: example/*",
          "  urlPathTemplate: http://functions:8000/statefun",
          "---",
          "kind: io.statefun.kinesis.v1/ingress",
          "spec:",
          "  id: example/in",
          "  streams: [{stream: names, valueType: example/Name, targets: [example/greeter]}]",
          "---",
          "kind: io.statefun.kinesis.v1/egress",
          "spec:",
          "  id: example/out",
        ),
        "module.yaml",
      ),
    );
    assert.deepEqual(
      module.ingresses.map((ingress) => [ingress.kind, "id" in ingress ? ingress.id : undefined, ingress.source.line]),
      [["io.statefun.kinesis.v1/ingress", "example/in", 8]],
    );
    assert.deepEqual(
      module.egresses.map((egress) => [egress.kind, egress.id, egress.source.line]),
      [["io.statefun.kinesis.v1/egress", "example/out", 13]],
    );
  });

  test("missing urlPathTemplate points at the spec that lacks it", () => {
    const error = onlyError(lines("kind: io.statefun.endpoints.v2/http", "spec:", "  functions: example/*"));
    assert.deepEqual(
      [error.code, error.line, error.column, error.field, error.message],
      ["missing-field", 2, 1, "spec.urlPathTemplate", "missing required field urlPathTemplate"],
    );
    assert.match(error.expected, /^an http, https, http\+unix or https\+unix URL/);
  });

  test("missing urlPathTemplate next to a misspelt one points at the misspelling", () => {
    const errors = failed(
      parseModule(
        lines("kind: io.statefun.endpoints.v2/http", "spec:", "  functions: example/*", "  urlPathTemplte: http://x/"),
        "module.yaml",
      ),
    );
    assert.deepEqual(
      errors.map((e) => [e.line, e.column, e.field, e.message]),
      [[4, 3, "spec.urlPathTemplate", 'missing required field urlPathTemplate (found "urlPathTemplte": a typo?)']],
    );
  });

  test("functions with two slashes", () => {
    const error = onlyError(
      lines(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        "  functions: com.example/*/x",
        "  urlPathTemplate: http://x/",
      ),
    );
    assert.equal(
      error.format(),
      'module.yaml:3:14: spec.functions: "com.example/*/x" is not a function pattern: has 2 "/"; expected a function type <namespace>/<name> or a namespace <namespace>/*, with exactly one "/"',
    );
  });

  test("a wildcard that is not the whole name", () => {
    const error = onlyError(
      lines(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        "  functions: com.example/greet*",
        "  urlPathTemplate: http://x/",
      ),
    );
    assert.equal(
      error.message,
      '"com.example/greet*" is not a function pattern: "*" is only allowed as the whole name',
    );
  });

  test("a bad duration", () => {
    const error = onlyError(
      lines(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        "  functions: example/*",
        "  urlPathTemplate: http://x/",
        "  transport:",
        "    call: 2 mins",
      ),
    );
    assert.equal(
      error.format(),
      'module.yaml:6:11: spec.transport.call: "2 mins" is not a duration: unknown unit "mins"; expected a duration, e.g. 2min, 30s, 500ms (units d, h, min, s, ms, µs, ns; a bare number is milliseconds)',
    );
  });

  test("a zero timeout is rejected", () => {
    const error = onlyError(
      lines(
        "kind: io.statefun.endpoints.v1/http",
        "spec:",
        "  functions: example/*",
        "  urlPathTemplate: http://x/",
        "  timeouts:",
        "    connect: 0s",
      ),
    );
    assert.deepEqual(
      [error.line, error.column, error.field, error.message],
      [6, 14, "spec.timeouts.connect", '"0s" is zero'],
    );
  });

  test("a negative pool_size", () => {
    const error = onlyError(
      lines(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        "  functions: example/*",
        "  urlPathTemplate: http://x/",
        "  transport:",
        "    pool_size: -5",
      ),
    );
    assert.equal(
      error.format(),
      "module.yaml:6:16: spec.transport.pool_size: -5 is below the minimum 1; expected a positive number of connections per endpoint, default 1024",
    );
  });

  test("an okhttp read timeout longer than the call timeout", () => {
    const error = onlyError(
      lines(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        "  functions: example/*",
        "  urlPathTemplate: http://x/",
        "  transport:",
        "    type: io.statefun.transports.v1/okhttp",
        "    timeouts:",
        "      call: 30s",
        "      read: 2min",
        "      connect: 5s",
        "      write: 5s",
      ),
    );
    assert.equal(
      error.format(),
      "module.yaml:9:13: spec.transport.timeouts.read: read timeout 2min is longer than the call timeout 30s; expected at most the call timeout (30s)",
    );
  });

  test("an okhttp call timeout shorter than the defaults of the others", () => {
    const error = onlyError(
      lines(
        "kind: io.statefun.endpoints.v1/http",
        "spec:",
        "  functions: example/*",
        "  urlPathTemplate: http://x/",
        "  timeouts:",
        "    call: 5s",
        "    read: 5s",
      ),
    );
    assert.deepEqual(
      [error.line, error.field, error.message],
      [6, "spec.timeouts.call", "call timeout 5s is shorter than the default connect and write timeouts (10s)"],
    );
  });

  test("client_cert without client_key", () => {
    const error = onlyError(
      lines(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        "  functions: example/*",
        "  urlPathTemplate: https://x/",
        "  transport:",
        "    client_cert: /certs/client.crt",
      ),
    );
    assert.equal(
      error.format(),
      "module.yaml:6:18: spec.transport.client_cert: client_cert is given without client_key; expected client_cert and client_key together (mutual TLS), or neither",
    );
  });

  test("a list where a string belongs", () => {
    const error = onlyError(
      lines(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        "  functions: example/*",
        "  urlPathTemplate:",
        "    - http://a/",
        "    - http://b/",
      ),
    );
    assert.deepEqual(
      [error.code, error.line, error.column, error.field, error.message],
      ["wrong-type", 5, 5, "spec.urlPathTemplate", "found a list"],
    );
  });

  test("a URL with an unsupported scheme, or a unix URL without a socket file", () => {
    const errors = failed(
      parseModule(
        lines(
          "kind: io.statefun.endpoints.v2/http",
          "spec:",
          "  functions: a/*",
          "  urlPathTemplate: ftp://x/",
          "---",
          "kind: io.statefun.endpoints.v2/http",
          "spec:",
          "  functions: b/*",
          "  urlPathTemplate: http+unix:///var/run/functions/statefun",
        ),
        "module.yaml",
      ),
    );
    assert.deepEqual(
      errors.map((e) => [e.line, e.message]),
      [
        [4, '"ftp://x/" has the unsupported scheme ftp'],
        [9, '"http+unix:///var/run/functions/statefun" names no socket file (a path segment ending in .sock)'],
      ],
    );
  });

  test("an unknown transport type", () => {
    const error = onlyError(
      lines(
        "kind: io.statefun.endpoints.v2/http",
        "spec:",
        "  functions: example/*",
        "  urlPathTemplate: http://x/",
        "  transport:",
        "    type: io.statefun.transports.v1/grpc",
      ),
    );
    assert.deepEqual(
      [error.line, error.field, error.message, error.expected],
      [
        6,
        "spec.transport.type",
        'unknown transport "io.statefun.transports.v1/grpc"',
        "io.statefun.transports.v1/async (the default) or io.statefun.transports.v1/okhttp",
      ],
    );
  });

  test("playground ports out of range and an egress without topics", () => {
    const errors = failed(
      parseModule(
        lines(
          "kind: io.statefun.playground.v1/ingress",
          "spec:",
          "  port: 99999",
          "---",
          "kind: io.statefun.playground.v1/egress",
          "spec:",
          "  port: 8091",
        ),
        "module.yaml",
      ),
    );
    assert.deepEqual(
      errors.map((e) => [e.line, e.field, e.message]),
      [
        [3, "spec.port", "99999 is above the maximum 65535"],
        [6, "spec.topics", "missing required field topics"],
      ],
    );
  });

  test("every error in a file is reported, in file order", () => {
    const errors = failed(
      parseModule(
        lines(
          "kind: io.statefun.endpoints.v2/http",
          "spec:",
          "  functions: example",
          "  urlPathTemplate: http://x/",
          "  maxNumBatchRequests: many",
          "---",
          "kind: io.statefun.kinesis.v1/egress",
          "spec: {}",
          "---",
          "kind: io.statefun.playground.v1/egress",
          "spec:",
          "  topics: greetings",
        ),
        "module.yaml",
      ),
    );
    assert.deepEqual(
      errors.map((e) => [e.line, e.code, e.field]),
      [
        [3, "invalid-value", "spec.functions"],
        [5, "wrong-type", "spec.maxNumBatchRequests"],
        [8, "missing-field", "spec.id"],
        [12, "wrong-type", "spec.topics"],
      ],
    );
  });

  test("the same namespace bound twice in one file names both places", () => {
    const errors = failed(
      parseModule(
        lines(
          "kind: io.statefun.endpoints.v2/http",
          "spec:",
          "  functions: example/*",
          "  urlPathTemplate: http://a/",
          "---",
          "kind: io.statefun.endpoints.v1/http",
          "spec:",
          "  functions: example/*",
          "  urlPathTemplate: http://b/",
        ),
        "module.yaml",
      ),
    );
    assert.deepEqual(
      errors.map((e) => [e.line, e.column, e.code, e.message]),
      [[8, 14, "duplicate", "function pattern example/* is already bound at module.yaml:3:14"]],
    );
  });

  test("a legacy file of an older format version", () => {
    const error = onlyError(lines('version: "2.0"', "module:", "  meta:", "    type: remote"));
    assert.deepEqual(
      [error.line, error.column, error.field, error.message],
      [1, 10, "version", 'format version "2.0" is not supported'],
    );
  });

  test("a legacy Kinesis ingress becomes a v1 ingress whose id is its meta.id, as StateFun translates it", () => {
    const module = loaded(
      parseModule(
        lines(
          'version: "3.0"',
          "module:",
          "  meta:",
          "    type: remote",
          "  spec:",
          "    ingresses:",
          "      - ingress:",
          "          meta:",
          "            type: io.statefun.kinesis/ingress",
          "            id: example/names",
          "          spec:",
          "            awsRegion: {type: specific, id: eu-west-1}",
          "            streams: [{stream: names, valueType: example/Name, targets: [example/greeter]}]",
        ),
        "module.yaml",
      ),
    );
    const [ingress] = module.ingresses;
    assert.equal(ingress?.kind, "io.statefun.kinesis.v1/ingress");
    assert.equal(ingress.id, "example/names");
    assert.deepEqual(ingress.region, { type: "specific", id: "eu-west-1" });
    assert.equal(ingress.source.field, "module.spec.ingresses[0].ingress.meta.id");
  });

  test("a legacy Kafka ingress and egress take their ids from meta.id", () => {
    const module = loaded(
      parseModule(
        lines(
          'version: "3.0"',
          "module:",
          "  meta:",
          "    type: remote",
          "  spec:",
          "    ingresses:",
          "      - ingress:",
          "          meta:",
          "            type: io.statefun.kafka/ingress",
          "            id: example/names",
          "          spec:",
          "            address: kafka:9092",
          "            consumerGroupId: greeter",
          "            topics: [{topic: names, valueType: example/Name, targets: [example/greeter]}]",
          "    egresses:",
          "      - egress:",
          "          meta:",
          "            type: io.statefun.kafka/egress",
          "            id: example/greets",
          "          spec:",
          "            address: kafka:9092",
          "            deliverySemantic: {type: exactly-once, transactionTimeout: 15min}",
        ),
        "module.yaml",
      ),
    );
    const [ingress] = module.ingresses;
    const [egress] = module.egresses;
    assert.equal(ingress?.kind, "io.statefun.kafka.v1/ingress");
    assert.equal(ingress.id, "example/names");
    assert.deepEqual(
      ingress.topics.map((topic) => topic.topic),
      ["names"],
    );
    assert.equal(egress?.kind, "io.statefun.kafka.v1/egress");
    assert.equal(egress.id, "example/greets");
    assert.deepEqual(egress.deliverySemantic, { type: "exactly-once", transactionTimeoutMs: 15 * 60_000 });
  });

  test("a legacy Kinesis egress without meta.id is missing its id", () => {
    const error = onlyError(
      lines(
        'version: "3.0"',
        "module:",
        "  meta:",
        "    type: remote",
        "  spec:",
        "    egresses:",
        "      - egress:",
        "          meta:",
        "            type: io.statefun.kinesis/egress",
        "          spec:",
        "            maxOutstandingRecords: 10",
      ),
    );
    assert.deepEqual(
      [error.line, error.code, error.field],
      [10, "missing-field", "module.spec.egresses[0].egress.spec.id"],
    );
  });
});
