// `eddy dead-letters list|replay --cluster`'s side: a cluster's dead letters are in its
// partitions, whose truth is the changelog and whose running copies are on the workers; so they
// are listed by asking every worker for the letters of the partitions it runs now (GET
// /dead-letters on its ingress, io/playground/dead-letter-routes.ts), and each replay goes to
// the worker that runs the letter's partition. The workers are found in the cluster's group
// (DescribeGroups: each member's metadata carries its advertised URL, and its admin listener's
// URL when it runs one), or given as URLs. `eddy savepoint --cluster` finds them the same way,
// to ask one over its admin API.
//
// Nothing is silently skipped: a worker that does not answer is named, and so is every
// partition no answering worker ran (between owners, or on the silent worker).
import { setTimeout as sleep } from "node:timers/promises";
import { deadLetterFromJson, type ListedDeadLetter, sortDeadLetters } from "../dead-letters.ts";
import { errorMessage } from "../errors.ts";
import { describe, kafkaConnection } from "../io/kafka/client-options.ts";
import type { ClusterAddress } from "./cluster-settings.ts";
import { clusterTopicNames } from "./cluster-topics.ts";
import { KafkaErrorCode, KafkaLink } from "./kafka-link.ts";
import { type DescribedGroup, describeGroup } from "./member-urls.ts";
import { decodeMemberMetadata } from "./membership-codec.ts";

/** A worker to ask: its id when the group said it, and its advertised URL (no trailing slash). */
export interface WorkerEndpoint {
  readonly workerId: string | undefined;
  readonly url: string;
  /**
   * Its admin listener's URL (no trailing slash), when the group said it: a worker started with
   * --admin-port off, or a --worker URL, has none.
   */
  readonly adminUrl?: string | undefined;
}

export type FoundWorkers =
  | { readonly ok: true; readonly workers: WorkerEndpoint[] }
  | { readonly ok: false; readonly error: string };

const RETRY_DELAY_MS = 250;
/** Attempts in a row that reach no broker before the search gives up. */
const UNREACHABLE_ATTEMPTS_MAX = 3;

/** What a cluster without running workers is told by default: the dead-letter commands' case. */
const NO_WORKERS_HINT = "its dead letters are listed and replayed by its workers; start them, then ask again";

/**
 * The workers of the cluster, from its group's members. Kafka describes members only while the
 * group is stable, so a rebalancing group is asked again until `settleWaitMs` has passed.
 * `noWorkersHint` ends the error of a cluster that runs no worker, saying why the caller needs
 * one; `clientId` names the caller to the brokers.
 */
export async function findClusterWorkers(options: {
  readonly address: ClusterAddress;
  readonly properties: ReadonlyMap<string, string>;
  readonly propertiesSource: string;
  readonly settleWaitMs: number;
  readonly noWorkersHint?: string;
  readonly clientId?: string;
}): Promise<FoundWorkers> {
  const { address } = options;
  const names = clusterTopicNames(address.name);
  if (!names.ok) return { ok: false, error: names.message };
  const connection = kafkaConnection(
    address.brokers.join(","),
    options.properties,
    options.clientId ?? "eddy-dead-letters",
    options.propertiesSource,
  );
  if (!connection.ok) return { ok: false, error: connection.error };
  const groupId = names.value.group;
  const link = new KafkaLink(connection.value, { requestTimeoutMs: 10_000 });
  const deadline = Date.now() + options.settleWaitMs;
  let why = "";
  let unreachable = 0;
  try {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        if (Date.now() + RETRY_DELAY_MS > deadline) {
          return {
            ok: false,
            error: `cannot find the workers of cluster ${address.name} at ${link.bootstrapServers}: ${why}`,
          };
        }
        await sleep(RETRY_DELAY_MS);
      }
      let described: DescribedGroup;
      try {
        described = await describeGroup(link, groupId);
      } catch (error) {
        why = `DescribeGroups ${groupId}: ${describe(error)}`;
        // Brokers that cannot be reached at all are said soon; only a group that is settling is worth the wait.
        if (++unreachable >= UNREACHABLE_ATTEMPTS_MAX) {
          return {
            ok: false,
            error: `cannot find the workers of cluster ${address.name} at ${link.bootstrapServers}: ${why}`,
          };
        }
        continue;
      }
      unreachable = 0;
      if (!described.ok) {
        why = described.why;
        if (described.code === KafkaErrorCode.GROUP_AUTHORIZATION_FAILED) return { ok: false, error: why };
        continue;
      }
      const group = described.group;
      if (group.groupState === "Empty" || group.groupState === "Dead" || group.members.length === 0) {
        return {
          ok: false,
          error: `cluster ${address.name} has no running workers (group ${groupId} is ${group.groupState}): ${options.noWorkersHint ?? NO_WORKERS_HINT}`,
        };
      }
      if (group.groupState !== "Stable") {
        why = `the group ${groupId} is ${group.groupState} (workers joining or leaving)`;
        continue;
      }
      const workers: WorkerEndpoint[] = [];
      for (const member of group.members) {
        const metadata = decodeMemberMetadata(member.memberMetadata);
        if (!metadata.ok) {
          why = `member ${member.memberId} of ${groupId} is not an Eddy worker this version reads: ${metadata.message}`;
          return { ok: false, error: why };
        }
        const { workerId, url, adminUrl } = metadata.value;
        workers.push({ workerId, url, ...(adminUrl === undefined ? {} : { adminUrl }) });
      }
      return { ok: true, workers: workers.sort((a, b) => (a.workerId ?? "").localeCompare(b.workerId ?? "")) };
    }
  } finally {
    await link.close();
  }
}

/** How a worker is named in messages: its id and URL. */
export function workerName(worker: WorkerEndpoint): string {
  return worker.workerId === undefined ? worker.url : `worker ${worker.workerId} (${worker.url})`;
}

export interface WorkerListing {
  readonly worker: WorkerEndpoint;
  readonly partitionCount: number;
  readonly partitions: readonly number[];
  readonly letters: readonly ListedDeadLetter[];
}

export interface ClusterDeadLetters {
  /** Every letter the answering workers listed, oldest first. */
  readonly letters: ListedDeadLetter[];
  readonly answered: readonly WorkerListing[];
  /** The workers that did not answer, with why. */
  readonly silent: readonly { readonly worker: WorkerEndpoint; readonly error: string }[];
  /** Partitions no answering worker ran when asked: their letters are not listed. */
  readonly unlisted: readonly number[];
  /** Which answering worker runs each partition it listed. */
  readonly ownerOf: ReadonlyMap<number, WorkerEndpoint>;
}

function headers(token: string | undefined, json = false): Record<string, string> {
  return {
    ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    ...(json ? { "content-type": "application/json" } : {}),
  };
}

/** The answer's text when it is not the JSON expected: its first line, for a message. */
async function failureText(response: Response): Promise<string> {
  const text = (await response.text().catch(() => "")).trim();
  let detail = text.split("\n")[0] ?? "";
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed.error === "string") detail = parsed.error;
  } catch {
    // plain text: its first line
  }
  return `HTTP ${response.status}${detail === "" ? "" : `: ${detail}`}`;
}

async function listWorker(
  worker: WorkerEndpoint,
  token: string | undefined,
  timeoutMs: number,
): Promise<{ readonly ok: true; readonly listing: WorkerListing } | { readonly ok: false; readonly error: string }> {
  let response: Response;
  try {
    response = await fetch(`${worker.url}/dead-letters`, {
      headers: headers(token),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    return { ok: false, error: errorMessage((error as { cause?: unknown }).cause ?? error) };
  }
  if (response.status !== 200) return { ok: false, error: await failureText(response) };
  const body = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  const letters = Array.isArray(body?.letters) ? body.letters.map(deadLetterFromJson) : undefined;
  if (
    body === undefined ||
    typeof body.partitionCount !== "number" ||
    !Array.isArray(body.partitions) ||
    letters === undefined ||
    letters.some((letter) => letter === undefined)
  ) {
    return { ok: false, error: "its answer is not a dead-letter listing (is it an Eddy worker of this version?)" };
  }
  const workerId = typeof body.workerId === "string" ? body.workerId : worker.workerId;
  return {
    ok: true,
    listing: {
      worker: { ...worker, workerId },
      partitionCount: body.partitionCount,
      partitions: body.partitions as number[],
      letters: letters as ListedDeadLetter[],
    },
  };
}

/** Asks every worker at once for its letters. */
export async function collectClusterDeadLetters(
  workers: readonly WorkerEndpoint[],
  token: string | undefined,
  timeoutMs: number,
): Promise<ClusterDeadLetters> {
  const answers = await Promise.all(workers.map((worker) => listWorker(worker, token, timeoutMs)));
  const answered: WorkerListing[] = [];
  const silent: { worker: WorkerEndpoint; error: string }[] = [];
  const ownerOf = new Map<number, WorkerEndpoint>();
  const byId = new Map<string, ListedDeadLetter>();
  for (const [index, answer] of answers.entries()) {
    if (!answer.ok) {
      silent.push({ worker: workers[index] as WorkerEndpoint, error: answer.error });
      continue;
    }
    answered.push(answer.listing);
    for (const partition of answer.listing.partitions) ownerOf.set(partition, answer.listing.worker);
    // A partition that moved between two answers may be listed twice: one letter, one id.
    for (const letter of answer.listing.letters) byId.set(letter.id, letter);
  }
  const partitionCount = Math.max(0, ...answered.map(({ partitionCount }) => partitionCount));
  const unlisted: number[] = [];
  for (let partition = 0; partition < partitionCount; partition++) {
    if (!ownerOf.has(partition)) unlisted.push(partition);
  }
  return { letters: sortDeadLetters([...byId.values()]), answered, silent, unlisted, ownerOf };
}

export type WorkerReplay =
  | { readonly ok: true; readonly replayed: readonly ListedDeadLetter[] }
  /** `unknown`: the request went out and no answer came back, so whether it replayed is not known. */
  | { readonly ok: false; readonly unknown: boolean; readonly error: string };

/**
 * Asks `worker` to replay: the letters named (all in partitions it listed), or all of its own.
 * `unknown` is set when the outcome is not known (no answer after the request went out).
 */
export async function replayOnWorker(
  worker: WorkerEndpoint,
  selection: "all" | readonly string[],
  token: string | undefined,
  timeoutMs: number,
): Promise<WorkerReplay> {
  let response: Response;
  try {
    response = await fetch(`${worker.url}/dead-letters/replay`, {
      method: "POST",
      headers: headers(token, true),
      body: JSON.stringify(selection === "all" ? { all: true } : { ids: selection }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    return { ok: false, unknown: true, error: errorMessage((error as { cause?: unknown }).cause ?? error) };
  }
  if (response.status !== 200) return { ok: false, unknown: false, error: await failureText(response) };
  const body = (await response.json().catch(() => undefined)) as { replayed?: unknown } | undefined;
  const replayed = Array.isArray(body?.replayed) ? body.replayed.map(deadLetterFromJson) : undefined;
  if (replayed === undefined || replayed.some((letter) => letter === undefined)) {
    return { ok: false, unknown: true, error: "its answer is not a replay's (is it an Eddy worker of this version?)" };
  }
  return { ok: true, replayed: replayed as ListedDeadLetter[] };
}
