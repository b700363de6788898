// A replayable source's messages and its position enter the store in one commit
// (Engine.acceptFromSource): a source that resumes from the stored position after a
// restart delivers every record exactly once; a batch to an unknown function is refused
// whole, position and all.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createEndpoint, statefulFunction, types } from "@eddy/sdk";
import type { FunctionTypename } from "../src/core/address.ts";
import type { Key } from "../src/core/kv.ts";
import type { Catalog, FunctionSettings } from "../src/core/partition-core.ts";
import { Engine } from "../src/engine/engine.ts";
import { InProcessInvoker } from "../src/invoker/in-process-invoker.ts";
import { LoggedStore } from "../src/store/logged-store.ts";

const root = mkdtempSync(join(tmpdir(), "eddy-source-"));
after(() => rmSync(root, { recursive: true, force: true }));

const TYPENAME = "test/counter" as FunctionTypename;
const settings: FunctionSettings = {
  maxBatchCount: 100,
  maxBatchBytes: 1 << 20,
  backlogLimit: 1000,
  failurePolicy: "retry",
};
const catalog: Catalog = { functionSettings: (t) => (t === TYPENAME ? settings : undefined), hasEgress: () => false };
/** Per instance, the record numbers it received, in order. */
const Seen = types.json<number[]>("test/Seen");
const counter = statefulFunction({
  typename: TYPENAME,
  state: { seen: Seen },
  handle(ctx, msg) {
    ctx.storage.seen = [...(ctx.storage.seen ?? []), Number(msg.as(types.string))];
  },
});
const POSITION: Key = ["source", "test", "next"];

function start(dir: string) {
  const store = new LoggedStore({ path: dir, applyIntervalMs: 5 });
  const engine = new Engine({
    store,
    catalog,
    invoker: new InProcessInvoker(createEndpoint([counter])),
    partitionCount: 4,
  });
  engine.start();
  return { store, engine };
}

/** Reads records from the stored position on, `batch` at a time, until `stopAt`. */
async function replay(engine: Engine, store: LoggedStore, total: number, batch: number, stopAt = total): Promise<void> {
  let next = (store.get(POSITION) as number | undefined) ?? 0;
  while (next < stopAt) {
    const end = Math.min(next + batch, stopAt);
    const envelopes = [];
    for (let record = next; record < end; record++) {
      envelopes.push({
        target: { typename: TYPENAME, id: `i${record % 7}` },
        argument: { typename: types.string.typename, hasValue: true, value: types.string.serialize(String(record)) },
      });
    }
    const result = await engine.acceptFromSource(envelopes, (transaction) => transaction.put(POSITION, end));
    assert.ok(result.ok);
    next = end;
  }
}

async function settle(engine: Engine): Promise<void> {
  while (engine.invocationsInFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  await new Promise((resolve) => setTimeout(resolve, 20));
}

function seenBy(store: LoggedStore): number[][] {
  return Array.from({ length: 7 }, (_, instance) => {
    for (const { key, value } of store.scan([])) {
      if (key.includes(`i${instance}`) && key.includes("seen")) {
        const stored = value as { value: Uint8Array };
        return Seen.deserialize(stored.value);
      }
    }
    return [];
  });
}

describe("a replayable source", () => {
  it("resumes after a restart right after what the store holds: every record once, in order per instance", async () => {
    const dir = join(root, "resume");
    const first = start(dir);
    await replay(first.engine, first.store, 500, 37, 260);
    await first.engine.stop();
    const second = start(dir);
    assert.equal(second.store.get(POSITION), 260, "the position committed with the last batch");
    await replay(second.engine, second.store, 500, 37);
    await settle(second.engine);
    const seen = seenBy(second.store);
    for (let instance = 0; instance < 7; instance++) {
      const expected = Array.from({ length: 500 }, (_, record) => record).filter((record) => record % 7 === instance);
      assert.deepEqual(seen[instance], expected, `instance i${instance}`);
    }
    await second.engine.stop();
  });

  it("refuses a batch with a target no function serves, whole: no message and no position", async () => {
    const dir = join(root, "unknown");
    const { store, engine } = start(dir);
    const result = await engine.acceptFromSource(
      [
        {
          target: { typename: TYPENAME, id: "a" },
          argument: { typename: "t", hasValue: true, value: new Uint8Array() },
        },
        {
          target: { typename: "test/nobody" as FunctionTypename, id: "a" },
          argument: { typename: "t", hasValue: true, value: new Uint8Array() },
        },
      ],
      (transaction) => transaction.put(POSITION, 2),
    );
    assert.deepEqual(result, {
      ok: false,
      code: "unknown-function",
      message: "unknown function type test/nobody: no endpoint in the module serves it",
    });
    await settle(engine);
    assert.equal(store.get(POSITION), undefined);
    assert.deepEqual(seenBy(store), [[], [], [], [], [], [], []]);
    await engine.stop();
  });
});
