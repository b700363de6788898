// A partition thread's store view (src/threads/thread-store.ts): it reads LMDB and the commits
// the host confirmed, and keeps each confirmed commit readable until the host says LMDB shows
// it. A view that dropped a commit too early would read an older value: an update lost.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Worker } from "node:worker_threads";
import type { PendingWrite } from "../src/core/overlay-kv.ts";
import { LoggedStore } from "../src/store/logged-store.ts";
import { decodeWritesFrame } from "../src/store/writes-frame.ts";
import type { ToHost, ToThread } from "../src/threads/thread-protocol.ts";
import { ThreadStore } from "../src/threads/thread-store.ts";

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "eddy-thread-store-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// A row whose value is a plain number (the inbox position), not one of the record codec's records.
const key = ["p", 0, "meta", "inbox-position"];

describe("thread store", () => {
  it("reads a confirmed commit until LMDB shows it, across the host's applies", async () => {
    const dir = freshDir();
    // The host's side, played by the test: the real LoggedStore, driven by hand.
    const posted: ToHost[] = [];
    const host = new LoggedStore({ path: dir, applyIntervalMs: 60_000 });
    const thread = new ThreadStore(dir, { postMessage: (message) => posted.push(message) });
    const tell = (message: ToThread) => assert.ok(thread.receive(message));

    const commit = async (value: number) => {
      const done = thread.commit([{ key, value }]);
      const sent = posted.shift();
      assert.ok(sent?.kind === "commit");
      await host.commit(decodeWritesFrame(sent.frame) as PendingWrite[]);
      tell({ kind: "committed", id: sent.id });
      await done;
    };

    await commit(1);
    assert.equal(thread.get(key), 1, "a confirmed commit is read at once (LMDB does not have it)");
    // An apply takes it; until LMDB shows it the view still reads it.
    tell({ kind: "sealed" });
    assert.equal(thread.get(key), 1);
    await commit(2);
    assert.equal(thread.get(key), 2, "a commit after the seal is read over the sealed one");
    await host.applyAll();
    tell({ kind: "released" });
    // LMDB shows the first now; the view still has the second.
    assert.equal(thread.get(key), 2);
    tell({ kind: "sealed" });
    await host.applyAll();
    tell({ kind: "released" });
    assert.equal(thread.get(key), 2, "read from LMDB once the view dropped it");
    await thread.close();
    await host.close();
  });

  it("after the host's apply, reads in the same turn what another thread wrote to LMDB", async () => {
    const dir = freshDir();
    const host = new LoggedStore({ path: dir, applyIntervalMs: 60_000 });
    await host.commit([{ key, value: 1 }]);
    await host.applyAll();
    const flag = new SharedArrayBuffer(4);
    const signal = new Int32Array(flag);
    const reader = new Worker(new URL("./fixtures/thread-store-reader.ts", import.meta.url), {
      workerData: { path: dir, key, flag },
    });
    const read = new Promise<{ before: unknown; after: unknown }>((resolve, reject) => {
      reader.once("message", resolve);
      reader.once("error", reject);
    });
    // The reader holds a snapshot in which the key is 1; then the host writes 2 to LMDB.
    while (Atomics.load(signal, 0) !== 1) await new Promise((resume) => setTimeout(resume, 1));
    await host.commit([{ key, value: 2 }]);
    await host.applyAll();
    Atomics.store(signal, 0, 2);
    Atomics.notify(signal, 0);
    assert.deepEqual(await read, { before: 1, after: 2 }, "a read after released sees what LMDB holds now");
    await reader.terminate();
    await host.close();
  });

  it("refuses a confirmation of a commit it did not send", () => {
    const dir = freshDir();
    const thread = new ThreadStore(dir, { postMessage: () => {} });
    assert.throws(() => thread.receive({ kind: "committed", id: 7 }), /commit 7, which is not in flight/);
    return thread.close();
  });
});
