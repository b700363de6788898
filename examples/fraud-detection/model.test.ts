// fraud/model as the application runs it: model/model.py with the official StateFun Python
// SDK (scripts/ensure-python.sh installs it into .tools/python), sent real StateFun
// ToFunction bytes over HTTP. Its scores must match score() in model.ts, which the
// simulator and the tests use to know which transactions alert.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeFromFunction, encodeToFunction, type FromFunction } from "@eddy/protocol";
import { type PythonServer, startPythonServer } from "../../test/support/python-server.ts";
import { ALERT_THRESHOLD } from "./functions.ts";
import { type FeatureVector, FeatureVectorType, type Score, ScoreType } from "./messages.ts";
import { score } from "./model.ts";
import { DEFAULT_SIMULATION, scoredTransactions, simulate } from "./simulator.ts";

const modelPy = resolve(import.meta.dirname, "model/model.py");
/** How far apart the two scores may be: both are a few correctly rounded operations apart from libm's last bit. */
const SCORE_DIFFERENCE_MAX = 1e-12;

/** One ToFunction batch to fraud/model/<transactionId> per vector, each from that transaction's manager. */
async function scoreInPython(server: PythonServer, vectors: readonly FeatureVector[]): Promise<Score[]> {
  const scores: Score[] = [];
  for (const vector of vectors) {
    const reply = await post(server, [vector], vector.transactionId);
    const [only] = reply;
    assert.ok(only !== undefined);
    scores.push(only);
  }
  return scores;
}

/** POSTs `vectors` as one batch to fraud/model/<id>, each invocation from fraud/transaction-manager/<its transactionId>. */
async function post(server: PythonServer, vectors: readonly FeatureVector[], id: string): Promise<Score[]> {
  const body = encodeToFunction({
    invocation: {
      target: { namespace: "fraud", type: "model", id },
      state: [],
      invocations: vectors.map((vector) => ({
        caller: { namespace: "fraud", type: "transaction-manager", id: vector.transactionId },
        argument: { typename: FeatureVectorType.typename, hasValue: true, value: FeatureVectorType.serialize(vector) },
      })),
    },
  });
  const response = await fetch(server.url, {
    method: "POST",
    body,
    headers: { "content-type": "application/octet-stream" },
  });
  const bytes = new Uint8Array(await response.arrayBuffer());
  assert.equal(response.status, 200, `${new TextDecoder().decode(bytes)}\n--- model.py ---\n${server.log()}`);
  const decoded = decodeFromFunction(bytes);
  assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
  return scoresOf(decoded.value, vectors);
}

/** The reply's Score messages, checked to be one per vector, in order, each to its caller. */
function scoresOf(reply: FromFunction, vectors: readonly FeatureVector[]): Score[] {
  assert.equal(reply.incompleteInvocationContext, null, "fraud/model declares no state");
  const result = reply.invocationResult;
  assert.ok(result !== null);
  assert.deepEqual(
    [result.stateMutations.length, result.delayedInvocations.length, result.outgoingEgresses.length],
    [0, 0, 0],
  );
  assert.equal(result.outgoingMessages.length, vectors.length);
  return result.outgoingMessages.map((message, index) => {
    const vector = vectors[index] as FeatureVector;
    assert.deepEqual(
      { ...message.target },
      { namespace: "fraud", type: "transaction-manager", id: vector.transactionId },
      "the score goes to the caller",
    );
    assert.ok(message.argument !== null);
    assert.equal(message.argument.typename, ScoreType.typename);
    const scored = ScoreType.deserialize(message.argument.value);
    assert.equal(scored.transactionId, vector.transactionId);
    return scored;
  });
}

function vector(transactionId: string, amount: number, accountFraudCount: number, merchantRisk: number): FeatureVector {
  return { transactionId, account: "acct-1", merchant: "merchant-1", amount, accountFraudCount, merchantRisk };
}

/** The differences between Python's and model.ts's scores that exceed SCORE_DIFFERENCE_MAX or flip an alert. */
function disagreements(vectors: readonly FeatureVector[], scores: readonly Score[]): string[] {
  return vectors.flatMap((features, index) => {
    const python = (scores[index] as Score).score;
    const typescript = score(features);
    const flips = python > ALERT_THRESHOLD !== typescript > ALERT_THRESHOLD;
    if (Math.abs(python - typescript) <= SCORE_DIFFERENCE_MAX && !flips) return [];
    return [`${JSON.stringify(features)}: python ${python}, model.ts ${typescript}`];
  });
}

describe("fraud/model (model/model.py, the official StateFun Python SDK)", { timeout: 16 * 60_000 }, () => {
  let server: PythonServer;

  before(async () => {
    server = await startPythonServer(modelPy, { args: ["0", "--until-stdin-closes"] });
  });

  after(async () => {
    await server?.close();
  });

  it("scores a grid of features as score() in model.ts does, answering each caller", async () => {
    const vectors: FeatureVector[] = [];
    for (const amount of [0, 1, 50, 100, 250, 999.99, 2500, 5000]) {
      for (const accountFraudCount of [0, 1, 2, 3, 7]) {
        for (const merchantRisk of [0, 1 / 6, 0.5, 27 / 32, 0.95]) {
          vectors.push(vector(`tx-${vectors.length + 1}`, amount, accountFraudCount, merchantRisk));
        }
      }
    }
    // One batch of 200 invocations, as a runtime sends a backlog; each Score goes to its own caller.
    const scores = await post(server, vectors, "grid");
    assert.deepEqual(disagreements(vectors, scores), []);
    assert.ok(scores.some((scored) => scored.score > ALERT_THRESHOLD));
    assert.ok(scores.some((scored) => scored.score <= ALERT_THRESHOLD));
  });

  it("agrees with model.ts on every transaction of the default simulation, one request per transaction", async () => {
    const vectors = scoredTransactions(simulate(DEFAULT_SIMULATION)).map(
      ({ transaction, accountFraudCount, merchantRisk }) =>
        vector(transaction.id, transaction.amount, accountFraudCount, merchantRisk),
    );
    const scores = await scoreInPython(server, vectors);
    assert.deepEqual(disagreements(vectors, scores), []);
  });

  it("refuses a feature vector that comes from an ingress: there is no one to answer", async () => {
    const body = encodeToFunction({
      invocation: {
        target: { namespace: "fraud", type: "model", id: "tx-1" },
        state: [],
        invocations: [
          {
            argument: {
              typename: FeatureVectorType.typename,
              hasValue: true,
              value: FeatureVectorType.serialize(vector("tx-1", 10, 0, 0)),
            },
          },
        ],
      },
    });
    const response = await fetch(server.url, { method: "POST", body });
    assert.equal(response.status, 500);
    assert.match(await response.text(), /fraud\/model\/tx-1: a FeatureVector must come from a function to reply to/);
  });
});
