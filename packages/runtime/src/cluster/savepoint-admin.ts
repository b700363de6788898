// A cluster worker's savepoints as its admin API serves them: POST /v1/savepoints takes one of
// the whole cluster (savepoint-coordinator.ts), POST /v1/cluster/savepoints/<phase> is this
// worker's part in one that another worker takes (savepoint-participant.ts), and GET
// /v1/checkpoints lists those in the checkpoint store. Failures become `{code, message}`
// refusals with the status their code calls for.
import type { AdminReply, ClusterSavepointControl, ClusterSavepointListing } from "../observe/admin-api.ts";
import { refusal } from "../observe/admin-api.ts";
import type { AdminPeerClient } from "../observe/admin-peer-client.ts";
import type { ReachablePeer } from "../observe/cluster-admin.ts";
import {
  type PhaseRequest,
  runPhase,
  type SavepointCoordinatorOptions,
  type SavepointPhase,
  takeClusterSavepoint,
} from "./savepoint-coordinator.ts";
import { listClusterSavepoints } from "./seed-cluster.ts";

/** Orders ISO times (and the ids made from them) newest first. */
const newestFirst = (a: string, b: string): number => (a < b ? 1 : a > b ? -1 : 0);

const PHASES: readonly string[] = ["hold", "capture", "release"];

/** The HTTP status of a savepoint failure's code. */
const STATUS: Readonly<Record<string, number>> = {
  "bad-request": 400,
  "savepoint-exists": 409,
  "savepoint-busy": 409,
  "savepoint-expired": 409,
  "savepoint-unknown": 404,
  "savepoint-unreachable": 409,
  "savepoint-rebalancing": 503,
  "savepoint-inbox-unread": 503,
  "savepoint-write-failed": 503,
  "savepoint-failed": 503,
};

export function clusterSavepointControl(
  options: Omit<SavepointCoordinatorOptions, "send">,
  peers: AdminPeerClient,
): ClusterSavepointControl {
  const send: SavepointCoordinatorOptions["send"] = async (adminUrl, phase, request) => {
    const peer: ReachablePeer = { workerId: "", adminUrl };
    const answer = await peers.send(peer, {
      method: "POST",
      pathAndQuery: `/v1/cluster/savepoints/${phase}`,
      body: request,
    });
    if (!answer.ok) return { ok: false, code: "savepoint-unreachable", message: answer.error, retriable: true };
    const body = answer.reply.body as Record<string, unknown>;
    if (answer.reply.status === 200) return { ok: true, value: body };
    const message = typeof body.message === "string" ? body.message : `HTTP ${answer.reply.status}`;
    return {
      ok: false,
      code: typeof body.code === "string" ? body.code : "savepoint-failed",
      message,
      retriable: true,
    };
  };
  return {
    async list(): Promise<readonly ClusterSavepointListing[]> {
      // A manifest that cannot be read is left out here; eddy checkpoints list names it.
      const { savepoints } = await listClusterSavepoints(options.blobs);
      return savepoints
        .map(
          (manifest): ClusterSavepointListing => ({
            id: manifest.id,
            kind: "savepoint",
            name: manifest.name,
            createdAt: manifest.createdAt,
            bytes: manifest.partitions.reduce((sum, entry) => sum + (entry.object?.bytes ?? 0), 0),
            cluster: manifest.cluster,
            generation: manifest.generation,
            partitions: manifest.partitionCount,
            rows: manifest.partitions.reduce((sum, entry) => sum + entry.rows, 0),
            inboxRecords: manifest.partitions.reduce((sum, entry) => sum + entry.inboxRecords, 0),
          }),
        )
        .sort((a, b) => newestFirst(a.createdAt, b.createdAt) || newestFirst(a.id, b.id));
    },
    async take(name: string): Promise<AdminReply> {
      const taken = await takeClusterSavepoint({ ...options, send }, name);
      if (!taken.ok) return refusal(STATUS[taken.code] ?? 500, taken.code, taken.message);
      return { status: 200, body: { kind: "savepoint", scope: "cluster", ...taken.value } };
    },
    async phase(phase: string, body: Record<string, unknown>): Promise<AdminReply> {
      if (!PHASES.includes(phase)) {
        return refusal(404, "not-found", `no savepoint phase ${JSON.stringify(phase)}: hold, capture or release`);
      }
      const { id, name, write } = body;
      if (typeof id !== "string" || typeof name !== "string" || (write !== undefined && typeof write !== "boolean")) {
        return refusal(400, "bad-request", 'expected {"id": "…", "name": "…"} (and "write": true or false to release)');
      }
      const request: PhaseRequest = write === undefined ? { id, name } : { id, name, write };
      const answer = await runPhase(options.participant, phase as SavepointPhase, request);
      if (!answer.ok) return refusal(STATUS[answer.code] ?? 500, answer.code, answer.message);
      return { status: 200, body: answer.value };
    },
  };
}
