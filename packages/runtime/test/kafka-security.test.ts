// Eddy's Kafka ingress and exactly-once egress against a real Apache Kafka 4.4 broker whose
// listeners want SASL (PLAIN, SCRAM) or TLS (server-only and mutual), configured as a StateFun
// module.yaml configures them: Java client property names under `properties:`. Each listener
// gets one round trip: records produced to a topic reach an in-process function, which sends
// one record per input to the exactly-once egress; a read_committed reader on the broker's
// PLAINTEXT listener must see them all. A wrong password, an untrusted server certificate or a
// missing client certificate must not stop Eddy: it logs an error that names the problem and
// keeps trying.
//
// The TLS material (a CA, the broker's certificate for IP 127.0.0.1, a client certificate, and
// a second CA nobody trusts) is made with the openssl CLI in a temporary directory.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, kafkaRecord, statefulFunction } from "@eddy/sdk";
import {
  Admin,
  Consumer,
  connectionsConnectsChannel,
  FetchIsolationLevels,
  MessagesStreamModes,
  Producer,
  stringDeserializers,
} from "@platformatic/kafka";
import { type KafkaBroker, startKafka } from "../../../test/support/kafka-broker.ts";
import { parseModule } from "../src/config/module.ts";
import { type RunningRuntime, startRuntime } from "../src/runtime.ts";

const WAIT_MS = 20_000;
/** How long a refused Eddy has to report and retry; the egress reports after about 11 s. */
const REFUSED_WAIT_MS = 25_000;
const RECORDS = 5;
/** The broker's SASL users; SCRAM users live in the metadata log, PLAIN users in the JAAS line. */
const USER = "eddy";
const PLAIN_PASSWORD = "plain-secret";
const SCRAM_PASSWORD = "scram-secret";
const PKCS12_PASSWORD = "p12-secret";
const KEY_PASSWORD = "key-secret";

let broker: KafkaBroker;
let producer: Producer;
let admin: Admin;
/** Where the certificates and keys are. */
let pki: string;

before(async () => {
  pki = mkdtempSync(join(tmpdir(), "eddy-kafka-pki-"));
  makeCertificates(pki);
  broker = await startKafka({
    listeners: [
      { name: "SASL_PLAIN", protocol: "SASL_PLAINTEXT" },
      { name: "SCRAM", protocol: "SASL_PLAINTEXT" },
      { name: "SCRAM_TLS", protocol: "SASL_SSL" },
      { name: "TLS", protocol: "SSL" },
      { name: "MTLS", protocol: "SSL" },
    ],
    scramCredentials: [
      { mechanism: "SCRAM-SHA-256", username: USER, password: SCRAM_PASSWORD },
      { mechanism: "SCRAM-SHA-512", username: USER, password: SCRAM_PASSWORD },
    ],
    properties: {
      // One partition each instead of 50: the first transaction and group commit come sooner.
      "transaction.state.log.num.partitions": "1",
      "offsets.topic.num.partitions": "1",
      // Every SSL listener (TLS, MTLS, SCRAM_TLS) shows this certificate; MTLS wants one back.
      "ssl.keystore.type": "PEM",
      "ssl.keystore.location": join(pki, "broker-keystore.pem"),
      "ssl.truststore.type": "PEM",
      "ssl.truststore.location": join(pki, "ca.pem"),
      "listener.name.mtls.ssl.client.auth": "required",
      "listener.name.sasl_plain.sasl.enabled.mechanisms": "PLAIN",
      "listener.name.sasl_plain.plain.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required user_${USER}="${PLAIN_PASSWORD}";`,
      "listener.name.scram.sasl.enabled.mechanisms": "SCRAM-SHA-256",
      "listener.name.scram.scram-sha-256.sasl.jaas.config":
        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
      "listener.name.scram_tls.sasl.enabled.mechanisms": "SCRAM-SHA-512",
      "listener.name.scram_tls.scram-sha-512.sasl.jaas.config":
        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
    },
  });
  producer = new Producer({ clientId: "test-source", bootstrapBrokers: [broker.bootstrap], idempotent: true });
  admin = new Admin({ clientId: "test-admin", bootstrapBrokers: [broker.bootstrap] });
});

after(async () => {
  await producer?.close();
  await admin?.close();
  await broker?.stop();
  if (pki !== undefined) rmSync(pki, { recursive: true, force: true });
});

/** openssl in `directory`; its output only when it fails. */
function openssl(directory: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: directory, stdio: ["ignore", "pipe", "pipe"] });
}

/** A P-256 key and a self-signed CA certificate: <name>.key, <name>.pem. */
function makeCa(directory: string, name: string): void {
  openssl(
    directory,
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
    ...["-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${name}`],
    ...["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
  );
}

/** A P-256 key (PKCS#8, unencrypted) and a certificate `ca` signed, with `extensions`: <name>.key, <name>.pem. */
function makeLeaf(directory: string, name: string, ca: string, extensions: string[]): void {
  openssl(
    directory,
    ...["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
    ...["-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`],
  );
  writeFileSync(join(directory, `${name}.ext`), `${extensions.join("\n")}\n`);
  openssl(
    directory,
    ...["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-set_serial"],
    ...[`0x${randomBytes(8).toString("hex")}`, "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.pem`],
  );
}

function makeCertificates(directory: string): void {
  makeCa(directory, "ca");
  makeCa(directory, "other-ca");
  makeLeaf(directory, "broker", "ca", ["subjectAltName=IP:127.0.0.1", "extendedKeyUsage=serverAuth"]);
  makeLeaf(directory, "client", "ca", ["extendedKeyUsage=clientAuth"]);
  const read = (file: string) => readFileSync(join(directory, file), "utf8");
  // Kafka's PEM key store: the private key and the certificate chain in one file.
  writeFileSync(join(directory, "broker-keystore.pem"), read("broker.key") + read("broker.pem"));
  writeFileSync(join(directory, "client-keystore.pem"), read("client.key") + read("client.pem"));
  // The client key again, encrypted (PKCS#8, AES-256), for ssl.keystore.key with ssl.key.password.
  openssl(
    directory,
    ...["pkcs8", "-topk8", "-in", "client.key", "-out", "client-encrypted.key"],
    ...["-v2", "aes-256-cbc", "-passout", `pass:${KEY_PASSWORD}`],
  );
  openssl(
    directory,
    ...["pkcs12", "-export", "-in", "client.pem", "-inkey", "client.key", "-name", "client"],
    ...["-out", "client.p12", "-passout", `pass:${PKCS12_PASSWORD}`],
  );
}

/** A YAML list item `- name: value`, at `indent`; multi-line values as a literal block. */
function property(name: string, value: string, indent = "    "): string {
  if (!value.includes("\n")) return `${indent}- ${name}: ${value}\n`;
  const lines = value.trimEnd().split("\n");
  return `${indent}- ${name}: |\n${lines.map((line) => `${indent}    ${line}\n`).join("")}`;
}

/**
 * A module.yaml with a Kafka ingress (`input` → test/echo) and, unless `egress` is false, an
 * exactly-once Kafka egress (test/out), both on `address` with the client `properties`.
 */
function moduleYaml(options: {
  address: string;
  input: string;
  groupId: string;
  properties: string;
  egress?: boolean;
}): string {
  const ingress = `kind: io.statefun.kafka.v1/ingress
spec:
  id: test/in
  address: ${options.address}
  consumerGroupId: ${options.groupId}
  startupPosition:
    type: earliest
  topics:
    - topic: ${options.input}
      valueType: test/Text
      targets:
        - test/echo
  properties:
${options.properties}`;
  if (options.egress === false) return ingress;
  return `${ingress}---
kind: io.statefun.kafka.v1/egress
spec:
  id: test/out
  address: ${options.address}
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 1min
  properties:
${options.properties}`;
}

interface Eddy {
  readonly runtime: RunningRuntime;
  /** Every line Eddy logged. */
  readonly log: string[];
  /** Why Eddy stopped on its own (a function failed under the stop policy), if it did. */
  readonly stopped: () => string | undefined;
  /** Stops Eddy and removes its state directory. */
  stop(): Promise<void>;
}

/** Eddy in this process, with `test/echo` answering each record with "echo <value>" to `output` through test/out. */
async function startEddy(yaml: string, output: string): Promise<Eddy> {
  const echo = statefulFunction({
    typename: "test/echo",
    handle(ctx, incoming) {
      const value = `echo ${Buffer.from(incoming.bytes).toString()}`;
      ctx.send(kafkaRecord({ egress: "test/out", topic: output, key: ctx.self.id, value }));
    },
  });
  const loaded = parseModule(yaml, "module.yaml");
  if (!loaded.ok) throw new Error(loaded.errors.map((error) => error.format()).join("\n"));
  const dir = mkdtempSync(join(tmpdir(), "eddy-kafka-security-"));
  const log: string[] = [];
  let stopped: string | undefined;
  const runtime = await startRuntime({
    module: loaded.module,
    stateDir: join(dir, "state"),
    inProcess: createEndpoint([echo]),
    partitionCount: 4,
    log: (line) => log.push(line),
    onStop: (reason) => {
      stopped = reason;
    },
  }).catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  return {
    runtime,
    log,
    stopped: () => stopped,
    async stop() {
      await runtime.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The values of `topic` a read_committed consumer on the PLAINTEXT listener sees, once there are `count` (or WAIT_MS passed). */
async function committedValues(topic: string, count: number): Promise<string[]> {
  const reader = new Consumer({
    clientId: `reader-${topic}`,
    groupId: `reader-${topic}`,
    bootstrapBrokers: [broker.bootstrap],
    deserializers: stringDeserializers,
  });
  const values: string[] = [];
  try {
    const stream = await reader.consume({
      topics: [topic],
      mode: MessagesStreamModes.EARLIEST,
      autocommit: false,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      maxWaitTime: 100,
    });
    const timer = setTimeout(() => void stream.close(), WAIT_MS);
    try {
      for await (const message of stream) {
        values.push(message.value);
        if (values.length >= count) break;
      }
    } finally {
      clearTimeout(timer);
      await stream.close();
    }
  } finally {
    await reader.close(true);
  }
  return values.sort();
}

/**
 * Produces RECORDS records to a new topic `<name>-in`, runs Eddy on the listener `listener` with the
 * client properties `properties`, and expects every answer in the output topic.
 */
async function roundTrip(name: string, listener: string, properties: string): Promise<void> {
  const input = `${name}-in`;
  const output = `${name}-out`;
  await admin.createTopics({ topics: [input, output], partitions: 2, replicas: 1 });
  const sent = Array.from({ length: RECORDS }, (_, index) => `${name}-${index}`);
  await producer.send({
    messages: sent.map((value, index) => ({ topic: input, key: Buffer.from(`k${index}`), value: Buffer.from(value) })),
  });
  const address = broker.listeners[listener] as string;
  const eddy = await startEddy(moduleYaml({ address, input, groupId: `g-${name}`, properties }), output);
  try {
    const seen = await committedValues(output, RECORDS);
    assert.deepEqual(
      seen,
      sent.map((value) => `echo ${value}`).sort(),
      `through ${listener} (${address}); Eddy logged:\n${eddy.log.join("\n")}`,
    );
    assert.equal(eddy.stopped(), undefined);
  } finally {
    await eddy.stop();
  }
}

const plainJaas = (password: string) =>
  `org.apache.kafka.common.security.plain.PlainLoginModule required username="${USER}" password="${password}";`;
const scramJaas = `org.apache.kafka.common.security.scram.ScramLoginModule required username="${USER}" password="${SCRAM_PASSWORD}";`;

/** Eddy's lines about a connector that cannot reach Kafka and tries again. */
const RETRIED = /^eddy: Kafka (ingress test\/in|egress test\/out): .*(; retrying|; will look again)$/;

/**
 * Who refuses a connection, and how they say why. The broker logs a failed authentication
 * (its channel id starts with the listener's address); a client that refuses the broker's
 * certificate fails the connect, which the Kafka client publishes on its diagnostics channel.
 */
interface Refusal {
  readonly by: "broker" | "client";
  readonly says: RegExp;
}

/** Why each connect of Eddy's Kafka client to "host:port" failed, in order (the client's diagnostics channel). */
const failedConnects = new Map<string, string[]>();
function noteFailedConnect(message: unknown): void {
  const { host, port, error } = message as { host?: string; port?: number; error?: { cause?: unknown } };
  const cause = error?.cause instanceof Error ? error.cause.message : String(error?.cause);
  const address = `${host}:${port}`;
  failedConnects.set(address, [...(failedConnects.get(address) ?? []), cause]);
}
before(() => connectionsConnectsChannel.error.subscribe(noteFailedConnect));
after(() => connectionsConnectsChannel.error.unsubscribe(noteFailedConnect));

/** The refusals of connections to `address` that match `refusal`, as the refuser tells them. */
function refusals(address: string, refusal: Refusal): string[] {
  const told =
    refusal.by === "client"
      ? (failedConnects.get(address) ?? [])
      : readFileSync(broker.outputPath, "utf8")
          .split("\n")
          .filter((line) => line.includes("Failed authentication") && line.includes(`channelId=${address}-`));
  return told.filter((line) => refusal.says.test(line));
}

/**
 * Runs Eddy with client `properties` that `listener` refuses: Eddy must keep running, each
 * connector log an error and try again (the refusal happens more than once), and its lines
 * must name the problem (`names`).
 */
async function refused(
  t: TestContext,
  scenario: {
    name: string;
    listener: string;
    properties: string;
    egress: boolean;
    refusal: Refusal;
    names: RegExp;
  },
): Promise<void> {
  const input = `${scenario.name}-in`;
  await admin.createTopics({ topics: [input], partitions: 1, replicas: 1 });
  const address = broker.listeners[scenario.listener] as string;
  const yaml = moduleYaml({
    address,
    input,
    groupId: `g-${scenario.name}`,
    properties: scenario.properties,
    egress: scenario.egress,
  });
  const eddy = await startEddy(yaml, `${scenario.name}-out`);
  const connectors = scenario.egress ? ["ingress test/in", "egress test/out"] : ["ingress test/in"];
  const reported = () => connectors.every((name) => eddy.log.some((line) => RETRIED.test(line) && line.includes(name)));
  try {
    // The egress gives up on a connection only after the client's own retries (about 11 s).
    const until = Date.now() + REFUSED_WAIT_MS;
    while ((!reported() || refusals(address, scenario.refusal).length < 2) && Date.now() < until) await sleep(100);
    for (const line of eddy.log) t.diagnostic(line);
    t.diagnostic(`refused by the ${scenario.refusal.by}: ${refusals(address, scenario.refusal)[0]}`);
    assert.ok(
      reported(),
      `each of ${connectors.join(", ")} logs an error it retries; Eddy logged:\n${eddy.log.join("\n")}`,
    );
    const times = refusals(address, scenario.refusal).length;
    assert.ok(times >= 2, `Eddy tried again after the ${scenario.refusal.by} refused (${times} refusals)`);
    assert.equal(eddy.stopped(), undefined, "Eddy keeps running");
    for (const line of eddy.log.filter((line) => RETRIED.test(line))) assert.match(line, scenario.names);
  } finally {
    await eddy.stop();
  }
}

describe("Kafka ingress and exactly-once egress on a broker's secured listeners", { concurrency: true }, () => {
  describe("SASL", { concurrency: true }, () => {
    it("SASL_PLAINTEXT with PLAIN", async () => {
      await roundTrip(
        "plain",
        "SASL_PLAIN",
        property("security.protocol", "SASL_PLAINTEXT") +
          property("sasl.mechanism", "PLAIN") +
          property("sasl.jaas.config", plainJaas(PLAIN_PASSWORD)),
      );
    });

    it("SASL_PLAINTEXT with SCRAM-SHA-256", async () => {
      await roundTrip(
        "scram-256",
        "SCRAM",
        property("security.protocol", "SASL_PLAINTEXT") +
          property("sasl.mechanism", "SCRAM-SHA-256") +
          property("sasl.jaas.config", scramJaas),
      );
    });

    it("SASL_SSL with SCRAM-SHA-512, the CA given inline as ssl.truststore.certificates", async () => {
      await roundTrip(
        "scram-512-tls",
        "SCRAM_TLS",
        property("security.protocol", "SASL_SSL") +
          property("sasl.mechanism", "SCRAM-SHA-512") +
          property("sasl.jaas.config", scramJaas) +
          property("ssl.truststore.type", "PEM") +
          property("ssl.truststore.certificates", readFileSync(join(pki, "ca.pem"), "utf8")),
      );
    });
  });

  describe("TLS", { concurrency: true }, () => {
    it("SSL with a PEM truststore file", async () => {
      await roundTrip(
        "tls",
        "TLS",
        property("security.protocol", "SSL") +
          property("ssl.truststore.type", "PEM") +
          property("ssl.truststore.location", join(pki, "ca.pem")),
      );
    });

    it("mutual TLS with a PKCS#12 client keystore", async () => {
      await roundTrip(
        "mtls-pkcs12",
        "MTLS",
        property("security.protocol", "SSL") +
          property("ssl.truststore.type", "PEM") +
          property("ssl.truststore.location", join(pki, "ca.pem")) +
          property("ssl.keystore.type", "PKCS12") +
          property("ssl.keystore.location", join(pki, "client.p12")) +
          property("ssl.keystore.password", PKCS12_PASSWORD),
      );
    });

    it("mutual TLS with a PEM client keystore file (key and chain in one file)", async () => {
      await roundTrip(
        "mtls-pem",
        "MTLS",
        property("security.protocol", "SSL") +
          property("ssl.truststore.type", "PEM") +
          property("ssl.truststore.location", join(pki, "ca.pem")) +
          property("ssl.keystore.type", "PEM") +
          property("ssl.keystore.location", join(pki, "client-keystore.pem")),
      );
    });

    it("mutual TLS with an encrypted PEM key and its chain inline (ssl.keystore.key, ssl.key.password)", async () => {
      await roundTrip(
        "mtls-inline",
        "MTLS",
        property("security.protocol", "SSL") +
          property("ssl.truststore.type", "PEM") +
          property("ssl.truststore.location", join(pki, "ca.pem")) +
          property("ssl.keystore.type", "PEM") +
          property("ssl.keystore.key", readFileSync(join(pki, "client-encrypted.key"), "utf8")) +
          property("ssl.keystore.certificate.chain", readFileSync(join(pki, "client.pem"), "utf8")) +
          property("ssl.key.password", KEY_PASSWORD),
      );
    });
  });

  describe("refused connections are logged and retried, not fatal", { concurrency: true }, () => {
    it("a wrong SASL/PLAIN password", async (t) => {
      await refused(t, {
        name: "bad-login",
        listener: "SASL_PLAIN",
        properties:
          property("security.protocol", "SASL_PLAINTEXT") +
          property("sasl.mechanism", "PLAIN") +
          property("sasl.jaas.config", plainJaas("not-the-password")),
        egress: true,
        refusal: { by: "broker", says: /Invalid username or password/ },
        names: /SASL authentication failed|Invalid username or password/,
      });
    });

    it("a server certificate from a CA the truststore does not hold", async (t) => {
      await refused(t, {
        name: "untrusted-ca",
        listener: "TLS",
        properties:
          property("security.protocol", "SSL") +
          property("ssl.truststore.type", "PEM") +
          property("ssl.truststore.location", join(pki, "other-ca.pem")),
        egress: true,
        refusal: { by: "client", says: /unable to verify the first certificate/ },
        names: /certificate/,
      });
    });

    // Ingress only: the egress's transactional producer goes through the client's nested
    // retries (about 25 s) before it reports a connection the broker closes after the handshake.
    // All the client learns is that the connection closed, so that is what the line says.
    it("mutual TLS without a client certificate (ingress only)", async (t) => {
      await refused(t, {
        name: "anonymous-tls",
        listener: "MTLS",
        properties:
          property("security.protocol", "SSL") +
          property("ssl.truststore.type", "PEM") +
          property("ssl.truststore.location", join(pki, "ca.pem")),
        egress: false,
        refusal: { by: "broker", says: /SSL handshake failed/ },
        names: /Connection closed/,
      });
    });
  });
});
