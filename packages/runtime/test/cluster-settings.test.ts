// What `eddy run --cluster` reads its worker's settings from: the kafka:// URL (brokers and
// name, each mistake named), the worker id (checked as Kafka checks a group.instance.id, and
// kept in the state directory across restarts), the advertised URL, and the cluster's Kafka
// client properties as a Java .properties file (comments, continuations, escapes, as
// java.util.Properties reads them) turned into a connection as the Kafka connectors do.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  checkAdvertiseUrl,
  checkWorkerId,
  clusterSettings,
  defaultAdminAdvertiseUrl,
  defaultAdvertiseUrl,
  parseClusterUrl,
  parseJavaProperties,
  persistedWorkerId,
  randomWorkerId,
  readPropertiesFile,
} from "../src/cluster/cluster-settings.ts";
import type { FieldLocation } from "../src/config/diagnostics.ts";
import { Kind, type ModuleConfig } from "../src/config/types.ts";

const directories: string[] = [];
after(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

function temporaryDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), "eddy-cluster-settings-"));
  directories.push(directory);
  return directory;
}

/** The message of a failed Result, or a test failure showing what came instead. */
function failureOf(result: { ok: boolean; message?: string; code?: string }): { code: string; message: string } {
  assert.equal(result.ok, false, `expected a failure, got ${JSON.stringify(result)}`);
  return { code: result.code as string, message: result.message as string };
}

describe("parseClusterUrl", () => {
  it("takes one or more brokers and the cluster name", () => {
    assert.deepEqual(parseClusterUrl("kafka://b1:9092/orders"), {
      ok: true,
      value: { brokers: ["b1:9092"], name: "orders" },
    });
    assert.deepEqual(parseClusterUrl("kafka://b1:9092,10.0.0.2:19092,[::1]:9093/eu-west.prod_1"), {
      ok: true,
      value: { brokers: ["b1:9092", "10.0.0.2:19092", "[::1]:9093"], name: "eu-west.prod_1" },
    });
  });

  const malformed: readonly [string, RegExp][] = [
    [
      "kafka://b1:9092",
      /^kafka:\/\/b1:9092: no cluster name after the brokers \(kafka:\/\/HOST:PORT\[,HOST:PORT…\]\/NAME\)$/,
    ],
    ["kafka://b1:9092/", /: no cluster name after the brokers/],
    ["http://b1:9092/orders", /^http:\/\/b1:9092\/orders: expected kafka:\/\/HOST:PORT/],
    ["b1:9092/orders", /expected kafka:\/\/HOST:PORT/],
    ["kafka:///orders", /: no brokers before the cluster name/],
    ["kafka://b1/orders", /broker "b1" has no port/],
    ["kafka://b1:/orders", /broker "b1:": port "" is not from 1 to 65535/],
    ["kafka://b1:0/orders", /broker "b1:0": port "0" is not from 1 to 65535/],
    ["kafka://b1:65536/orders", /port "65536" is not from 1 to 65535/],
    ["kafka://b1:90x2/orders", /port "90x2" is not from 1 to 65535/],
    ["kafka://b1:9092,,b2:9092/orders", /an empty broker in the list/],
    ["kafka://b1:9092,/orders", /an empty broker in the list/],
    ["kafka://::1:9092/orders", /broker "::1:9092" has no port \(HOST:PORT, an IPv6 address in brackets\)/],
    ["kafka://[nonsense]:9092/orders", /"\[nonsense\]" is not a host name or address/],
    ["kafka://b 1:9092/orders", /"b 1" is not a host name or address/],
    ["kafka://b1:9092/orders/eu", /cluster name "orders\/eu": expected 1 to 200 of the letters/],
    ["kafka://b1:9092/..", /cluster name "\.\.": expected/],
    [`kafka://b1:9092/${"n".repeat(201)}`, /cluster name "n+": expected 1 to 200/],
  ];
  for (const [url, expected] of malformed) {
    it(`refuses ${url.length > 60 ? `${url.slice(0, 60)}…` : url} in one line naming what is wrong`, () => {
      const { code, message } = failureOf(parseClusterUrl(url));
      assert.equal(code, "cluster-url-invalid");
      assert.match(message, expected);
      assert.ok(message.startsWith(`${url}: `), message);
      assert.doesNotMatch(message, /\n/);
    });
  }
});

describe("worker ids", () => {
  it("takes 1 to 249 of Kafka's group.instance.id characters", () => {
    for (const id of ["w", "w-1f2e3d4c", "Worker_7.eu-west", "x".repeat(249)]) {
      assert.deepEqual(checkWorkerId(id), { ok: true, value: id });
    }
  });

  it("refuses what Kafka's client refuses as a group.instance.id", () => {
    for (const id of ["", ".", "..", "x".repeat(250), "w 1", "w/1", "wörker", "w:1"]) {
      const { code, message } = failureOf(checkWorkerId(id));
      assert.equal(code, "worker-id-invalid");
      assert.match(message, /^".*" is not a worker id: expected 1 to 249 of the letters/);
    }
  });

  it("a random one is w- and 8 hex digits, and valid", () => {
    const ids = new Set(Array.from({ length: 20 }, () => randomWorkerId()));
    assert.ok(ids.size > 1, "random");
    for (const id of ids) {
      assert.match(id, /^w-[0-9a-f]{8}$/);
      assert.equal(checkWorkerId(id).ok, true);
    }
  });

  it("is made once in <state-dir>/worker-id (making the directory) and the same on every later start", () => {
    const stateDir = join(temporaryDirectory(), "state");
    const first = persistedWorkerId(stateDir);
    assert.equal(first.ok, true);
    if (!first.ok) return;
    assert.equal(first.value.created, true);
    assert.match(first.value.workerId, /^w-[0-9a-f]{8}$/);
    assert.equal(readFileSync(join(stateDir, "worker-id"), "utf8"), `${first.value.workerId}\n`);
    const again = persistedWorkerId(stateDir, () => "w-other");
    assert.deepEqual(again, { ok: true, value: { workerId: first.value.workerId, created: false } });
    assert.deepEqual(readdirSync(stateDir), ["worker-id"], "no temporary file left behind");
  });

  it("reads an id a person wrote, with or without a newline", () => {
    const stateDir = temporaryDirectory();
    writeFileSync(join(stateDir, "worker-id"), "  node-3\r\n");
    assert.deepEqual(persistedWorkerId(stateDir), { ok: true, value: { workerId: "node-3", created: false } });
  });

  it("refuses a file that holds no valid id, and leaves it as it is", () => {
    const stateDir = temporaryDirectory();
    const path = join(stateDir, "worker-id");
    for (const content of ["", "two words\n"]) {
      writeFileSync(path, content);
      const { code, message } = failureOf(persistedWorkerId(stateDir));
      assert.equal(code, "worker-id-file");
      assert.ok(message.startsWith(`${path}: ${JSON.stringify(content.trim())} is not a worker id: `), message);
      assert.match(message, /correct the file or delete it for a new id$/);
      assert.equal(readFileSync(path, "utf8"), content);
    }
  });

  it("says why it cannot make or read the file, naming it", () => {
    const stateDir = temporaryDirectory();
    // Where the id is written first: a directory cannot be opened for writing, even by root.
    mkdirSync(join(stateDir, `worker-id.${process.pid}.tmp`));
    const unwritable = failureOf(persistedWorkerId(stateDir));
    assert.equal(unwritable.code, "worker-id-file");
    assert.match(unwritable.message, /\/worker-id: cannot write the worker id: EISDIR/);
    const file = join(temporaryDirectory(), "a-file");
    writeFileSync(file, "");
    const unreadable = failureOf(persistedWorkerId(join(file, "state")));
    assert.equal(unreadable.code, "worker-id-file");
    assert.match(unreadable.message, /a-file\/state\/worker-id: ENOTDIR/);
  });

  it("a start that finds the file made by a start racing it takes that id", () => {
    const stateDir = temporaryDirectory();
    const made = persistedWorkerId(stateDir, () => {
      // The racing start links its file between this one's read and link.
      writeFileSync(join(stateDir, "worker-id"), "w-racer\n");
      return "w-late";
    });
    assert.deepEqual(made, { ok: true, value: { workerId: "w-racer", created: false } });
    assert.deepEqual(readdirSync(stateDir), ["worker-id"]);
  });
});

describe("the advertised URL", () => {
  it("takes http and https URLs, as origin and path without a trailing slash", () => {
    assert.deepEqual(checkAdvertiseUrl("http://10.0.0.5:8090"), { ok: true, value: "http://10.0.0.5:8090" });
    assert.deepEqual(checkAdvertiseUrl("https://W1.example.com/eddy/"), {
      ok: true,
      value: "https://w1.example.com/eddy",
    });
    assert.deepEqual(checkAdvertiseUrl("http://[::1]:8090/"), { ok: true, value: "http://[::1]:8090" });
  });

  it("refuses anything else in one line", () => {
    const cases: readonly [string, RegExp][] = [
      ["10.0.0.5:8090", /is not http or https|not a URL/],
      ["w1:8090", /w1 is not http or https/],
      ["ftp://w1/", /ftp is not http or https/],
      ["http://", /not a URL/],
      ["http://user:secret@w1:8090", /credentials do not belong in the URL/],
      ["http://w1:8090/?x=1", /no query or fragment/],
    ];
    for (const [text, expected] of cases) {
      const { code, message } = failureOf(checkAdvertiseUrl(text));
      assert.equal(code, "advertise-url-invalid");
      assert.ok(message.startsWith(`${JSON.stringify(text)}: `), message);
      assert.match(message, expected);
    }
  });

  const source: FieldLocation = { file: "module.yaml", line: 1, column: 1, field: "spec" } as FieldLocation;
  const moduleWith = (port: number | undefined): ModuleConfig => ({
    files: ["module.yaml"],
    endpoints: [],
    ingresses: port === undefined ? [] : [{ kind: Kind.PLAYGROUND_INGRESS, port, source }],
    egresses: [],
  });

  it("defaults to the playground ingress's port after the offset, on the host it binds to", () => {
    assert.equal(defaultAdvertiseUrl(moduleWith(8090), 0, undefined), "http://127.0.0.1:8090");
    assert.equal(defaultAdvertiseUrl(moduleWith(8090), 10, "0.0.0.0"), "http://127.0.0.1:8100");
    assert.equal(defaultAdvertiseUrl(moduleWith(8090), 1, "10.0.0.5"), "http://10.0.0.5:8091");
    assert.equal(defaultAdvertiseUrl(moduleWith(8090), 0, "fd00::5"), "http://[fd00::5]:8090");
  });

  it("gives the admin listener the advertised host, at the port it listens on", () => {
    assert.equal(defaultAdminAdvertiseUrl("http://10.0.0.5:8090", "http://0.0.0.0:8093"), "http://10.0.0.5:8093");
    assert.equal(
      defaultAdminAdvertiseUrl("https://w1.example.com/eddy", "http://127.0.0.1:41234"),
      "http://w1.example.com:41234",
    );
    assert.equal(defaultAdminAdvertiseUrl("http://[fd00::5]:8090", "http://[::]:8093"), "http://[fd00::5]:8093");
  });

  it("has no port without a playground ingress, or when the ingress takes any free port", () => {
    assert.equal(defaultAdvertiseUrl(moduleWith(undefined), 5, undefined), "http://127.0.0.1");
    assert.equal(defaultAdvertiseUrl(moduleWith(0), 5, undefined), "http://127.0.0.1");
  });
});

describe("Java .properties", () => {
  const parsed = (text: string) => {
    const result = parseJavaProperties(text);
    assert.equal(result.ok, true, JSON.stringify(result));
    return result.ok ? Object.fromEntries(result.value) : {};
  };

  it("reads key=value, key: value and key value, with blanks around the separator", () => {
    assert.deepEqual(parsed("a=1\nb: 2\nc 3\n  d  =  4\ne\t:\tfive six\nf\ng=\nh = x = y\n"), {
      a: "1",
      b: "2",
      c: "3",
      d: "4",
      e: "five six",
      f: "",
      g: "",
      h: "x = y",
    });
  });

  it("keeps a value's trailing blanks and takes the last of a repeated key", () => {
    assert.deepEqual(parsed("a=1  \na=2\r\nb=x\r"), { a: "2", b: "x" });
  });

  it("skips # and ! comment lines and blank lines, but not # inside a value", () => {
    assert.deepEqual(parsed("# a comment\n   ! another\n\n \t \nurl=http://h/#frag\n"), { url: "http://h/#frag" });
  });

  it("goes on in the next line after an odd number of backslashes, dropping that line's leading blanks", () => {
    const text = [
      "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\",
      '    username="alice" \\',
      '    password="s3cret";',
      "path=C:\\\\dir\\\\",
      "next=1",
      "continued=a\\",
      "# not a comment inside a continuation",
    ].join("\n");
    assert.deepEqual(parsed(text), {
      "sasl.jaas.config":
        'org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="s3cret";',
      path: "C:\\dir\\",
      next: "1",
      continued: "a# not a comment inside a continuation",
    });
  });

  it("a comment line ending in a backslash does not go on", () => {
    assert.deepEqual(parsed("# comment \\\nkey=value"), { key: "value" });
  });

  it("a continuation at the end of the file ends the value", () => {
    assert.deepEqual(parsed("key=value\\"), { key: "value" });
  });

  it("unescapes \\t \\n \\r \\f \\uXXXX and any other escaped character, in keys and values", () => {
    assert.deepEqual(
      parsed("a\\=b\\:c\\ d=1\ntabs=x\\ty\\nz\\r\\f\nu=\\u00e9\\u0041\\uD83D\\uDE00\nother=\\q\\#\\\\\n"),
      {
        "a=b:c d": "1",
        tabs: "x\ty\nz\r\f",
        u: "éA😀",
        other: "q#\\",
      },
    );
  });

  it("refuses a malformed \\u escape, naming the line", () => {
    const { code, message } = failureOf(parseJavaProperties("a=1\nb=\\u00g1\n"));
    assert.equal(code, "properties-malformed");
    assert.equal(message, 'line 2: malformed \\uXXXX escape "\\u00g1"');
    assert.match(failureOf(parseJavaProperties("k\\u12=1")).message, /^line 1: malformed/);
  });

  it("reads a file; a missing one, and one not in UTF-8, are refused naming the file", () => {
    const directory = temporaryDirectory();
    const path = join(directory, "cluster.properties");
    writeFileSync(path, "\uFEFFsecurity.protocol = SSL\n");
    assert.deepEqual(readPropertiesFile(path), { ok: true, value: new Map([["security.protocol", "SSL"]]) });
    const missing = failureOf(readPropertiesFile(join(directory, "nope.properties")));
    assert.equal(missing.code, "properties-unreadable");
    assert.match(missing.message, /nope\.properties: ENOENT: no such file or directory/);
    writeFileSync(path, Buffer.from([0x70, 0x3d, 0xe4, 0x0a]));
    const latin1 = failureOf(readPropertiesFile(path));
    assert.equal(latin1.code, "properties-malformed");
    assert.equal(latin1.message, `${path}: not UTF-8; write other characters as \\uXXXX`);
  });
});

describe("clusterSettings", () => {
  const address = { brokers: ["b1:9092", "b2:9092"], name: "orders" };

  it("connects to the URL's brokers as eddy-<worker id>, and names the properties it does not read", () => {
    const result = clusterSettings({
      address,
      workerId: "w-1",
      advertiseUrl: "http://127.0.0.1:8090",
      properties: new Map([
        ["security.protocol", "SASL_PLAINTEXT"],
        ["sasl.mechanism", "SCRAM-SHA-256"],
        [
          "sasl.jaas.config",
          'org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p";',
        ],
        ["bootstrap.servers", "elsewhere:9092"],
        ["linger.ms", "5"],
      ]),
      propertiesSource: "cluster.properties",
    });
    assert.equal(result.ok, true, JSON.stringify(result));
    if (!result.ok) return;
    assert.deepEqual(result.value.settings, {
      name: "orders",
      workerId: "w-1",
      advertiseUrl: "http://127.0.0.1:8090",
      connection: {
        clientId: "eddy-w-1",
        bootstrapBrokers: ["b1:9092", "b2:9092"],
        sasl: { mechanism: "SCRAM-SHA-256", username: "u", password: "p" },
      },
    });
    assert.deepEqual(result.value.ignored, ["bootstrap.servers", "linger.ms"]);
  });

  it("refuses what the connectors refuse, naming the file", () => {
    const result = clusterSettings({
      address,
      workerId: "w-1",
      advertiseUrl: "http://127.0.0.1",
      properties: new Map([["security.protocol", "TLS"]]),
      propertiesSource: "cluster.properties",
    });
    const { code, message } = failureOf(result);
    assert.equal(code, "cluster-config-invalid");
    assert.match(message, /^cluster\.properties: security\.protocol "TLS": expected PLAINTEXT, SSL/);
  });

  it("reads the TLS files the properties name, and names one that is missing", () => {
    const result = clusterSettings({
      address,
      workerId: "w-1",
      advertiseUrl: "http://127.0.0.1",
      properties: new Map([
        ["security.protocol", "SSL"],
        ["ssl.truststore.location", "/no/such/ca.pem"],
      ]),
      propertiesSource: "cluster.properties",
    });
    assert.match(
      failureOf(result).message,
      /^cluster\.properties: ssl\.truststore\.location \/no\/such\/ca\.pem: ENOENT/,
    );
  });
});
