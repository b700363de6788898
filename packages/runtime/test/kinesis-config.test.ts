// The Kinesis ingress and egress specs (statefun-protocol.md §4.4–4.5) read with every option
// and StateFun's defaults, and every mistake reported at its line and field. (How the kinds are
// bound in a module file is in config.test.ts; this is the spec reader alone.)
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LineCounter, parseDocument } from "yaml";
import type { ConfigError, ConfigWarning } from "../src/config/diagnostics.ts";
import { parseKinesisEgress, parseKinesisIngress } from "../src/config/kinesis.ts";
import { Reader } from "../src/config/reader.ts";

function read<T>(yaml: string, parse: (r: Reader, spec: NonNullable<ReturnType<Reader["map"]>>) => T) {
  const lineCounter = new LineCounter();
  const document = parseDocument(yaml, { lineCounter });
  const sink = { errors: [] as ConfigError[], warnings: [] as ConfigWarning[] };
  const r = new Reader("module.yaml", lineCounter, document, sink);
  const root = r.map({ path: "", value: document.contents, key: undefined }, "a mapping");
  const specEntry = root === undefined ? undefined : r.require(root, "spec", "a spec");
  const spec = specEntry === undefined ? undefined : r.map(specEntry, "a mapping");
  const value = spec === undefined ? undefined : parse(r, spec);
  return { value, errors: sink.errors.map((e) => e.format()), warnings: sink.warnings.map((w) => w.format()) };
}

/** The one error `yaml` gives, which must match `pattern`. */
function onlyError<T>(
  yaml: string,
  parse: (r: Reader, spec: NonNullable<ReturnType<Reader["map"]>>) => T,
  pattern: RegExp,
): void {
  const { value, errors } = read(yaml, parse);
  assert.equal(value, undefined);
  assert.equal(errors.length, 1, errors.join("\n"));
  assert.match(errors[0] as string, pattern);
}

const STREAMS = "  streams: [{stream: s, valueType: com.example/V, targets: [com.example/f]}]\n";

describe("Kinesis ingress spec", () => {
  test("every option, as StateFun writes them", () => {
    const { value, errors, warnings } = read(
      `kind: io.statefun.kinesis.v1/ingress
spec:
  id: com.example/users-in
  awsRegion:
    type: specific
    id: eu-west-1
  awsCredentials:
    type: basic
    accessKeyId: AKIAEXAMPLE
    secretAccessKey: s3cr3t
  startupPosition:
    type: earliest
  streams:
    - stream: user-stream
      valueType: com.example/User
      targets:
        - com.example.fns/greeter
        - com.example.fns/auditor
    - stream: fraud.v2
      valueType: com.example/Fraud
      targets: [com.example.fns/counter]
  clientConfigProperties:
    - SocketTimeout: 9999
    - MaxConnections: 15
`,
      parseKinesisIngress,
    );
    assert.deepEqual(errors, []);
    assert.deepEqual(warnings, []);
    assert.ok(value !== undefined);
    assert.equal(value.kind, "io.statefun.kinesis.v1/ingress");
    assert.equal(value.id, "com.example/users-in");
    assert.deepEqual(value.region, { type: "specific", id: "eu-west-1" });
    assert.deepEqual(value.credentials, { type: "basic", accessKeyId: "AKIAEXAMPLE", secretAccessKey: "s3cr3t" });
    assert.deepEqual(value.startupPosition, { type: "earliest" });
    assert.deepEqual(value.streams, [
      {
        stream: "user-stream",
        valueType: "com.example/User",
        targets: ["com.example.fns/greeter", "com.example.fns/auditor"],
      },
      { stream: "fraud.v2", valueType: "com.example/Fraud", targets: ["com.example.fns/counter"] },
    ]);
    assert.deepEqual(
      [...value.clientConfigProperties],
      [
        ["SocketTimeout", "9999"],
        ["MaxConnections", "15"],
      ],
    );
    assert.deepEqual(value.source, { file: "module.yaml", line: 3, column: 7, field: "spec.id" });
  });

  test("defaults: the AWS default chains for region and credentials, latest, no properties", () => {
    const { value, errors } = read(`spec:\n  id: com.example/in\n${STREAMS}`, parseKinesisIngress);
    assert.deepEqual(errors, []);
    assert.deepEqual(value?.region, { type: "default" });
    assert.deepEqual(value?.credentials, { type: "default" });
    assert.deepEqual(value?.startupPosition, { type: "latest" });
    assert.equal(value?.clientConfigProperties.size, 0);
    const explicit = read(
      `spec:\n  id: com.example/in\n  awsRegion: {type: default}\n  awsCredentials: {type: default}\n  startupPosition: {type: latest}\n${STREAMS}`,
      parseKinesisIngress,
    );
    assert.deepEqual(explicit.errors, []);
    assert.deepEqual(explicit.value?.region, { type: "default" });
    assert.deepEqual(explicit.value?.credentials, { type: "default" });
    assert.deepEqual(explicit.value?.startupPosition, { type: "latest" });
  });

  test("a custom endpoint, with or without its scheme (https, as the AWS SDK assumes)", () => {
    const withScheme = read(
      `spec:\n  id: com.example/in\n  awsRegion: {type: custom-endpoint, endpoint: "http://127.0.0.1:4567", id: us-west-1}\n${STREAMS}`,
      parseKinesisIngress,
    );
    assert.deepEqual(withScheme.errors, []);
    assert.deepEqual(withScheme.value?.region, {
      type: "custom-endpoint",
      endpoint: "http://127.0.0.1:4567",
      id: "us-west-1",
    });
    const bare = read(
      `spec:\n  id: com.example/in\n  awsRegion: {type: custom-endpoint, endpoint: "localhost:4567", id: us-west-1}\n${STREAMS}`,
      parseKinesisIngress,
    );
    assert.deepEqual(bare.errors, []);
    assert.deepEqual(bare.value?.region, {
      type: "custom-endpoint",
      endpoint: "https://localhost:4567",
      id: "us-west-1",
    });
  });

  test("profile credentials, with and without a profile path", () => {
    const withPath = read(
      `spec:\n  id: com.example/in\n  awsCredentials: {type: profile, profileName: dev, profilePath: /home/me/.aws/credentials}\n${STREAMS}`,
      parseKinesisIngress,
    );
    assert.deepEqual(withPath.errors, []);
    assert.deepEqual(withPath.value?.credentials, {
      type: "profile",
      profileName: "dev",
      profilePath: "/home/me/.aws/credentials",
    });
    const withoutPath = read(
      `spec:\n  id: com.example/in\n  awsCredentials: {type: profile, profileName: dev}\n${STREAMS}`,
      parseKinesisIngress,
    );
    assert.deepEqual(withoutPath.value?.credentials, { type: "profile", profileName: "dev", profilePath: undefined });
  });

  test("a date position in Java's pattern, with its zone offset", () => {
    const { value, errors } = read(
      `spec:\n  id: com.example/in\n  startupPosition: {type: date, date: "2020-02-01 05:15:00.250 +0100"}\n${STREAMS}`,
      parseKinesisIngress,
    );
    assert.deepEqual(errors, []);
    assert.deepEqual(value?.startupPosition, { type: "date", epochMs: Date.UTC(2020, 1, 1, 4, 15, 0, 250) });
  });

  test("a missing id", () => {
    onlyError(
      `spec:\n${STREAMS}`,
      parseKinesisIngress,
      /^module\.yaml:1:1: spec\.id: missing required field id; expected a typename such as com\.example\/users-in$/,
    );
  });

  test("no streams, and no streams field", () => {
    onlyError(
      "spec:\n  id: com.example/in\n  streams: []\n",
      parseKinesisIngress,
      /^module\.yaml:3:12: spec\.streams: no streams; expected a non-empty list of \{stream, valueType, targets\}$/,
    );
    onlyError(
      "spec:\n  id: com.example/in\n",
      parseKinesisIngress,
      /^module\.yaml:1:1: spec\.streams: missing required field streams; expected a non-empty list/,
    );
  });

  test("a stream listed twice", () => {
    onlyError(
      `spec:
  id: com.example/in
  streams:
    - {stream: users, valueType: com.example/U, targets: [com.example/f]}
    - {stream: users, valueType: com.example/U, targets: [com.example/g]}
`,
      parseKinesisIngress,
      /^module\.yaml:5:16: spec\.streams\[1\]\.stream: stream users is listed twice; expected each stream once$/,
    );
  });

  test("an unknown region type", () => {
    onlyError(
      `spec:\n  id: com.example/in\n  awsRegion:\n    type: nearest\n${STREAMS}`,
      parseKinesisIngress,
      /^module\.yaml:4:11: spec\.awsRegion\.type: "nearest" is not a region type; expected default, specific, custom-endpoint$/,
    );
  });

  test("basic credentials missing a key", () => {
    onlyError(
      `spec:\n  id: com.example/in\n  awsCredentials:\n    type: basic\n    accessKeyId: AKIAEXAMPLE\n${STREAMS}`,
      parseKinesisIngress,
      /^module\.yaml:3:3: spec\.awsCredentials\.secretAccessKey: missing required field secretAccessKey; expected the AWS secret access key$/,
    );
  });

  test("a bad date", () => {
    onlyError(
      `spec:\n  id: com.example/in\n  startupPosition:\n    type: date\n    date: 2020-02-01T04:15:00Z\n${STREAMS}`,
      parseKinesisIngress,
      /^module\.yaml:5:11: spec\.startupPosition\.date: "2020-02-01T04:15:00Z" is not such a date; expected a date as "yyyy-MM-dd HH:mm:ss\.SSS Z"/,
    );
  });

  test("every other mistake is named at its line and field", () => {
    const { value, errors, warnings } = read(
      `spec:
  id: not-a-typename
  awsRegion: {type: custom-endpoint, endpoint: "ftp://host:21"}
  awsCredentials: {type: profile, profilePath: /tmp/creds}
  startupPosition: {type: group-offsets}
  streams:
    - stream: arn:aws:kinesis:eu-west-1:1:stream/users
      valueType: com.example/User
      targets: []
    - stream: other
      targets: [nope]
  clientConfigProperties: [SocketTimeout]
  clientConfigProperites: []
`,
      parseKinesisIngress,
    );
    assert.equal(value, undefined);
    const expected = [
      /module\.yaml:2:7: spec\.id: "not-a-typename" is not a typename/,
      /module\.yaml:3:48: spec\.awsRegion\.endpoint: "ftp:\/\/host:21" is not an endpoint/,
      /module\.yaml:3:3: spec\.awsRegion\.id: missing required field id/,
      /module\.yaml:4:3: spec\.awsCredentials\.profileName: missing required field profileName/,
      /module\.yaml:5:27: spec\.startupPosition\.type: "group-offsets" is not a startup position; expected latest, earliest, date/,
      /module\.yaml:7:15: spec\.streams\[0\]\.stream: "arn:aws:kinesis:eu-west-1:1:stream\/users" is not a stream name/,
      /module\.yaml:9:16: spec\.streams\[0\]\.targets: no targets/,
      /spec\.streams\[1\]\.valueType: missing required field valueType/,
      /module\.yaml:11:17: spec\.streams\[1\]\.targets\[0\]: "nope" is not a typename/,
      /module\.yaml:12:28: spec\.clientConfigProperties\[0\]: found the string "SocketTimeout"; expected a list of single-key maps/,
    ];
    for (const pattern of expected) {
      assert.ok(
        errors.some((error) => pattern.test(error)),
        `${pattern} in:\n${errors.join("\n")}`,
      );
    }
    assert.equal(errors.length, expected.length, errors.join("\n"));
    assert.match(
      warnings.join("\n"),
      /spec\.clientConfigProperites: unknown property, ignored; did you mean clientConfigProperties\?/,
    );
  });
});

describe("Kinesis egress spec", () => {
  test("every option, as StateFun writes them", () => {
    const { value, errors, warnings } = read(
      `kind: io.statefun.kinesis.v1/egress
spec:
  id: com.example/out
  awsRegion: { type: specific, id: eu-west-1 }
  awsCredentials: { type: default }
  maxOutstandingRecords: 250
  clientConfigProperties:
    - ThreadingModel: POOLED
    - ThreadPoolSize: 10
`,
      parseKinesisEgress,
    );
    assert.deepEqual(errors, []);
    assert.deepEqual(warnings, []);
    assert.ok(value !== undefined);
    assert.equal(value.kind, "io.statefun.kinesis.v1/egress");
    assert.equal(value.id, "com.example/out");
    assert.deepEqual(value.region, { type: "specific", id: "eu-west-1" });
    assert.deepEqual(value.credentials, { type: "default" });
    assert.equal(value.maxOutstandingRecords, 250);
    assert.deepEqual(
      [...value.clientConfigProperties],
      [
        ["ThreadingModel", "POOLED"],
        ["ThreadPoolSize", "10"],
      ],
    );
  });

  test("defaults: the AWS default chains, 1000 outstanding records, no properties", () => {
    const { value, errors } = read("spec:\n  id: com.example/out\n", parseKinesisEgress);
    assert.deepEqual(errors, []);
    assert.deepEqual(value?.region, { type: "default" });
    assert.deepEqual(value?.credentials, { type: "default" });
    assert.equal(value?.maxOutstandingRecords, 1000);
    assert.equal(value?.clientConfigProperties.size, 0);
  });

  test("a missing id", () => {
    onlyError(
      "spec:\n  maxOutstandingRecords: 5\n",
      parseKinesisEgress,
      /^module\.yaml:1:1: spec\.id: missing required field id; expected a typename such as com\.example\/users-in$/,
    );
  });

  test("maxOutstandingRecords must be a whole number larger than 0", () => {
    const expected = "expected a number of records larger than 0 \\(default 1000\\)$";
    onlyError(
      "spec:\n  id: com.example/out\n  maxOutstandingRecords: 0\n",
      parseKinesisEgress,
      new RegExp(`^module\\.yaml:3:26: spec\\.maxOutstandingRecords: 0 is below the minimum 1; ${expected}`),
    );
    onlyError(
      "spec:\n  id: com.example/out\n  maxOutstandingRecords: many\n",
      parseKinesisEgress,
      new RegExp(`^module\\.yaml:3:26: spec\\.maxOutstandingRecords: "many" is not an integer; ${expected}`),
    );
    onlyError(
      "spec:\n  id: com.example/out\n  maxOutstandingRecords: 4294967296\n",
      parseKinesisEgress,
      /spec\.maxOutstandingRecords: 4294967296 is above the maximum 2147483647/,
    );
  });

  test("an unknown credentials type", () => {
    onlyError(
      "spec:\n  id: com.example/out\n  awsCredentials: {type: session}\n",
      parseKinesisEgress,
      /^module\.yaml:3:26: spec\.awsCredentials\.type: "session" is not a credentials type; expected default, basic, profile$/,
    );
  });
});
