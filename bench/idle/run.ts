// bench/idle: memory as idle instances grow. Idle instances should cost only their stored
// state (on disk, in LMDB), not process memory: the partition core keeps only addresses
// with a batch in flight. For each count (default 10k and 1M) of instances with ~100 B of
// state (written straight into the store, as a long-running deployment leaves them), a
// fresh process starts the engine, serves the same small workload, and reports resident
// memory: RssAnon (everything the process allocated) and RssFile (LMDB's memory-mapped
// pages, which the kernel can drop at will). Seeding runs in a process of its own too.
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createEndpoint, statefulFunction, types } from "@eddy/sdk";
import type { FunctionTypename } from "../../packages/runtime/src/core/address.ts";
import type { Catalog, FunctionSettings } from "../../packages/runtime/src/core/partition-core.ts";
import { Engine } from "../../packages/runtime/src/engine/engine.ts";
import { InProcessInvoker } from "../../packages/runtime/src/invoker/in-process-invoker.ts";
import { LoggedStore } from "../../packages/runtime/src/store/logged-store.ts";
import { runStep as runBenchStep, seedInstances } from "../instances.ts";
import { machine } from "../machine.ts";

const { values } = parseArgs({
  options: {
    json: { type: "boolean" },
    counts: { type: "string" },
    seed: { type: "string" },
    measure: { type: "string" },
    dir: { type: "string" },
  },
});
const PARTITIONS = 128;
const TYPENAME = "bench/idle" as FunctionTypename;
const Profile = types.json<{ pad: string; n: number }>("bench/Profile");

const fn = statefulFunction({
  typename: TYPENAME,
  state: { profile: Profile },
  handle(ctx) {
    const profile = ctx.storage.profile ?? { pad: "x".repeat(80), n: 0 };
    profile.n += 1;
    ctx.storage.profile = profile;
  },
});

function memoryMb(): { rssAnonMb: number; rssFileMb: number } {
  const status = readFileSync("/proc/self/status", "utf8");
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN) / 1024;
  return { rssAnonMb: Math.round(field("RssAnon")), rssFileMb: Math.round(field("RssFile")) };
}

/** Writes `instances` idle instances straight into a new store. */
function seedStore(dir: string, instances: number): Promise<void> {
  return seedInstances({
    dir,
    partitions: PARTITIONS,
    typename: TYPENAME,
    instances,
    state: { name: "profile", type: Profile, valueOf: () => ({ pad: "x".repeat(80), n: 1 }) },
  });
}

/** Starts the engine on a seeded store, runs 20,000 messages to 10,000 of the instances, reports memory. */
async function measureStore(dir: string, instances: number): Promise<{ rssAnonMb: number; rssFileMb: number }> {
  const settings: FunctionSettings = {
    maxBatchCount: 1000,
    maxBatchBytes: 8 << 20,
    backlogLimit: 0,
    failurePolicy: "retry",
  };
  const catalog: Catalog = { functionSettings: (t) => (t === TYPENAME ? settings : undefined), hasEgress: () => false };
  const engine = new Engine({
    // The runtime's store: the write-ahead log in front of LMDB (the seed went to LMDB directly).
    store: new LoggedStore({ path: dir }),
    catalog,
    invoker: new InProcessInvoker(createEndpoint([fn])),
    partitionCount: PARTITIONS,
  });
  engine.start();
  const accepted: Promise<unknown>[] = [];
  const argument = { typename: "bench/tick", hasValue: true, value: new Uint8Array(0) };
  const active = Math.min(instances, 10_000);
  for (let index = 0; index < 20_000; index++) {
    accepted.push(engine.accept({ target: { typename: TYPENAME, id: `user-${(index * 7919) % active}` }, argument }));
  }
  await Promise.all(accepted);
  while (engine.invocationsInFlight > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  // Past the store's apply interval (1 s): LMDB has taken the writes, and its page buffers count.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  (globalThis as { gc?: () => void }).gc?.();
  const memory = memoryMb();
  await engine.stop();
  return memory;
}

const runStep = (args: string[]) => runBenchStep(import.meta.filename, args, ["--expose-gc"]);

if (values.seed !== undefined) {
  await seedStore(values.dir ?? "", Number(values.seed));
} else if (values.measure !== undefined) {
  process.stdout.write(JSON.stringify(await measureStore(values.dir ?? "", Number(values.measure))));
} else {
  const rows: { instances: number; rssAnonMb: number; rssFileMb: number; diskMb: number }[] = [];
  for (const instances of (values.counts ?? "10000,1000000").split(",").map(Number)) {
    const dir = mkdtempSync(join(tmpdir(), "eddy-bench-idle-"));
    try {
      await runStep(["--seed", String(instances), "--dir", dir]);
      const memory = JSON.parse(await runStep(["--measure", String(instances), "--dir", dir])) as ReturnType<
        typeof memoryMb
      >;
      rows.push({ instances, ...memory, diskMb: Math.round(statSync(join(dir, "data.mdb")).size / 1e6) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const results = { date: new Date().toISOString(), machine: machine(), rows };
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(results)}\n`);
  } else {
    process.stdout.write(`bench/idle — ${results.date}\n`);
    process.stdout.write(
      "idle instances with ~100 B of JSON state each; 20,000 messages to 10,000 of them; one process per count\n\n",
    );
    process.stdout.write(
      "| idle instances | RssAnon MB | RssFile MB (LMDB map) | data.mdb MB |\n| -------------: | ---------: | --------------------: | ----------: |\n",
    );
    for (const row of rows) {
      process.stdout.write(
        `| ${String(row.instances).padStart(14)} | ${String(row.rssAnonMb).padStart(10)} | ${String(row.rssFileMb).padStart(21)} | ${String(row.diskMb).padStart(11)} |\n`,
      );
    }
    const first = rows[0];
    const last = rows[rows.length - 1];
    if (first !== undefined && last !== undefined && rows.length > 1) {
      const change = ((last.rssAnonMb - first.rssAnonMb) / first.rssAnonMb) * 100;
      process.stdout.write(
        `\nRssAnon from ${first.instances} to ${last.instances} idle instances: ${change >= 0 ? "+" : ""}${change.toFixed(1)}%\n`,
      );
    }
  }
}
