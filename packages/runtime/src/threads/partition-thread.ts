// A partition thread (a worker_threads Worker started by partition-threads.ts): one engine
// over the partitions the main thread gave it, committing through the store host
// (thread-store.ts), with the in-process functions imported here, so a function runs on the
// thread that owns its partition. Messages to partitions of other threads leave in its
// commits and come back to their owners as inbox entries (store-host.ts); the main thread
// calls into it (accept, request) with "call" messages.
import { parentPort, workerData } from "node:worker_threads";
import type { TypedValue } from "@eddy/protocol";
import { createEndpoint, type StatefulFunction } from "@eddy/sdk";
import { decodeInboxRecord } from "../cluster/inbox-record.ts";
import type { FunctionTypename } from "../core/address.ts";
import type { Catalog, FailurePolicy, FunctionSettings } from "../core/partition-core.ts";
import { type AcceptOptions, Engine } from "../engine/engine.ts";
import { InProcessInvoker } from "../invoker/in-process-invoker.ts";
import type { Answer, InboxEntry, ToHost, ToThread } from "./thread-protocol.ts";
import { ThreadStore } from "./thread-store.ts";

/** What the main thread hands a partition thread at its start. */
export interface PartitionThreadData {
  readonly stateDir: string;
  readonly partitionCount: number;
  readonly partitions: readonly number[];
  /** A module URL whose export `functions` is the in-process functions (StatefulFunction[]). */
  readonly functions: string;
  readonly failurePolicy: FailurePolicy;
  /** Handed to the functions module as is (`workerData.context`): a benchmark's shared counters. */
  readonly context?: unknown;
  /** Messages waiting in the inboxes of `partitions`, delivered before anything else. */
  readonly waiting: readonly { readonly partition: number; readonly entries: readonly InboxEntry[] }[];
}

/** StateFun's default maxNumBatchRequests (assembly/catalog.ts) for in-process functions. */
const BATCH_COUNT = 1000;
const BATCH_BYTES = 8 * 1024 * 1024;

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error("partition-thread.ts runs only as a worker thread");
  const data = workerData as PartitionThreadData;
  const imported = (await import(data.functions)) as { functions?: readonly StatefulFunction[] };
  const functions = imported.functions ?? [];
  const typenames = new Set(functions.map((fn) => fn.typename as string));
  const settings: FunctionSettings = {
    maxBatchCount: BATCH_COUNT,
    maxBatchBytes: BATCH_BYTES,
    backlogLimit: BATCH_COUNT,
    failurePolicy: data.failurePolicy,
  };
  const catalog: Catalog = {
    functionSettings: (typename: FunctionTypename) => (typenames.has(typename) ? settings : undefined),
    hasEgress: () => false,
  };
  const post = (message: ToHost, transfer?: readonly ArrayBuffer[]) => port.postMessage(message, transfer);
  const store = new ThreadStore(data.stateDir, { postMessage: post });
  const engine = new Engine({
    store,
    commitTarget: store.commitTarget(),
    catalog,
    invoker: new InProcessInvoker(createEndpoint([...functions])),
    partitionCount: data.partitionCount,
    ownedPartitions: data.partitions,
  });
  // Entries are admitted one message after another, in the order the host sent them.
  let admitting: Promise<unknown> = Promise.resolve();
  const admit = (partition: number, entries: readonly InboxEntry[]) => {
    const records = entries.map(({ offset, record }) => {
      const decoded = decodeInboxRecord(record);
      if (!decoded.ok) throw new Error(`partition ${partition}, inbox offset ${offset}: ${decoded.message}`);
      return { message: decoded.value, offset };
    });
    admitting = admitting.then(() => engine.admitFromInbox(partition, records, engine.resets));
  };
  // Recovered first (in-flight batches sent again: recover() must find no batch running), then
  // the waiting entries, before the main thread hears "ready" and sends anything else.
  engine.start();
  for (const { partition, entries } of data.waiting) admit(partition, entries);
  await admitting;

  const calls: Record<string, (...args: never[]) => Promise<unknown>> = {
    /** An ingress message (an inbox record's bytes), accepted: AcceptResult. */
    accept: async (record: Uint8Array, options: AcceptOptions) => engine.accept(decoded(record).envelope, options),
    /**
     * Messages of one type with one argument to many ids (all run here), accepted as if an
     * ingress in this thread had taken them: resolves with how many were taken once all are
     * durable. For benchmarks of the threads without a call per message from the main thread.
     */
    acceptMany: async (typename: FunctionTypename, argument: TypedValue, ids: readonly string[]) => {
      const results = await Promise.all(ids.map((id) => engine.accept({ target: { typename, id }, argument })));
      return results.filter((result) => result.ok).length;
    },
    /** Accepted, then its reply awaited up to `waitMs`: the AcceptResult and the ReplyLookup. */
    request: async (record: Uint8Array, options: AcceptOptions, waitMs: number) => {
      const accepted = await engine.accept(decoded(record).envelope, { ...options, expectReply: true });
      if (!accepted.ok || accepted.requestId === undefined) return { accepted };
      return { accepted, lookup: await engine.awaitReply(accepted.requestId, waitMs) };
    },
    stop: async () => {
      await admitting;
      await engine.stop();
      await store.close();
      return true;
    },
  };
  // Answers wait for the end of the event-loop turn and leave together (see ToThread "calls").
  let answers: Answer[] = [];
  const answer = (reply: Answer) => {
    if (answers.length === 0) setImmediate(flushAnswers);
    answers.push(reply);
  };
  const flushAnswers = () => {
    const leaving = answers;
    answers = [];
    post({ kind: "answers", answers: leaving });
  };
  port.on("message", (message: ToThread) => {
    if (store.receive(message)) return;
    if (message.kind === "inbox") admit(message.partition, message.entries);
    else if (message.kind === "calls") {
      for (const { id, method, args } of message.calls) {
        const call = calls[method] as ((...args: readonly unknown[]) => Promise<unknown>) | undefined;
        if (call === undefined) answer({ id, error: `no call ${method}` });
        else
          call(...args).then(
            (value) => answer({ id, value }),
            (error: unknown) => answer({ id, error: error instanceof Error ? error.message : String(error) }),
          );
      }
    }
  });
  post({ kind: "answers", answers: [{ id: 0, value: "ready" }] });
}

function decoded(record: Uint8Array) {
  const result = decodeInboxRecord(record);
  if (!result.ok) throw new Error(result.message);
  return result.value;
}

await main();
