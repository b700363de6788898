// `eddy dead-letters list|show|replay|discard`: what the failure policy set aside, putting it
// back, and throwing it away. Each letter is named by its id (`<partition>-<epoch>-<count>`,
// unique in the state directory or the cluster).
//
// Embedded, with Eddy running on --state-dir (or at --admin URL): every action goes through its
// admin API (dead-letters-live.ts), and a replay is delivered at once. With Eddy stopped: list
// and show read the state directory, replay queues the letters for its next start, and discard
// waits for a running Eddy. A cluster worker's state directory is refused (it is only a cache of
// the partitions the worker runs; the runtime's dead-letters.ts says why).
// A cluster (--cluster kafka://…/NAME, or --worker URL…): the running workers list the letters
// of the partitions they run and replay them at once, each in a commit of the letter's
// partition (cluster/dead-letter-client.ts); a worker that does not answer is named, and the
// command then fails, whatever it could do.
import { parseArgs } from "node:util";
import {
  type ClusterDeadLetters,
  collectClusterDeadLetters,
  deadLetterToJson,
  type ListedDeadLetter,
  listDeadLetters,
  queueReplay,
  refuseClusterWorkerStateDir,
  replayOnWorker,
  runningProcess,
  selectDeadLetters,
  type WorkerEndpoint,
  workerName,
} from "@eddy/runtime";
import { type AdminClient, adminClient } from "../admin-client.ts";
import { findWorkersOf } from "../cluster-workers.ts";
import { type LetterSummary, letterLine, letterWhat } from "../dead-letter-lines.ts";
import { readToken } from "../token.ts";
import { CommandError, UsageError } from "../usage.ts";
import { listLive, replayOrDiscardLive, showLive } from "./dead-letters-live.ts";

/** How long one worker may take to answer a listing or a replay. */
const WORKER_TIMEOUT_MS = 30_000;

function summaryOf({ id, letter }: ListedDeadLetter): LetterSummary {
  return { ...letter, id, messageCount: letter.invocations.length };
}

function printLetters(letters: readonly ListedDeadLetter[], json: boolean, summary: string): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(letters.map(deadLetterToJson))}\n`);
    return;
  }
  for (const letter of letters) process.stdout.write(`${letterLine(summaryOf(letter))}\n`);
  process.stdout.write(`${summary}\n`);
}

const what = (listed: ListedDeadLetter) => letterWhat(summaryOf(listed));

type Action = "list" | "show" | "replay" | "discard";
const ACTIONS: readonly string[] = ["list", "show", "replay", "discard"];

/** The ids the action names, or "all": checked before anything is asked of anyone. */
function selectionOf(action: Action, rest: readonly string[], all: boolean): "all" | readonly string[] {
  if (action === "list") {
    if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(" ")}`);
    return [];
  }
  if (action === "show") {
    if (rest.length !== 1 || all) throw new UsageError("give the id of the dead letter to show");
    return rest;
  }
  if ((rest.length === 0) === !all) throw new UsageError("give dead letter ids or --all");
  return all ? "all" : rest;
}

export async function deadLettersCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      "state-dir": { type: "string" },
      admin: { type: "string" },
      all: { type: "boolean" },
      json: { type: "boolean" },
      cluster: { type: "string" },
      "cluster-config": { type: "string" },
      worker: { type: "string", multiple: true },
      "token-file": { type: "string" },
    },
  });
  const [first, ...rest] = positionals;
  if (first === undefined || !ACTIONS.includes(first)) {
    throw new UsageError(
      first === undefined
        ? "give list, show, replay or discard"
        : `unknown action "${first}"; expected list, show, replay or discard`,
    );
  }
  const action = first as Action;
  const selection = selectionOf(action, rest, values.all === true);
  const inCluster = values.cluster !== undefined || values.worker !== undefined;
  if (inCluster) {
    if (values["state-dir"] !== undefined || values.admin !== undefined) {
      throw new UsageError(
        `--${values.admin === undefined ? "state-dir" : "admin"} is for an embedded Eddy; a cluster's dead letters are asked of its workers (--cluster or --worker)`,
      );
    }
    if (action === "show" || action === "discard") {
      throw new UsageError(`${action} works on an embedded Eddy (--state-dir or --admin); not yet in a cluster`);
    }
    const cluster = await clusterTarget(values);
    if (action === "list") await listInCluster(cluster, values.json === true);
    else await replayInCluster(cluster, selection);
    return;
  }
  if (values["cluster-config"] !== undefined) throw new UsageError("--cluster-config needs --cluster");
  if (values.admin !== undefined) {
    const client = adminClient(values);
    return live(client, action, selection, values.json === true, `at ${client.where}`);
  }
  if (values["token-file"] !== undefined) throw new UsageError("--token-file needs --admin, --cluster or --worker");
  const stateDir = values["state-dir"] ?? "eddy-state";
  // Before asking whether Eddy runs there: a running cluster worker's directory is refused too.
  await refuseClusterWorkerStateDir(stateDir, action === "list" || action === "show" ? "list" : "replay");
  const pid = runningProcess(stateDir);
  if (pid !== undefined) {
    return live(adminClient({ "state-dir": stateDir }, pid), action, selection, values.json === true, `in ${stateDir}`);
  }
  switch (action) {
    case "list": {
      const letters = await listDeadLetters(stateDir);
      printLetters(letters, values.json === true, `${letters.length} dead letter(s) in ${stateDir}`);
      return;
    }
    case "show":
      return showStopped(stateDir, selection as readonly string[]);
    case "discard":
      throw new CommandError(
        `no Eddy runs on ${stateDir}: discard goes through a running Eddy (start it on ${stateDir}, or give --admin URL)`,
      );
    case "replay":
      return queueStopped(stateDir, selection);
  }
}

function live(
  client: AdminClient,
  action: Action,
  selection: "all" | readonly string[],
  json: boolean,
  place: string,
): Promise<void> {
  switch (action) {
    case "list":
      return listLive(client, json, place);
    case "show":
      return showLive(client, selection[0] as string);
    default:
      return replayOrDiscardLive(client, action, selection);
  }
}

async function showStopped(stateDir: string, names: readonly string[]): Promise<void> {
  const letters = await listDeadLetters(stateDir);
  const chosen = selectDeadLetters(letters, names, stateDir, "nothing to show");
  // selectDeadLetters refuses what replay cannot route; show shows it all the same.
  const found = chosen.ok ? chosen.chosen[0] : letters.find(({ id }) => id === names[0]);
  if (found === undefined) {
    throw chosen.ok || !chosen.usage
      ? new CommandError(`no dead letter ${names[0]} in ${stateDir}`)
      : new UsageError(chosen.error);
  }
  process.stdout.write(`${JSON.stringify(deadLetterToJson(found), null, 2)}\n`);
}

async function queueStopped(stateDir: string, selection: "all" | readonly string[]): Promise<void> {
  const result = await queueReplay(stateDir, selection);
  if (!result.ok) throw result.usage ? new UsageError(result.error) : new CommandError(result.error);
  for (const letter of result.queued) process.stdout.write(`queued ${letter.id} (${what(letter)}) for replay\n`);
  process.stdout.write(
    `${result.queued.length} dead letter(s) queued; they are delivered when Eddy next starts on ${stateDir}\n`,
  );
}

interface ClusterTarget {
  /** "cluster NAME", or "workers URL, …" with --worker. */
  readonly name: string;
  readonly workers: readonly WorkerEndpoint[];
  readonly token: string | undefined;
}

async function clusterTarget(values: {
  readonly cluster?: string | undefined;
  readonly "cluster-config"?: string | undefined;
  readonly worker?: string[] | undefined;
  readonly "token-file"?: string | undefined;
}): Promise<ClusterTarget> {
  const token = readToken(values["token-file"]);
  if (values.worker !== undefined) {
    if (values.cluster !== undefined || values["cluster-config"] !== undefined) {
      throw new UsageError("give either --cluster kafka://HOST:PORT/NAME or --worker URL, not both");
    }
    const workers = values.worker.map((text) => {
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        throw new UsageError(`--worker ${text}: expected a worker's ingress URL, such as http://HOST:PORT`);
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw new UsageError(`--worker ${text}: expected an http:// or https:// URL`);
      }
      return { workerId: undefined, url: `${url.origin}${url.pathname.replace(/\/+$/, "")}` };
    });
    return { name: `workers ${workers.map(({ url }) => url).join(", ")}`, workers, token };
  }
  const found = await findWorkersOf(values.cluster as string, values["cluster-config"]);
  return { name: `cluster ${found.name}`, workers: found.workers, token };
}

/** What the listing missed, in one line; undefined when it is whole. */
function partialNote(collected: ClusterDeadLetters): string | undefined {
  const parts = collected.silent.map(({ worker, error }) => `${workerName(worker)} did not answer (${error})`);
  if (collected.unlisted.length > 0) {
    parts.push(
      `partition${collected.unlisted.length > 1 ? "s" : ""} ${collected.unlisted.join(", ")} not listed (no answering worker runs ${collected.unlisted.length > 1 ? "them" : "it"} now)`,
    );
  } else if (collected.answered.length === 0) {
    parts.push("no worker answered");
  }
  return parts.length === 0 ? undefined : parts.join("; ");
}

async function listInCluster(cluster: ClusterTarget, json: boolean): Promise<void> {
  const collected = await collectClusterDeadLetters(cluster.workers, cluster.token, WORKER_TIMEOUT_MS);
  const partial = partialNote(collected);
  printLetters(
    collected.letters,
    json,
    `${collected.letters.length} dead letter(s) in ${cluster.name}${partial === undefined ? "" : " (partial listing)"}`,
  );
  if (partial !== undefined) throw new CommandError(`partial listing of ${cluster.name}: ${partial}`);
}

async function replayInCluster(cluster: ClusterTarget, selection: "all" | readonly string[]): Promise<void> {
  const collected = await collectClusterDeadLetters(cluster.workers, cluster.token, WORKER_TIMEOUT_MS);
  const partial = partialNote(collected);
  // Each worker replays what it was asked in one commit of its own; across workers, letters
  // are checked first, so a mistake in a name replays nothing anywhere.
  let requests: { worker: WorkerEndpoint; selection: "all" | string[] }[];
  if (selection === "all") {
    requests = collected.answered.map(({ worker }) => ({ worker, selection: "all" }));
  } else {
    const where = partial === undefined ? cluster.name : `${cluster.name} (partial listing: ${partial})`;
    const chosen = selectDeadLetters(collected.letters, selection, where, "nothing was replayed");
    if (!chosen.ok) throw chosen.usage ? new UsageError(chosen.error) : new CommandError(chosen.error);
    const byWorker = new Map<WorkerEndpoint, string[]>();
    for (const { id, partition } of chosen.chosen) {
      const worker = collected.ownerOf.get(partition) as WorkerEndpoint;
      byWorker.set(worker, [...(byWorker.get(worker) ?? []), id]);
    }
    requests = [...byWorker].map(([worker, ids]) => ({ worker, selection: ids }));
  }
  const answers = await Promise.all(
    requests.map(async (request) => ({
      ...request,
      result: await replayOnWorker(request.worker, request.selection, cluster.token, WORKER_TIMEOUT_MS),
    })),
  );
  const failures: string[] = [];
  let replayedCount = 0;
  for (const { worker, selection: asked, result } of answers) {
    const letters = asked === "all" ? "its letters" : asked.join(", ");
    if (!result.ok) {
      failures.push(
        result.unknown
          ? `${workerName(worker)} did not answer (${result.error}): whether ${letters} were replayed is not known; list again to see`
          : `${workerName(worker)} replayed nothing of ${letters}: ${result.error}`,
      );
      continue;
    }
    for (const letter of result.replayed) process.stdout.write(`replayed ${letter.id} (${what(letter)})\n`);
    replayedCount += result.replayed.length;
  }
  process.stdout.write(`${replayedCount} dead letter(s) replayed in ${cluster.name}\n`);
  if (selection === "all" && partial !== undefined) failures.push(`not asked: ${partial}`);
  if (failures.length > 0) throw new CommandError(failures.join("; "));
}
