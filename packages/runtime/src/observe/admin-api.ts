// The admin API under /v1/ (docs/admin-api.md; described by openapi.ts): what an operator, the
// web UI and the CLI ask a running Eddy. Each route is a method, an OpenAPI path template and
// a handler; the table below is the one list the server matches, the OpenAPI document is made
// from, and the tests walk. Handlers answer values ({status, body}); every refusal is
// `{code, message}` naming what was wrong. Operator writes (state, pauses, dead letters) go
// through the engine's transaction and are durable before they are answered. In a cluster each
// route's `cluster` scope says which workers answer it (cluster-admin.ts).
import type { TypedValue } from "@eddy/protocol";
import type { Address, FunctionTypename } from "../core/address.ts";
import { type DeadLetter, deadLetterId, parseDeadLetterId } from "../core/records.ts";
import { deadLetterToJson, sortDeadLetters } from "../dead-letters.ts";
import type { DeadLetterReplay, Engine, OperatorRefusal } from "../engine/engine.ts";
import type { AdminPeers, ClusterScope } from "./cluster-admin.ts";
import {
  mergeDeadLetterPages,
  mergeFunctionTypeLists,
  mergeFunctionTypes,
  mergeOverviews,
  mergeStateIdPages,
  mergeStats,
} from "./cluster-merge.ts";
import type { LiveStats } from "./live-stats.ts";
import { showValue, valueBytes } from "./state-values.ts";

/** How a function type is reached. */
export type FunctionEndpointInfo = { readonly kind: "http"; readonly url: string } | { readonly kind: "in-process" };

export interface CheckpointListing {
  readonly id: string;
  readonly kind: "checkpoint" | "savepoint";
  readonly name?: string;
  readonly seq: number;
  readonly createdAt: string;
  readonly bytes: number;
}

/** The checkpoints of a runtime started with --checkpoints. */
export interface CheckpointControl {
  list(): Promise<readonly CheckpointListing[]>;
  /** Takes a checkpoint (or, with a name, a savepoint) now; the JSON answer. */
  take(savepointName?: string): Promise<Record<string, unknown>>;
  readonly latest: () => { readonly id: string; readonly seq: number; readonly createdAt: string } | undefined;
}

/**
 * A savepoint of a whole cluster in the checkpoint store, as GET /v1/checkpoints lists it on a
 * worker: no `seq` (each partition committed up to its own point of the cut), the cluster's
 * generation and how much it holds instead.
 */
export interface ClusterSavepointListing {
  readonly id: string;
  readonly kind: "savepoint";
  readonly name: string;
  readonly createdAt: string;
  readonly bytes: number;
  readonly cluster: string;
  readonly generation: number;
  readonly partitions: number;
  readonly rows: number;
  /** The messages that were waiting in the partitions' inboxes. */
  readonly inboxRecords: number;
}

/** A cluster worker's savepoints: taking one of the whole cluster, and this worker's part in one. */
export interface ClusterSavepointControl {
  /** The cluster savepoints in the checkpoint store (of any cluster that shares it), newest first. */
  list(): Promise<readonly ClusterSavepointListing[]>;
  /** Takes a savepoint of the cluster now, asking every worker (cluster/savepoint-coordinator.ts). */
  take(name: string): Promise<AdminReply>;
  /** This worker's part in a savepoint another worker takes: `phase` is hold, capture or release. */
  phase(phase: string, body: Record<string, unknown>): Promise<AdminReply>;
}

/** The running runtime, as the admin API sees it. */
export interface AdminRuntime {
  readonly mode: "embedded" | "cluster";
  readonly startedAtMs: number;
  readonly engine: Engine;
  readonly partitionCount: number;
  readonly stats: LiveStats;
  /** The types the module names one by one, and the in-process ones. */
  readonly declaredTypes: () => readonly string[];
  readonly endpointOf: (typename: string) => FunctionEndpointInfo | undefined;
  readonly checkpoints: CheckpointControl | undefined;
  readonly stateBytesOnDisk: () => number;
  readonly kafkaLagMessages: () => Promise<number>;
  /** In a cluster: the other workers, whom the API asks for what their partitions hold. */
  readonly peers?: AdminPeers | undefined;
  /** In a cluster with a checkpoint store: savepoints of the whole cluster. */
  readonly clusterSavepoints?: ClusterSavepointControl | undefined;
}

export interface AdminReply {
  readonly status: number;
  readonly body: unknown;
}

export interface AdminCall {
  readonly runtime: AdminRuntime;
  /** The path's parameters, percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The request's body as a JSON object; throws AdminRefusal when it is not one. */
  readonly body: () => Promise<Record<string, unknown>>;
}

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

export interface AdminRoute {
  readonly method: HttpMethod;
  /** An OpenAPI path template: `{name}` matches one path segment. */
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  readonly handle: (call: AdminCall) => Promise<AdminReply> | AdminReply;
  /** Who answers in a cluster; without one, the worker asked, for itself. */
  readonly cluster?: ClusterScope;
}

/** A refusal thrown inside a handler (bad input found deep in parsing): answered as `{code, message}`. */
export class AdminRefusal extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function refusal(status: number, code: string, message: string): AdminReply {
  return { status, body: { code, message } };
}

const ok = (body: unknown): AdminReply => ({ status: 200, body });

/**
 * Why a cluster's worker takes no checkpoint on demand: its partitions are snapshotted by their
 * owners every --checkpoint-interval (a savepoint is the cluster's consistent cut on demand).
 */
function clusterCheckpointRefusal(): AdminReply {
  return refusal(
    409,
    "not-in-cluster-mode",
    "a cluster takes no checkpoint on demand: each worker snapshots the partitions it runs every --checkpoint-interval; take a savepoint of the whole cluster with POST /v1/savepoints",
  );
}

/** How long a state write waits for the address's batch in flight to finish. */
const STATE_WRITE_WAIT_MS = 10_000;
const PAGE_LIMIT_DEFAULT = 50;
const PAGE_LIMIT_MAX = 1000;

function pageLimit(query: URLSearchParams): number {
  const given = query.get("limit");
  if (given === null) return PAGE_LIMIT_DEFAULT;
  const limit = Number(given);
  if (!Number.isInteger(limit) || limit < 1 || limit > PAGE_LIMIT_MAX) {
    throw new AdminRefusal(400, "bad-request", `limit=${given}: give a whole number from 1 to ${PAGE_LIMIT_MAX}`);
  }
  return limit;
}

function typenameOf(params: Readonly<Record<string, string>>): FunctionTypename {
  const { namespace = "", type = "" } = params;
  if (namespace === "" || type === "" || namespace.includes("/") || type.includes("/")) {
    throw new AdminRefusal(
      400,
      "bad-request",
      `"${namespace}/${type}" is not a function type: give namespace/type, each non-empty and without "/"`,
    );
  }
  return `${namespace}/${type}` as FunctionTypename;
}

function addressOf(params: Readonly<Record<string, string>>): Address {
  const typename = typenameOf(params);
  const id = params.id ?? "";
  if (id === "") throw new AdminRefusal(400, "bad-request", `the address of ${typename} has an empty id`);
  return { typename, id };
}

/** Refuses a type no endpoint serves (a typo names nothing, and says so). */
function servedType(runtime: AdminRuntime, typename: FunctionTypename): void {
  if (runtime.endpointOf(typename) === undefined) {
    throw new AdminRefusal(
      404,
      "unknown-function-type",
      `no endpoint of the module serves function type ${typename} (GET /v1/function-types lists those that are)`,
    );
  }
}

function operatorRefusal(refused: OperatorRefusal): AdminReply {
  return refused.code === "stopping"
    ? refusal(409, "stopping", refused.message)
    : refusal(503, "commit-aborted", refused.message);
}

// ---- function types ----

function functionTypeBody(
  runtime: AdminRuntime,
  typename: string,
  loads: ReadonlyMap<string, { backlog: number; inFlight: number }>,
) {
  const { stats, latencyMs } = runtime.stats.functionType(typename);
  const load = loads.get(typename) ?? { backlog: 0, inFlight: 0 };
  const status =
    stats.lastFailureAtMs !== null && (stats.lastSuccessAtMs === null || stats.lastFailureAtMs > stats.lastSuccessAtMs)
      ? "failing"
      : stats.lastSuccessAtMs === null
        ? "idle"
        : "ok";
  return {
    typename,
    endpoint: runtime.endpointOf(typename) ?? null,
    paused: runtime.engine.isPaused(typename as FunctionTypename),
    backlog: load.backlog,
    inFlight: load.inFlight,
    invocations: stats.invocations,
    failures: stats.failures,
    deadLetters: stats.deadLetters,
    health: {
      status,
      lastSuccessAtMs: stats.lastSuccessAtMs,
      lastFailureAtMs: stats.lastFailureAtMs,
      lastError: stats.lastError,
      latencyMs,
    },
  };
}

/** Every type worth listing: declared, or seen working (a pattern endpoint's types once used). */
function knownTypes(runtime: AdminRuntime, loads: ReadonlyMap<string, unknown>): string[] {
  const names = new Set([...runtime.declaredTypes(), ...runtime.stats.typenames, ...loads.keys()]);
  return [...names].filter((name) => runtime.endpointOf(name) !== undefined).sort();
}

async function pauseOrResume(call: AdminCall, paused: boolean): Promise<AdminReply> {
  const typename = typenameOf(call.params);
  servedType(call.runtime, typename);
  const refused = await call.runtime.engine.setPaused(typename, paused);
  if (refused !== undefined) return operatorRefusal(refused);
  return ok(functionTypeBody(call.runtime, typename, call.runtime.engine.functionTypeLoads()));
}

// ---- state ----

function stateBody(runtime: AdminRuntime, address: Address) {
  const view = runtime.engine.addressView(address);
  if (view === undefined) {
    throw new AdminRefusal(
      409,
      "not-owner",
      `the partition of ${address.typename}/${address.id} is run by another worker`,
    );
  }
  const state: Record<string, unknown> = {};
  for (const [name, stored] of [...view.states].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const shown = showValue(stored.typename, stored.value);
    state[name] = {
      typename: stored.typename,
      value: shown.value,
      encoding: shown.encoding,
      writtenAtMs: stored.writtenAtMs,
    };
  }
  const slash = address.typename.indexOf("/");
  const { batch } = view.load;
  return {
    address: { namespace: address.typename.slice(0, slash), type: address.typename.slice(slash + 1), id: address.id },
    partition: view.partition,
    state,
    backlog: view.load.backlog,
    inFlight:
      batch === undefined ? null : { messages: batch.messages, failedAttempts: batch.failedAttempts, sent: batch.sent },
    delayedMessages: view.load.delayedMessages,
  };
}

async function writeState(call: AdminCall, remove: boolean): Promise<AdminReply> {
  const address = addressOf(call.params);
  servedType(call.runtime, address.typename);
  const name = call.params.name ?? "";
  const engine = call.runtime.engine;
  const spec = engine.registeredStates(address.typename).find((known) => known.name === name);
  if (spec === undefined) {
    const known = engine.registeredStates(address.typename).map((known) => known.name);
    return refusal(
      404,
      "unknown-state",
      `${address.typename} has declared no state "${name}"${known.length === 0 ? " (it has declared none yet: it declares them at its first invocation)" : ` (its states: ${known.join(", ")})`}`,
    );
  }
  let value: TypedValue | undefined;
  if (!remove) {
    const body = await call.body();
    if (body.typename !== undefined && body.typename !== spec.typename) {
      return refusal(
        400,
        "value-type-mismatch",
        `state "${name}" of ${address.typename} holds ${spec.typename}, not ${String(body.typename)}`,
      );
    }
    const read = valueBytes(spec.typename, body);
    if (!read.ok) return refusal(400, "value-type-mismatch", `state "${name}" (${spec.typename}): ${read.message}`);
    value = { typename: spec.typename, hasValue: true, value: read.bytes };
  }
  const written = await engine.writeState(address, name, value, STATE_WRITE_WAIT_MS);
  if (!written.ok) {
    switch (written.code) {
      case "stopping":
      case "commit-aborted":
        return operatorRefusal(written);
      case "not-owner":
        return refusal(409, "not-owner", written.message);
      case "busy":
        return refusal(
          503,
          "busy",
          `${address.typename}/${address.id} kept a batch in flight for ${STATE_WRITE_WAIT_MS} ms; try again`,
        );
      case "unknown-state":
        return refusal(404, "unknown-state", `${address.typename} has declared no state "${name}"`);
      case "type-mismatch":
        return refusal(400, "value-type-mismatch", `state "${name}" holds ${written.typename}`);
    }
  }
  if (remove) return ok({ deleted: written.existed });
  const stored = stateBody(call.runtime, address).state[name];
  return ok(stored);
}

// ---- dead letters ----

interface NamedLetter {
  readonly id: string;
  readonly partition: number;
  readonly letter: DeadLetter;
}

function allLetters(engine: Engine): NamedLetter[] {
  return sortDeadLetters(
    engine
      .deadLetters()
      .map(({ partition, letter }) => ({ id: deadLetterId(partition, letter.seq), partition, letter })),
  );
}

function letterSummary({ id, partition, letter }: NamedLetter) {
  return {
    id,
    partition,
    atMs: letter.atMs,
    target: { typename: letter.target.typename, id: letter.target.id },
    reason: letter.reason,
    messages: letter.invocations.length,
    ...(letter.egress === undefined ? {} : { egress: letter.egress }),
    ...(letter.ingress === undefined ? {} : { ingress: letter.ingress }),
    replayable: letter.ingress === undefined,
  };
}

function letterKey(id: string): { partition: number; seq: number } {
  const key = parseDeadLetterId(id);
  if (key === undefined) {
    throw new AdminRefusal(
      400,
      "bad-request",
      `"${id}" is not a dead letter id (such as 0-1-1: partition, epoch, count)`,
    );
  }
  return key;
}

/**
 * Where a page of dead letters ends: the last letter's time and id. A position, not only an
 * id, so the next page is found even when that letter was replayed or discarded meanwhile.
 */
function letterCursor({ id, letter }: NamedLetter): string {
  return `${letter.atMs}~${id}`;
}

function parseLetterCursor(cursor: string): { atMs: number; partition: number; seq: number } {
  const match = /^(\d{1,16})~(.+)$/.exec(cursor);
  const key = match === null ? undefined : parseDeadLetterId(match[2] as string);
  if (match === null || key === undefined) {
    throw new AdminRefusal(400, "bad-request", `after=${cursor}: give the "next" of the page before`);
  }
  return { atMs: Number(match[1]), ...key };
}

/** The ids a bulk action names: `{"ids": [...]}` or `{"all": true}`. */
async function selection(call: AdminCall): Promise<"all" | { partition: number; seq: number }[]> {
  return selectionOf(await call.body());
}

/** A bulk action's body read: `"all"` or the letters' keys; AdminRefusal for anything else. */
export function selectionOf(body: Record<string, unknown>): "all" | { partition: number; seq: number }[] {
  if (body.all === true && body.ids === undefined) return "all";
  if (
    Array.isArray(body.ids) &&
    body.ids.length > 0 &&
    body.ids.every((id) => typeof id === "string") &&
    body.all === undefined
  ) {
    return (body.ids as string[]).map(letterKey);
  }
  throw new AdminRefusal(400, "bad-request", 'name the dead letters as {"ids": ["<id>", …]} or {"all": true}');
}

function letterActionReply(call: AdminCall, done: DeadLetterReplay, verb: "replayed" | "discarded"): AdminReply {
  if (done.ok) return ok({ [verb]: done.replayed.map(({ partition, letter }) => deadLetterId(partition, letter.seq)) });
  switch (done.code) {
    case "stopping":
    case "commit-aborted":
      return operatorRefusal(done);
    case "not-owner":
      return refusal(409, "not-owner", done.message);
    case "no-letter": {
      // A letter that is there but is an ingress's unroutable record cannot be replayed; else it is gone.
      const unroutable = done.missing.filter(({ partition, seq }) =>
        call.runtime.engine.deadLetters().some((listed) => listed.partition === partition && listed.letter.seq === seq),
      );
      const ids = (unroutable.length > 0 ? unroutable : done.missing).map(({ partition, seq }) =>
        deadLetterId(partition, seq),
      );
      return unroutable.length > 0
        ? refusal(
            409,
            "not-replayable",
            `${ids.join(", ")}: a record an ingress could not route, which replay could not route either; nothing was ${verb}`,
          )
        : refusal(
            404,
            "no-such-dead-letter",
            `no dead letter ${ids.join(", ")} (replayed or discarded already?); nothing was ${verb}`,
          );
    }
  }
}

/** A checkpoint taken now; one that could not be (a name taken, the store unreachable) is refused with why. */
async function taken(take: () => Promise<Record<string, unknown>>): Promise<AdminReply> {
  try {
    return ok(await take());
  } catch (error) {
    return refusal(409, "checkpoint-failed", error instanceof Error ? error.message : String(error));
  }
}

// ---- the routes ----

/** In a cluster, the worker that runs the address's partition answers. */
const addressOwner: ClusterScope = {
  kind: "owner",
  partition: ({ runtime, params }) => runtime.engine.partitionOf(addressOf(params)),
};

/** In a cluster, the worker that runs the dead letter's partition answers. */
const letterOwner: ClusterScope = { kind: "owner", partition: ({ params }) => letterKey(params.id ?? "").partition };

export const ADMIN_ROUTES: readonly AdminRoute[] = [
  {
    method: "GET",
    path: "/v1/overview",
    operationId: "getOverview",
    cluster: { kind: "every-worker", merge: mergeOverviews },
    summary: "The runtime at a glance: mode, partitions, state on disk, delayed messages, the last checkpoint.",
    handle: ({ runtime }) => {
      const latest = runtime.checkpoints?.latest();
      return ok({
        mode: runtime.mode,
        ...(runtime.peers === undefined ? {} : { workerId: runtime.peers.workerId }),
        startedAtMs: runtime.startedAtMs,
        nowMs: Date.now(),
        partitions: runtime.partitionCount,
        ownedPartitions: runtime.engine.ownedPartitions.length,
        stateBytesOnDisk: runtime.stateBytesOnDisk(),
        delayedMessagesPending: runtime.engine.delayedMessagesPending,
        checkpoints: {
          enabled: runtime.checkpoints !== undefined,
          last: latest === undefined ? null : { id: latest.id, seq: latest.seq, createdAt: latest.createdAt },
        },
      });
    },
  },
  {
    method: "GET",
    path: "/v1/stats",
    operationId: "getStats",
    cluster: { kind: "every-worker", merge: mergeStats },
    summary: "Counters since the start (take rates from two reads) and latencies over the last 10 seconds.",
    handle: async ({ runtime }) => {
      const loads = runtime.engine.functionTypeLoads();
      const functionTypes: Record<string, unknown> = {};
      for (const typename of knownTypes(runtime, loads)) {
        const { stats, latencyMs } = runtime.stats.functionType(typename);
        const load = loads.get(typename) ?? { backlog: 0, inFlight: 0 };
        functionTypes[typename] = {
          invocations: stats.invocations,
          failures: stats.failures,
          deadLetters: stats.deadLetters,
          backlog: load.backlog,
          inFlight: load.inFlight,
          paused: runtime.engine.isPaused(typename as FunctionTypename),
          latencyMs,
        };
      }
      return ok({
        nowMs: Date.now(),
        functionTypes,
        totals: { ...runtime.stats.totals(), kafkaLagMessages: await runtime.kafkaLagMessages() },
      });
    },
  },
  {
    method: "GET",
    path: "/v1/function-types",
    operationId: "listFunctionTypes",
    cluster: { kind: "every-worker", merge: mergeFunctionTypeLists },
    summary: "Every function type served, with its endpoint, load and health.",
    handle: ({ runtime }) => {
      const loads = runtime.engine.functionTypeLoads();
      return ok({
        functionTypes: knownTypes(runtime, loads).map((typename) => functionTypeBody(runtime, typename, loads)),
      });
    },
  },
  {
    method: "GET",
    path: "/v1/function-types/{namespace}/{type}",
    operationId: "getFunctionType",
    cluster: { kind: "every-worker", merge: mergeFunctionTypes },
    summary: "One function type: its endpoint, load and health.",
    handle: ({ runtime, params }) => {
      const typename = typenameOf(params);
      servedType(runtime, typename);
      return ok(functionTypeBody(runtime, typename, runtime.engine.functionTypeLoads()));
    },
  },
  {
    method: "POST",
    path: "/v1/function-types/{namespace}/{type}/pause",
    operationId: "pauseFunctionType",
    cluster: { kind: "every-worker-write", merge: mergeFunctionTypes },
    summary: "Pauses a function type: its messages wait, durably, until it is resumed.",
    handle: (call) => pauseOrResume(call, true),
  },
  {
    method: "POST",
    path: "/v1/function-types/{namespace}/{type}/resume",
    operationId: "resumeFunctionType",
    cluster: { kind: "every-worker-write", merge: mergeFunctionTypes },
    summary: "Resumes a paused function type: the messages that waited are sent.",
    handle: (call) => pauseOrResume(call, false),
  },
  {
    method: "GET",
    path: "/v1/state/{namespace}/{type}",
    operationId: "listStateIds",
    cluster: { kind: "every-worker", merge: (bodies, call) => mergeStateIdPages(bodies, pageLimit(call.query)) },
    summary: "The ids of a function type that hold state, sorted, a page at a time.",
    handle: ({ runtime, params, query }) => {
      const typename = typenameOf(params);
      servedType(runtime, typename);
      const limit = pageLimit(query);
      const after = query.get("after") ?? undefined;
      const prefix = query.get("prefix") ?? undefined;
      // One more than asked tells whether there is a next page.
      const ids = runtime.engine.stateIds(typename, {
        limit: limit + 1,
        ...(after === undefined ? {} : { after }),
        ...(prefix === undefined ? {} : { prefix }),
      });
      const page = ids.slice(0, limit);
      return ok({ ids: page, next: ids.length > limit ? (page.at(-1) ?? null) : null });
    },
  },
  {
    method: "GET",
    path: "/v1/state/{namespace}/{type}/{id}",
    operationId: "getAddress",
    cluster: addressOwner,
    summary: "An address's state (decoded where its type is known), backlog, batch in flight and delayed messages.",
    handle: ({ runtime, params }) => {
      const address = addressOf(params);
      servedType(runtime, address.typename);
      return ok(stateBody(runtime, address));
    },
  },
  {
    method: "PUT",
    path: "/v1/state/{namespace}/{type}/{id}/{name}",
    operationId: "putState",
    cluster: addressOwner,
    summary: "Sets a state value of an address; durable before the answer, seen by the function's next invocation.",
    handle: (call) => writeState(call, false),
  },
  {
    method: "DELETE",
    path: "/v1/state/{namespace}/{type}/{id}/{name}",
    operationId: "deleteState",
    cluster: addressOwner,
    summary: "Deletes a state value of an address.",
    handle: (call) => writeState(call, true),
  },
  {
    method: "GET",
    path: "/v1/dead-letters",
    operationId: "listDeadLetters",
    cluster: {
      kind: "every-worker",
      merge: (bodies, call) => mergeDeadLetterPages(bodies, pageLimit(call.query), parseDeadLetterId),
    },
    summary: "Dead letters, oldest first, a page at a time.",
    handle: ({ runtime, query }) => {
      const limit = pageLimit(query);
      const after = query.get("after");
      let letters = allLetters(runtime.engine);
      if (after !== null) {
        const cursor = parseLetterCursor(after);
        // The listing's order (sortDeadLetters): time, partition, sequence number.
        letters = letters.filter(
          ({ partition, letter }) =>
            (letter.atMs - cursor.atMs || partition - cursor.partition || letter.seq - cursor.seq) > 0,
        );
      }
      const page = letters.slice(0, limit);
      const last = page.at(-1);
      return ok({
        deadLetters: page.map(letterSummary),
        next: letters.length > limit && last !== undefined ? letterCursor(last) : null,
      });
    },
  },
  {
    method: "GET",
    path: "/v1/dead-letters/{id}",
    operationId: "getDeadLetter",
    cluster: letterOwner,
    summary: "One dead letter, whole: its messages, their arguments in base64.",
    handle: ({ runtime, params }) => {
      const id = params.id ?? "";
      letterKey(id);
      const found = allLetters(runtime.engine).find((letter) => letter.id === id);
      if (found === undefined) return refusal(404, "no-such-dead-letter", `no dead letter ${id}`);
      return ok({ ...deadLetterToJson(found), replayable: found.letter.ingress === undefined });
    },
  },
  {
    method: "POST",
    path: "/v1/dead-letters/{id}/replay",
    operationId: "replayDeadLetter",
    cluster: letterOwner,
    summary: "Replays one dead letter now: its messages are delivered again.",
    handle: async (call) => {
      const key = letterKey(call.params.id ?? "");
      return letterActionReply(call, await call.runtime.engine.replayDeadLetters([key]), "replayed");
    },
  },
  {
    method: "DELETE",
    path: "/v1/dead-letters/{id}",
    operationId: "discardDeadLetter",
    cluster: letterOwner,
    summary: "Discards one dead letter.",
    handle: async (call) => {
      const key = letterKey(call.params.id ?? "");
      return letterActionReply(call, await call.runtime.engine.discardDeadLetters([key]), "discarded");
    },
  },
  {
    method: "POST",
    path: "/v1/dead-letters/replay",
    operationId: "replayDeadLetters",
    cluster: { kind: "dead-letter-selection", key: "replayed" },
    summary: "Replays the dead letters named, or all that can be: all or none.",
    handle: async (call) =>
      letterActionReply(call, await call.runtime.engine.replayDeadLetters(await selection(call)), "replayed"),
  },
  {
    method: "POST",
    path: "/v1/dead-letters/discard",
    operationId: "discardDeadLetters",
    cluster: { kind: "dead-letter-selection", key: "discarded" },
    summary: "Discards the dead letters named, or all: all or none.",
    handle: async (call) =>
      letterActionReply(call, await call.runtime.engine.discardDeadLetters(await selection(call)), "discarded"),
  },
  {
    method: "GET",
    path: "/v1/checkpoints",
    operationId: "listCheckpoints",
    summary: "The checkpoints and savepoints in the checkpoint store, newest first.",
    handle: async ({ runtime }) => {
      if (runtime.checkpoints !== undefined)
        return ok({ enabled: true, checkpoints: await runtime.checkpoints.list() });
      // A cluster worker's own snapshots are its partitions' business; what an operator restores is a savepoint.
      if (runtime.clusterSavepoints !== undefined)
        return ok({ enabled: true, checkpoints: await runtime.clusterSavepoints.list() });
      return ok({ enabled: false, checkpoints: [] });
    },
  },
  {
    method: "POST",
    path: "/v1/checkpoints",
    operationId: "takeCheckpoint",
    summary: "Takes a checkpoint now.",
    handle: async ({ runtime }) => {
      if (runtime.mode === "cluster") return clusterCheckpointRefusal();
      if (runtime.checkpoints === undefined)
        return refusal(409, "checkpoints-disabled", "this Eddy runs without --checkpoints: it takes no checkpoints");
      return taken(() => (runtime.checkpoints as CheckpointControl).take());
    },
  },
  {
    method: "POST",
    path: "/v1/savepoints",
    operationId: "takeSavepoint",
    summary: "Takes a savepoint now, under the name given.",
    handle: async (call) => {
      const checkpoints = call.runtime.checkpoints;
      const clusterSavepoints = call.runtime.clusterSavepoints;
      if (checkpoints === undefined && clusterSavepoints === undefined)
        return refusal(409, "checkpoints-disabled", "this Eddy runs without --checkpoints: it takes no savepoints");
      const { name } = await call.body();
      if (typeof name !== "string" || name === "")
        return refusal(400, "bad-request", 'name the savepoint: {"name": "…"}');
      if (clusterSavepoints !== undefined) return clusterSavepoints.take(name);
      return taken(() => (checkpoints as CheckpointControl).take(name));
    },
  },
  {
    method: "POST",
    path: "/v1/cluster/savepoints/{phase}",
    operationId: "savepointPhase",
    summary:
      "Between the workers of a cluster: this worker's part (hold, capture or release) in a savepoint another worker takes.",
    handle: async (call) => {
      const control = call.runtime.clusterSavepoints;
      if (control === undefined)
        return refusal(409, "not-in-cluster-mode", "only a cluster's workers take part in a cluster's savepoints");
      return control.phase(call.params.phase ?? "", await call.body());
    },
  },
];

/** The route for a method and path, with its parameters; or why there is none. */
export function matchRoute(
  method: string,
  path: string,
): { readonly route: AdminRoute; readonly params: Record<string, string> } | { readonly allowed: readonly string[] } {
  const segments = path.split("/");
  const allowed: string[] = [];
  for (const route of ADMIN_ROUTES) {
    const template = route.path.split("/");
    if (template.length !== segments.length) continue;
    const params: Record<string, string> = {};
    let matches = true;
    for (let index = 0; index < template.length && matches; index++) {
      const part = template[index] as string;
      const segment = segments[index] as string;
      if (part.startsWith("{")) {
        if (segment === "") matches = false;
        else params[part.slice(1, -1)] = decodeSegment(segment);
      } else if (part !== segment) matches = false;
    }
    if (!matches) continue;
    if (route.method === method) return { route, params };
    allowed.push(route.method);
  }
  return { allowed };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new AdminRefusal(400, "bad-request", `"${segment}" is not a percent-encoded path segment`);
  }
}
