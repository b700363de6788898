// bench/checkpoint: incremental checkpoints at scale (issue 5).
//
// 1. 1,000,000 instances with ~100 B of state each (seeded into the store as a long-running
//    deployment leaves them); the runtime's engine runs on them with in-process functions.
//    A base checkpoint to a directory store, then rounds in which 1% of the instances (10,000)
//    change, each followed by a checkpoint: bytes uploaded against the bytes of state that
//    changed, and the checkpoint's duration.
// 2. The throughput dip: messages flow at full speed (256 senders, 10,000 instances) while a
//    delta checkpoint, and then a base checkpoint, is taken; messages/s in 100 ms windows
//    before and during each.
// 3. Restore: ~1 GB of state (500,000 instances of ~1 KB: LMDB ~1 GB) checkpointed to the directory
//    store, then restored into an empty state directory, timed.
//
//   node bench/checkpoint/run.ts [--instances 1000000] [--restore-instances 500000] [--json]
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createEndpoint, statefulFunction, types } from "@eddy/sdk";
import { DirectoryBlobStore } from "../../packages/runtime/src/checkpoint/blob/directory-blob-store.ts";
import type { WrittenCheckpoint } from "../../packages/runtime/src/checkpoint/checkpoint-writer.ts";
import { Checkpointer } from "../../packages/runtime/src/checkpoint/checkpointer.ts";
import { restoreCheckpoint } from "../../packages/runtime/src/checkpoint/restore.ts";
import { addressKey, type FunctionTypename } from "../../packages/runtime/src/core/address.ts";
import type { Catalog, FunctionSettings } from "../../packages/runtime/src/core/partition-core.ts";
import { partitionOf } from "../../packages/runtime/src/core/partitioning.ts";
import { keys, type StoredState } from "../../packages/runtime/src/core/records.ts";
import { Engine } from "../../packages/runtime/src/engine/engine.ts";
import { InProcessInvoker } from "../../packages/runtime/src/invoker/in-process-invoker.ts";
import { NOOP_LOGGER } from "../../packages/runtime/src/observe/logger.ts";
import { LoggedStore } from "../../packages/runtime/src/store/logged-store.ts";
import { runStep as runBenchStep, seedInstances } from "../instances.ts";
import { machine } from "../machine.ts";

const { values } = parseArgs({
  options: {
    json: { type: "boolean" },
    instances: { type: "string" },
    "restore-instances": { type: "string" },
    /** Uploads at a time (the runtime's default is 4). */
    concurrency: { type: "string" },
    rounds: { type: "string" },
    /** Child modes. */
    seed: { type: "string" },
    "pad-bytes": { type: "string" },
    dir: { type: "string" },
    phase: { type: "string" },
    blobs: { type: "string" },
  },
});
const PARTITIONS = 128;
const TYPENAME = "bench/checkpointed" as FunctionTypename;
const Profile = types.json<{ pad: string; n: number }>("bench/Profile");

function pad(index: number, bytes: number): string {
  // Varied text, as real state is: compresses somewhat, not to nothing.
  let text = "";
  let x = Math.imul(index + 1, 2654435761) >>> 0;
  while (text.length < bytes) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    text += x.toString(36);
  }
  return text.slice(0, bytes);
}

/** Messages the function has handled (in this process). */
let handled = 0;

const fn = statefulFunction({
  typename: TYPENAME,
  state: { profile: Profile },
  handle(ctx) {
    handled++;
    const profile = ctx.storage.profile ?? { pad: "x".repeat(80), n: 0 };
    profile.n += 1;
    ctx.storage.profile = profile;
  },
});

/** Writes `instances` instances with `padBytes` of text in their state straight into a new store. */
function seedStore(dir: string, instances: number, padBytes: number): Promise<void> {
  return seedInstances({
    dir,
    partitions: PARTITIONS,
    typename: TYPENAME,
    instances,
    state: { name: "profile", type: Profile, valueOf: (index) => ({ pad: pad(index, padBytes), n: 1 }) },
  });
}

const mb = (bytes: number) => bytes / 1e6;

function startEngine(dir: string, blobsDir: string) {
  const settings: FunctionSettings = {
    maxBatchCount: 1000,
    maxBatchBytes: 8 << 20,
    backlogLimit: 0,
    failurePolicy: "retry",
  };
  const catalog: Catalog = { functionSettings: (t) => (t === TYPENAME ? settings : undefined), hasEgress: () => false };
  const store = new LoggedStore({ path: dir });
  const engine = new Engine({
    store,
    catalog,
    invoker: new InProcessInvoker(createEndpoint([fn])),
    partitionCount: PARTITIONS,
  });
  engine.start();
  const checkpointer = new Checkpointer({
    store,
    blobs: new DirectoryBlobStore(blobsDir),
    partitionCount: PARTITIONS,
    intervalMs: 0,
    keep: 100,
    ...(values.concurrency === undefined ? {} : { concurrency: Number(values.concurrency) }),
    log: NOOP_LOGGER,
  });
  return { store, engine, checkpointer };
}

const argument = { typename: "bench/tick", hasValue: true, value: new Uint8Array(0) };

async function settle(engine: Engine): Promise<void> {
  while (engine.invocationsInFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
}

async function timed(take: () => Promise<WrittenCheckpoint | undefined>) {
  const started = performance.now();
  const written = await take();
  if (written === undefined) throw new Error("no checkpoint taken");
  return {
    ms: Math.round(performance.now() - started),
    uploadedMb: Number(mb(written.uploadedBytes).toFixed(2)),
    rawMb: Number(mb(written.rawBytes).toFixed(2)),
    deltas: written.manifest.deltas.length,
  };
}

/** Phases 1 and 2 in one process: the engine on the seeded 1M instances. */
async function incremental(dir: string, blobsDir: string, instances: number, rounds: number) {
  const { store, engine, checkpointer } = startEngine(dir, blobsDir);
  const base = await timed(() => checkpointer.checkpoint());
  // What one changed instance's state weighs in the store: its key and its value.
  const sample = { typename: TYPENAME, id: "user-1" };
  const stateKey = ["p", partitionOf(addressKey(sample), PARTITIONS), ...keys.state(sample, "profile")];
  const stored = store.get(stateKey) as StoredState;
  const rowBytes = JSON.stringify(stateKey).length + stored.value.length + stored.typename.length + 16;
  const changedCount = Math.round(instances / 100);
  const deltas = [];
  for (let round = 0; round < rounds; round++) {
    const accepted: Promise<unknown>[] = [];
    for (let index = 0; index < changedCount; index++) {
      // A different 1% each round, spread over the whole key space.
      const id = `user-${(index * 100 + round * 7) % instances}`;
      accepted.push(engine.accept({ target: { typename: TYPENAME, id }, argument }));
    }
    await Promise.all(accepted);
    await settle(engine);
    const changedMb = mb(changedCount * rowBytes);
    const result = await timed(() => checkpointer.checkpoint());
    deltas.push({
      ...result,
      changedMb: Number(changedMb.toFixed(2)),
      ratio: Number((result.uploadedMb / changedMb).toFixed(2)),
    });
  }

  // The dip: 256 senders over 10,000 instances, at most 4,096 messages accepted but not yet
  // handled; throughput is messages handled by the function per 100 ms window.
  const windowMs = 100;
  let accepted = 0;
  let running = true;
  const loop = async (lane: number) => {
    let n = lane;
    while (running) {
      if (accepted - handled > 4096) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      n += 256;
      accepted++;
      await engine.accept({ target: { typename: TYPENAME, id: `user-${(n * 97) % 10_000}` }, argument });
    }
  };
  const windows: number[] = [];
  let last = handled;
  const sampler = setInterval(() => {
    windows.push(((handled - last) * 1000) / windowMs);
    last = handled;
  }, windowMs);
  const lanes = Array.from({ length: 256 }, (_, lane) => loop(lane));
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  await pause(3000);
  const steadyWindows = windows.length;
  const deltaStart = windows.length;
  const deltaUnderLoad = await timed(() => checkpointer.checkpoint());
  const deltaEnd = windows.length;
  await pause(2000);
  const baseStart = windows.length;
  const baseUnderLoad = await timed(() => checkpointer.checkpoint({ forceBase: true }));
  const baseEnd = windows.length;
  await pause(1000);
  running = false;
  clearInterval(sampler);
  await Promise.all(lanes);
  await settle(engine);
  const median = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] ?? 0;
  };
  const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
  const steady = median(windows.slice(5, steadyWindows));
  const during = (from: number, to: number) => {
    const slice = windows.slice(from, Math.max(to, from + 1));
    return { meanPerS: Math.round(mean(slice)), minPerS: Math.round(Math.min(...slice)), windows: slice.length };
  };
  await checkpointer.close();
  await engine.stop();
  return {
    instances,
    stateMb: Number(mb(statSync(join(dir, "data.mdb")).size).toFixed(1)),
    base,
    deltas,
    dip: {
      steadyPerS: Math.round(steady),
      delta: { ...deltaUnderLoad, ...during(deltaStart, deltaEnd) },
      base: { ...baseUnderLoad, ...during(baseStart, baseEnd) },
    },
  };
}

/** Phase 3: checkpoint ~1 GB of state, then restore it into an empty directory. */
async function restore(dir: string, blobsDir: string) {
  const store = new LoggedStore({ path: dir });
  const checkpointer = new Checkpointer({
    store,
    blobs: new DirectoryBlobStore(blobsDir),
    partitionCount: PARTITIONS,
    intervalMs: 0,
    log: NOOP_LOGGER,
  });
  // A commit after the seed, so there is something to checkpoint.
  await store.commit([{ key: ["bench", "marker"], value: 1 }]);
  const checkpoint = await timed(() => checkpointer.checkpoint());
  await checkpointer.close();
  await store.close();
  const target = `${dir}-restored`;
  const started = performance.now();
  const result = await restoreCheckpoint({
    store: new DirectoryBlobStore(blobsDir),
    stateDir: target,
    log: NOOP_LOGGER,
  });
  const ms = Math.round(performance.now() - started);
  if (!result.ok) throw new Error(result.error);
  const restoredMb = mb(statSync(join(target, "data.mdb")).size);
  rmSync(target, { recursive: true, force: true });
  return {
    stateMb: Number(restoredMb.toFixed(1)),
    checkpoint,
    restoreMs: ms,
    restoreMbPerS: Math.round(restoredMb / (ms / 1000)),
  };
}

const runStep = (args: string[]) => runBenchStep(import.meta.filename, args);

if (values.seed !== undefined) {
  await seedStore(values.dir ?? "", Number(values.seed), Number(values["pad-bytes"] ?? 80));
} else if (values.phase === "incremental") {
  process.stdout.write(
    JSON.stringify(
      await incremental(values.dir ?? "", values.blobs ?? "", Number(values.instances), Number(values.rounds ?? 3)),
    ),
  );
} else if (values.phase === "restore") {
  process.stdout.write(JSON.stringify(await restore(values.dir ?? "", values.blobs ?? "")));
} else {
  const instances = Number(values.instances ?? 1_000_000);
  const restoreInstances = Number(values["restore-instances"] ?? 500_000);
  const root = mkdtempSync(join(tmpdir(), "eddy-bench-checkpoint-"));
  try {
    const dir = join(root, "state");
    const blobs = join(root, "blobs");
    mkdirSync(blobs);
    await runStep(["--seed", String(instances), "--pad-bytes", "80", "--dir", dir]);
    const incrementalResult = JSON.parse(
      await runStep([
        "--phase",
        "incremental",
        "--instances",
        String(instances),
        "--rounds",
        values.rounds ?? "3",
        "--dir",
        dir,
        "--blobs",
        blobs,
        ...(values.concurrency === undefined ? [] : ["--concurrency", values.concurrency]),
      ]),
    ) as Awaited<ReturnType<typeof incremental>>;
    rmSync(root, { recursive: true, force: true });
    mkdirSync(blobs, { recursive: true });
    await runStep(["--seed", String(restoreInstances), "--pad-bytes", "950", "--dir", dir]);
    const restoreResult = JSON.parse(await runStep(["--phase", "restore", "--dir", dir, "--blobs", blobs])) as Awaited<
      ReturnType<typeof restore>
    >;
    const results = {
      date: new Date().toISOString(),
      machine: machine(),
      incremental: incrementalResult,
      restore: restoreResult,
    };
    if (values.json === true) process.stdout.write(`${JSON.stringify(results)}\n`);
    else printReport(results);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function printReport(results: {
  date: string;
  incremental: Awaited<ReturnType<typeof incremental>>;
  restore: Awaited<ReturnType<typeof restore>>;
}): void {
  const { incremental: inc, restore: res } = results;
  const out = (line = "") => process.stdout.write(`${line}\n`);
  out(`bench/checkpoint — ${results.date}`);
  out(
    `${inc.instances.toLocaleString("en")} instances, ~100 B of state each (LMDB ${inc.stateMb} MB); directory blob store on the same disk`,
  );
  out();
  out(
    "| checkpoint | duration ms | uploaded MB (zstd) | before compression MB | state changed MB | uploaded / changed |",
  );
  out("| :-- | --: | --: | --: | --: | --: |");
  out(`| base | ${inc.base.ms} | ${inc.base.uploadedMb} | ${inc.base.rawMb} | (all) | |`);
  for (const [index, delta] of inc.deltas.entries()) {
    out(
      `| delta ${index + 1} (1% changed) | ${delta.ms} | ${delta.uploadedMb} | ${delta.rawMb} | ${delta.changedMb} | ${delta.ratio}× |`,
    );
  }
  out();
  out(
    "Throughput while checkpointing (messages handled per 100 ms window; 256 senders, 10,000 instances, at most 4,096 waiting):",
  );
  out(`- steady: ${inc.dip.steadyPerS.toLocaleString("en")} msg/s (median)`);
  for (const kind of ["delta", "base"] as const) {
    const d = inc.dip[kind];
    out(
      `- during a ${kind} checkpoint (${d.ms} ms, ${d.uploadedMb} MB): mean ${d.meanPerS.toLocaleString("en")} msg/s (${Math.round((100 * d.meanPerS) / Math.max(inc.dip.steadyPerS, 1))}% of steady), lowest window ${d.minPerS.toLocaleString("en")}`,
    );
  }
  out();
  out(
    `Restore: ${res.stateMb} MB of state (checkpoint ${res.checkpoint.uploadedMb} MB stored, taken in ${res.checkpoint.ms} ms) restored from the directory store into an empty state directory in ${res.restoreMs} ms (${res.restoreMbPerS} MB/s)`,
  );
}
