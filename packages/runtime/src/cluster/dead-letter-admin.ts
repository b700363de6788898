// A cluster worker's dead letters, as its HTTP ingress serves them (io/playground/dead-letter-routes.ts):
// those of the partitions its engine runs now, listed as committed and replayed in a commit of
// their partition (Engine.replayDeadLetters), so a replay is in the changelog like any other
// write and moves with the partition.
import type { Engine } from "../engine/engine.ts";
import type { DeadLetterAdmin } from "../io/playground/dead-letter-routes.ts";
import type { IngressRouting } from "../io/playground/forwarding.ts";

export function clusterDeadLetterAdmin(engine: Engine, workerId: string, partitionCount: number): DeadLetterAdmin {
  return {
    workerId,
    partitionCount,
    // In one turn: the partitions named are exactly those whose letters are listed.
    list: () => ({ partitions: engine.ownedPartitions, letters: engine.deadLetters() }),
    replay: (selection) => engine.replayDeadLetters(selection),
  };
}

/** The worker's routing with its dead letters (and its side of a playground egress), for its connectors. */
export function workerRouting(
  routing: IngressRouting,
  deadLetters: DeadLetterAdmin,
  more: Pick<IngressRouting, "playgroundEgress" | "peers"> = {},
): IngressRouting {
  return {
    ownerOfTarget: (target) => routing.ownerOfTarget(target),
    ownerOfRequest: (requestId) => routing.ownerOfRequest(requestId),
    deadLetters,
    ...more,
  };
}
