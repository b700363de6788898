// What bench/idle and bench/checkpoint share: seeding a store with many idle instances of
// one function (as a long-running deployment leaves them), and running a step of a
// benchmark in a fresh Node process (so each measures its own memory and CPU).
import { fork } from "node:child_process";
import type { Type } from "@eddy/sdk";
import { addressKey, type FunctionTypename } from "../packages/runtime/src/core/address.ts";
import type { PendingWrite } from "../packages/runtime/src/core/overlay-kv.ts";
import { partitionOf } from "../packages/runtime/src/core/partitioning.ts";
import type { RegisteredSpec, StoredState } from "../packages/runtime/src/core/records.ts";
import { inPartition, rowWrite, storeTables, tables } from "../packages/runtime/src/core/schema.ts";
import { LmdbStore } from "../packages/runtime/src/store/lmdb-store.ts";

export interface SeedOptions<T> {
  readonly dir: string;
  readonly partitions: number;
  readonly typename: FunctionTypename;
  readonly instances: number;
  /** The function's one state: its name, its type, and instance `index`'s value (id `user-<index>`). */
  readonly state: { readonly name: string; readonly type: Type<T>; readonly valueOf: (index: number) => T };
}

/** Writes the instances straight into a new store, with the partition count and the state's spec registered. */
export async function seedInstances<T>(options: SeedOptions<T>): Promise<void> {
  const { typename, partitions, state } = options;
  const store = new LmdbStore({ path: options.dir });
  const spec: RegisteredSpec = { name: state.name, typename: state.type.typename, expiryMode: 0, expireAfterMs: 0 };
  const meta: PendingWrite[] = [rowWrite(storeTables.partitionCount.key(), partitions)];
  for (let partition = 0; partition < partitions; partition++) {
    meta.push(rowWrite(inPartition(partition, tables.specs.key(typename)), [spec]));
  }
  await store.commit(meta);
  for (let start = 0; start < options.instances; start += 20_000) {
    const writes: PendingWrite[] = [];
    for (let index = start; index < Math.min(start + 20_000, options.instances); index++) {
      const address = { typename, id: `user-${index}` };
      const value = state.type.serialize(state.valueOf(index));
      const stored: StoredState = { typename: state.type.typename, value, writtenAtMs: 0, invokedAtMs: 0 };
      const partition = partitionOf(addressKey(address), partitions);
      writes.push(rowWrite(inPartition(partition, tables.state.key(typename, address.id, state.name)), stored));
    }
    await store.commit(writes);
  }
  await store.close();
}

/** Runs `script` with `args` in a child Node process; resolves with what it printed. */
export function runStep(script: string, args: readonly string[], execArgv: readonly string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = fork(script, [...args], { stdio: ["ignore", "pipe", "inherit", "ipc"], execArgv: [...execArgv] });
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on("exit", (code) =>
      code === 0 ? resolve(output) : reject(new Error(`${script} ${args.join(" ")} exited ${code}`)),
    );
  });
}
