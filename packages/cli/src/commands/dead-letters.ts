// `eddy dead-letters list|replay`: what the failure policy set aside, and putting it back.
// Each letter is named by its id (`<partition>-<epoch>-<count>`, unique in the state directory
// or the cluster).
//
// Embedded (--state-dir): listing works while Eddy runs; replay needs it stopped and takes
// effect at its next start. A cluster worker's state directory is refused (it is only a cache
// of the partitions the worker runs; dead-letters.ts says why).
// A cluster (--cluster kafka://…/NAME, or --worker URL…): the running workers list the letters
// of the partitions they run and replay them at once, each in a commit of the letter's
// partition (cluster/dead-letter-client.ts); a worker that does not answer is named, and the
// command then fails, whatever it could do.
import { parseArgs } from "node:util";
import {
  type ClusterDeadLetters,
  collectClusterDeadLetters,
  deadLetterToJson,
  findClusterWorkers,
  type ListedDeadLetter,
  listDeadLetters,
  parseClusterUrl,
  queueReplay,
  readPropertiesFile,
  refuseClusterWorkerStateDir,
  replayOnWorker,
  runningProcess,
  selectDeadLetters,
  type WorkerEndpoint,
  workerName,
} from "@eddy/runtime";
import { readToken } from "../token.ts";
import { CommandError, UsageError } from "../usage.ts";
import { ConfigurationError } from "./run.ts";

/** How long one worker may take to answer a listing or a replay. */
const WORKER_TIMEOUT_MS = 30_000;
/** How long a rebalancing group is asked again for its members. */
const GROUP_SETTLE_MS = 15_000;

function describe({ id, letter }: ListedDeadLetter): string {
  const where =
    letter.ingress !== undefined
      ? `ingress ${letter.ingress} (for ${letter.target.typename}, not replayable)`
      : letter.egress === undefined
        ? `${letter.target.typename}/${letter.target.id}`
        : `egress ${letter.egress} (from ${letter.target.typename}/${letter.target.id})`;
  return `${id}  ${new Date(letter.atMs).toISOString()}  ${where}  ${letter.invocations.length} message(s)\n    ${letter.reason}`;
}

function printLetters(letters: readonly ListedDeadLetter[], json: boolean, summary: string): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(letters.map(deadLetterToJson))}\n`);
    return;
  }
  for (const letter of letters) process.stdout.write(`${describe(letter)}\n`);
  process.stdout.write(`${summary}\n`);
}

function what({ letter }: ListedDeadLetter): string {
  const egress = letter.egress === undefined ? "" : `egress ${letter.egress} from `;
  return `${egress}${letter.target.typename}/${letter.target.id}`;
}

export async function deadLettersCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      "state-dir": { type: "string" },
      all: { type: "boolean" },
      json: { type: "boolean" },
      cluster: { type: "string" },
      "cluster-config": { type: "string" },
      worker: { type: "string", multiple: true },
      "token-file": { type: "string" },
    },
  });
  const [action, ...rest] = positionals;
  if (action !== "list" && action !== "replay") {
    throw new UsageError(
      action === undefined ? "give list or replay" : `unknown action "${action}"; expected list or replay`,
    );
  }
  if (action === "list" && rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(" ")}`);
  if (action === "replay" && (rest.length === 0) === (values.all !== true)) {
    throw new UsageError("give dead letter ids or --all");
  }
  const inCluster = values.cluster !== undefined || values.worker !== undefined;
  if (inCluster) {
    if (values["state-dir"] !== undefined) {
      throw new UsageError(
        "--state-dir is for an embedded Eddy; a cluster's dead letters are asked of its workers (--cluster or --worker)",
      );
    }
    const cluster = await clusterTarget(values);
    if (action === "list") await listInCluster(cluster, values.json === true);
    else await replayInCluster(cluster, values.all === true ? "all" : rest);
    return;
  }
  for (const flag of ["cluster-config", "token-file"] as const) {
    if (values[flag] !== undefined) throw new UsageError(`--${flag} needs --cluster or --worker`);
  }
  const stateDir = values["state-dir"] ?? "eddy-state";
  if (action === "list") {
    const letters = await listDeadLetters(stateDir);
    printLetters(letters, values.json === true, `${letters.length} dead letter(s) in ${stateDir}`);
    return;
  }
  // Before asking whether Eddy runs there: stopping a cluster worker is not the way to replay.
  await refuseClusterWorkerStateDir(stateDir, "replay");
  const pid = runningProcess(stateDir);
  if (pid !== undefined) {
    throw new ConfigurationError(
      `Eddy (process ${pid}) is running on ${stateDir}; stop it first, the replay happens at its next start`,
    );
  }
  const result = await queueReplay(stateDir, values.all === true ? "all" : rest);
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
  const address = parseClusterUrl(values.cluster as string);
  if (!address.ok) throw new UsageError(`--cluster ${address.message}`);
  let properties: ReadonlyMap<string, string> = new Map();
  const configPath = values["cluster-config"];
  if (configPath !== undefined) {
    const read = readPropertiesFile(configPath);
    if (!read.ok) throw new UsageError(`--cluster-config ${read.message}`);
    properties = read.value;
  }
  const found = await findClusterWorkers({
    address: address.value,
    properties,
    propertiesSource: configPath ?? "--cluster",
    settleWaitMs: GROUP_SETTLE_MS,
  });
  if (!found.ok) throw new CommandError(found.error);
  return { name: `cluster ${address.value.name}`, workers: found.workers, token };
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
