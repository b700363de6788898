// The admin API of a cluster worker answers for the whole cluster (docs/admin-api.md, "In a
// cluster"): an address's state, a dead letter, are asked of the worker that runs their
// partition; lists and totals are asked of every worker and merged; a pause goes to every
// worker, since each pauses its own partitions. Each route says which in its `cluster` scope
// (admin-api.ts); a route without one answers for this worker. The owners come from the group's
// assignment, which carries each worker's admin URL (cluster/membership-codec.ts).
//
// A call one worker sends another carries ADMIN_FORWARDED_HEADER and is answered by that worker
// alone, so a call is never passed on twice, whatever the owners became meanwhile. Nothing is
// silently left out: a list some worker did not answer says which in its `cluster` member, and a
// write that did not reach every worker is refused, naming what was done and what was not.
import { parseDeadLetterId } from "../core/records.ts";
import type { AdminCall, AdminReply, AdminRoute, HttpMethod } from "./admin-api.ts";
import { refusal, selectionOf } from "./admin-api.ts";

/** Marks an admin call one worker sent another: answered by the receiver alone. */
export const ADMIN_FORWARDED_HEADER = "eddy-admin-forwarded";

/** A worker of the cluster as the group's assignment names it. */
export interface AdminPeer {
  readonly workerId: string;
  /** Its admin listener; undefined when it runs without one (or an Eddy that does not say). */
  readonly adminUrl?: string | undefined;
}

/** A peer with an admin listener to send to (`ask` answers for one without). */
export type ReachablePeer = AdminPeer & { readonly adminUrl: string };

/** What a peer said: its reply, or why there is none. */
export type PeerAnswer =
  | { readonly ok: true; readonly reply: AdminReply }
  | { readonly ok: false; readonly error: string };

export interface AdminRequest {
  readonly method: HttpMethod;
  /** The path and query, as this worker was asked. */
  readonly pathAndQuery: string;
  readonly body?: unknown;
}

/** The cluster as this worker's admin API sees it (the cluster worker and an HTTP client). */
export interface AdminPeers {
  readonly workerId: string;
  /** Indexed by partition: who runs it in the current generation; undefined where nobody does yet. */
  owners(): readonly (AdminPeer | undefined)[];
  /** Sends `request` to `peer`'s admin listener, forwarded (ADMIN_FORWARDED_HEADER). */
  send(peer: ReachablePeer, request: AdminRequest): Promise<PeerAnswer>;
}

/** How a route answers in a cluster. */
export type ClusterScope =
  /** The worker that runs the partition the call names answers. */
  | { readonly kind: "owner"; readonly partition: (call: AdminCall) => number }
  /** Every worker answers; `merge` makes one reply of their 200s (this worker's first). */
  | {
      readonly kind: "every-worker";
      readonly merge: (bodies: readonly Record<string, unknown>[], call: AdminCall) => Record<string, unknown>;
    }
  /** Every worker changes its own partitions; `merge` makes one reply of their 200s. */
  | {
      readonly kind: "every-worker-write";
      readonly merge: (bodies: readonly Record<string, unknown>[], call: AdminCall) => Record<string, unknown>;
    }
  /**
   * Dead letters named by id go to the workers that run them, each doing its share all or
   * none; `{"all": true}` goes to every worker. `key` is the reply's list of ids done.
   */
  | { readonly kind: "dead-letter-selection"; readonly key: "replayed" | "discarded" };

/** What a fan-out says about who answered, in the `cluster` member of a merged reply. */
interface Coverage {
  readonly workers: number;
  readonly answered: readonly string[];
  readonly unanswered: readonly { readonly workerId: string; readonly error: string }[];
  /** Partitions no worker that answered runs (nobody runs them now, or their worker did not answer). */
  readonly partitionsMissing: number;
}

export interface ClusterCall {
  readonly route: AdminRoute;
  readonly call: AdminCall;
  readonly request: { readonly method: HttpMethod; readonly pathAndQuery: string; readonly hasBody: boolean };
  readonly peers: AdminPeers;
}

/** Answers a call in a cluster as its route's scope says. */
export async function answerForCluster({ route, call, request, peers }: ClusterCall): Promise<AdminReply> {
  const scope = route.cluster;
  if (scope === undefined) return route.handle(call);
  const body = request.hasBody ? await call.body() : undefined;
  const forward = (peer: AdminPeer, overrideBody?: unknown) =>
    ask(peers, peer, {
      method: request.method,
      pathAndQuery: request.pathAndQuery,
      ...(overrideBody !== undefined ? { body: overrideBody } : body === undefined ? {} : { body }),
    });
  // The body is read now; the handler here reads the same object.
  const local: AdminCall = body === undefined ? call : { ...call, body: async () => body as Record<string, unknown> };
  switch (scope.kind) {
    case "owner": {
      const partition = scope.partition(call);
      const owners = peers.owners();
      const owner = owners[partition];
      // A partition past the count (a letter id that names one) is no worker's: answered here.
      if (owner === undefined) return partition < owners.length ? nobodyRuns(partition) : route.handle(local);
      if (owner.workerId === peers.workerId) return route.handle(local);
      const answer = await forward(owner);
      return answer.ok ? answer.reply : unreachable(owner, answer.error);
    }
    case "every-worker":
    case "every-worker-write": {
      if (scope.kind === "every-worker-write") {
        const missing = partitionsWithoutOwner(peers);
        if (missing.length > 0) return rebalancing(missing);
      }
      const mine = await route.handle(local);
      // A refusal here (bad input, an unknown type) is every worker's: the others are not asked.
      if (mine.status !== 200) return mine;
      const others = otherWorkers(peers);
      const answers = await Promise.all(others.map((peer) => forward(peer)));
      const bodies = [mine.body as Record<string, unknown>];
      const answered = [peers.workerId];
      const unanswered: { workerId: string; error: string }[] = [];
      answers.forEach((answer, index) => {
        const peer = others[index] as AdminPeer;
        const error = answerError(answer);
        if (error !== undefined) unanswered.push({ workerId: peer.workerId, error });
        else if (answer.ok) {
          bodies.push(answer.reply.body as Record<string, unknown>);
          answered.push(peer.workerId);
        }
      });
      if (scope.kind === "every-worker-write" && unanswered.length > 0) {
        return refusal(
          502,
          "workers-failed",
          `done on ${bodies.length} of ${bodies.length + unanswered.length} workers; not on ${named(unanswered)}. Asking again is safe`,
        );
      }
      const merged = scope.merge(bodies, call);
      return { status: 200, body: { ...merged, cluster: coverage(peers, answered, unanswered) } };
    }
    case "dead-letter-selection":
      // Without a body, call.body() refuses: the request needs one.
      return selectionForCluster(scope.key, route, local, body ?? (await call.body()), peers, forward);
  }
}

async function selectionForCluster(
  key: "replayed" | "discarded",
  route: AdminRoute,
  local: AdminCall,
  body: Record<string, unknown>,
  peers: AdminPeers,
  forward: (peer: AdminPeer, body?: unknown) => Promise<PeerAnswer>,
): Promise<AdminReply> {
  const owners = peers.owners();
  // Checked whole first (AdminRefusal: 400): a malformed selection reaches no worker.
  const selected = selectionOf(body);
  // The ids by the worker that runs their partition; `{"all": true}` is every worker's.
  const shares = new Map<string, { peer: AdminPeer; body: unknown }>();
  if (selected !== "all") {
    for (const id of body.ids as string[]) {
      // A partition past the count is no worker's: this worker answers that it has no such letter.
      const partition = parseDeadLetterId(id)?.partition as number;
      const owner = owners[partition];
      if (owner === undefined && partition < owners.length) return nobodyRuns(partition);
      const peer = owner ?? { workerId: peers.workerId, adminUrl: undefined };
      const share = shares.get(peer.workerId) ?? { peer, body: { ids: [] as unknown[] } };
      (share.body as { ids: unknown[] }).ids.push(id);
      shares.set(peer.workerId, share);
    }
  } else {
    const missing = partitionsWithoutOwner(peers);
    if (missing.length > 0) return rebalancing(missing);
    for (const peer of [{ workerId: peers.workerId, adminUrl: undefined }, ...otherWorkers(peers)]) {
      shares.set(peer.workerId, { peer, body });
    }
  }
  // This worker's share first: bad input is refused before any other worker acts.
  const done: string[] = [];
  const mine = shares.get(peers.workerId);
  if (mine !== undefined) {
    const reply = await route.handle({ ...local, body: async () => mine.body as Record<string, unknown> });
    if (reply.status !== 200) return reply;
    done.push(...idsIn(reply.body, key));
  } else if (shares.size === 0) {
    return route.handle(local);
  }
  const others = [...shares.values()].filter((share) => share.peer.workerId !== peers.workerId);
  const answers = await Promise.all(others.map((share) => forward(share.peer, share.body)));
  const failed: string[] = [];
  answers.forEach((answer, index) => {
    const peer = (others[index] as { peer: AdminPeer }).peer;
    if (answer.ok && answer.reply.status === 200) {
      done.push(...idsIn(answer.reply.body, key));
      return;
    }
    const why = answer.ok ? messageOf(answer.reply) : answer.error;
    failed.push(`worker ${peer.workerId}: ${why}`);
  });
  if (failed.length > 0) {
    const status = answers.some((answer) => answer.ok && answer.reply.status < 500) ? 409 : 502;
    return refusal(
      status,
      "workers-failed",
      `${failed.join("; ")}. Each worker does its share all or none; ${done.length === 0 ? "none were" : `${done.join(", ")} were`} ${key}`,
    );
  }
  return { status: 200, body: { [key]: done } };
}

function idsIn(body: unknown, key: string): string[] {
  const ids = (body as Record<string, unknown> | undefined)?.[key];
  return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === "string") : [];
}

function messageOf(reply: AdminReply): string {
  const body = reply.body as { code?: unknown; message?: unknown } | undefined;
  return typeof body?.message === "string"
    ? `${reply.status} ${String(body.code)}: ${body.message}`
    : `${reply.status}`;
}

/** Why an answer cannot be merged; undefined for a 200 with an object. */
function answerError(answer: PeerAnswer): string | undefined {
  if (!answer.ok) return answer.error;
  if (answer.reply.status !== 200) return messageOf(answer.reply);
  const body = answer.reply.body;
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "its answer is not a JSON object";
  return undefined;
}

async function ask(peers: AdminPeers, peer: AdminPeer, request: AdminRequest): Promise<PeerAnswer> {
  if (peer.adminUrl === undefined) {
    return {
      ok: false,
      error: `worker ${peer.workerId} has no admin listener the others can reach (started with --admin-port off, or an Eddy that does not announce one)`,
    };
  }
  return peers.send({ workerId: peer.workerId, adminUrl: peer.adminUrl }, request);
}

/** The workers that run partitions now, but this one, by id. */
function otherWorkers(peers: AdminPeers): AdminPeer[] {
  const others = new Map<string, AdminPeer>();
  for (const owner of peers.owners()) {
    if (owner !== undefined && owner.workerId !== peers.workerId) others.set(owner.workerId, owner);
  }
  return [...others.values()].sort((a, b) => (a.workerId < b.workerId ? -1 : 1));
}

function partitionsWithoutOwner(peers: AdminPeers): number[] {
  const missing: number[] = [];
  peers.owners().forEach((owner, partition) => {
    if (owner === undefined) missing.push(partition);
  });
  return missing;
}

function coverage(
  peers: AdminPeers,
  answered: readonly string[],
  unanswered: readonly { readonly workerId: string; readonly error: string }[],
): Coverage {
  const heard = new Set(answered);
  const partitionsMissing = peers.owners().filter((owner) => owner === undefined || !heard.has(owner.workerId)).length;
  return {
    workers: answered.length + unanswered.length,
    answered: [...answered].sort(),
    unanswered,
    partitionsMissing,
  };
}

function named(workers: readonly { readonly workerId: string; readonly error: string }[]): string {
  return workers.map(({ workerId, error }) => `worker ${workerId} (${error})`).join(", ");
}

function nobodyRuns(partition: number): AdminReply {
  return refusal(
    503,
    "rebalancing",
    `no worker runs partition ${partition} now (workers are joining or leaving the cluster); ask again in a moment`,
  );
}

function rebalancing(missing: readonly number[]): AdminReply {
  const shown = missing.slice(0, 10).join(", ") + (missing.length > 10 ? `, … (${missing.length})` : "");
  return refusal(
    503,
    "rebalancing",
    `no worker runs partitions ${shown} now (workers are joining or leaving the cluster); nothing was done, ask again in a moment`,
  );
}

function unreachable(peer: AdminPeer, error: string): AdminReply {
  return refusal(502, "worker-unreachable", `worker ${peer.workerId}, which runs it, did not answer: ${error}`);
}
