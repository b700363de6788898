// `eddy checkpoints list | create | verify | restore <id>` and `eddy savepoint <name>`:
// what a checkpoint store holds, taking one now (through the control socket of the Eddy
// running on the state directory, or directly on a stopped one), checking that they would
// restore, and restoring one into an empty state directory. The long ones (verify, restore,
// an upload from a stopped Eddy) show their progress on a terminal. `eddy savepoint <name>
// --cluster` takes a savepoint of a whole cluster through one of its workers' admin API.
import { parseArgs } from "node:util";
import {
  allFiles,
  type BlobStore,
  type CheckpointRequest,
  type ClusterSavepointSummary,
  callControlSocket,
  checkpointStateDir,
  checkSavepointName,
  clusterOfStateDir,
  clusterSavepointManifestKey,
  decodeClusterSavepointManifest,
  hasClusterSavepoint,
  isEmptyStateDir,
  lineLogger,
  listClusterSavepoints,
  type Manifest,
  openBlobStore,
  readCatalog,
  readClusterSavepoint,
  restoreCheckpoint,
  runningProcess,
  seedClusterFromSavepoint,
  seedConnection,
  storedBytes,
  type TransferProgress,
  verifyCheckpoint,
  writeLocalCheckpoint,
} from "@eddy/runtime";
import { clusterFlags, findWorkersOf } from "../cluster-workers.ts";
import { type ProgressLine, progressLine } from "../progress-line.ts";
import { readToken } from "../token.ts";
import { CommandError, UsageError } from "../usage.ts";

const unitOf = (bytes: number) => (bytes < 1e6 ? { name: "kB", size: 1e3 } : { name: "MB", size: 1e6 });

function megabytes(bytes: number): string {
  const unit = unitOf(bytes);
  return `${(bytes / unit.size).toFixed(1)} ${unit.name}`;
}

/** `3 of 10 files, 12.3 of 45.6 MB`: both amounts in the total's unit. */
function transferred(progress: TransferProgress): string {
  const unit = unitOf(progress.bytesTotal);
  const amount = (bytes: number) => (bytes / unit.size).toFixed(1);
  return `${progress.files} of ${progress.filesTotal} files, ${amount(progress.bytes)} of ${amount(progress.bytesTotal)} ${unit.name}`;
}

/** Log lines on stderr; one arriving while a progress line is shown starts on a line of its own. */
const stderrLog = (progress: ProgressLine | undefined) =>
  lineLogger((line) => {
    progress?.end();
    process.stderr.write(`${line}\n`);
  });

async function openStore(location: string | undefined): Promise<BlobStore> {
  if (location === undefined)
    throw new UsageError("give --checkpoints <url> (file:///dir, s3://bucket/prefix, gs://bucket/prefix)");
  const opened = await openBlobStore(location);
  if (!opened.ok) throw new CommandError(opened.error);
  return opened.store;
}

const OPTIONS = {
  checkpoints: { type: "string" },
  "state-dir": { type: "string" },
  json: { type: "boolean" },
  cluster: { type: "string" },
  "cluster-config": { type: "string" },
} as const;

export async function checkpointsCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: OPTIONS });
  const [action, ...rest] = positionals;
  const stateDir = values["state-dir"] ?? "eddy-state";
  if (action !== "restore" && (values.cluster !== undefined || values["cluster-config"] !== undefined)) {
    throw new UsageError("--cluster and --cluster-config are for eddy checkpoints restore (seeding a new cluster)");
  }
  switch (action) {
    case "list":
      if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(" ")}`);
      return list(await openStore(values.checkpoints), values.json === true);
    case "verify":
      if (rest.length > 1) throw new UsageError(`unexpected arguments: ${rest.slice(1).join(" ")}`);
      return verify(await openStore(values.checkpoints), rest[0]);
    case "restore": {
      const [select, ...extra] = rest;
      if (select === undefined)
        throw new UsageError("give the checkpoint id or savepoint name to restore (eddy checkpoints list)");
      if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
      if (values.cluster !== undefined) {
        if (values["state-dir"] !== undefined)
          throw new UsageError(
            "give --cluster (seed a new cluster) or --state-dir (restore an embedded Eddy), not both",
          );
        return seedCluster(await openStore(values.checkpoints), select, values.cluster, values["cluster-config"]);
      }
      if (values["cluster-config"] !== undefined) throw new UsageError("--cluster-config needs --cluster");
      return restore(await openStore(values.checkpoints), stateDir, select);
    }
    case "create":
      if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(" ")}`);
      return create(stateDir, values.checkpoints, {});
    default:
      throw new UsageError(
        action === undefined
          ? "give list, create, verify or restore"
          : `unknown action "${action}"; expected list, create, verify or restore`,
      );
  }
}

const SAVEPOINT_OPTIONS = { ...OPTIONS, "token-file": { type: "string" } } as const;

export async function savepointCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: SAVEPOINT_OPTIONS });
  const [name, ...rest] = positionals;
  if (name === undefined) throw new UsageError("give the savepoint's name");
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(" ")}`);
  const problem = checkSavepointName(name);
  if (problem !== undefined) throw new UsageError(problem);
  if (values.cluster !== undefined) {
    // The workers write a cluster's savepoint to the store they share: a store or a directory
    // given here would be one the savepoint is not in.
    const embedded = (["state-dir", "checkpoints"] as const).filter((flag) => values[flag] !== undefined);
    if (embedded.length > 0) {
      throw new UsageError(
        `--${embedded.join(" and --")} ${embedded.length > 1 ? "are" : "is"} for an embedded Eddy; a cluster's savepoint is written by its workers to their own --checkpoints store (give --cluster alone)`,
      );
    }
    return clusterSavepoint(name, values.cluster, values["cluster-config"], values["token-file"]);
  }
  if (values["cluster-config"] !== undefined) throw new UsageError("--cluster-config needs --cluster");
  if (values["token-file"] !== undefined) {
    throw new UsageError("--token-file is for --cluster (the workers' admin API); the control socket needs none");
  }
  return create(values["state-dir"] ?? "eddy-state", values.checkpoints, { savepointName: name });
}

/**
 * How long the worker asked may take to answer: it holds every worker's commits, reads the
 * cut and waits for each worker to write its partitions to the store.
 */
const CLUSTER_SAVEPOINT_TIMEOUT_MS = 300_000;

/** What POST /v1/savepoints answers on a cluster's worker. */
type ClusterSavepointAnswer = Omit<ClusterSavepointSummary, "id" | "ms">;

function isClusterSavepointAnswer(body: unknown): body is ClusterSavepointAnswer {
  const fields = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  return (
    typeof fields.name === "string" &&
    typeof fields.cluster === "string" &&
    Array.isArray(fields.workers) &&
    (["generation", "partitions", "rows", "inboxRecords", "bytes", "heldMs"] as const).every(
      (field) => typeof fields[field] === "number",
    )
  );
}

/** Takes a savepoint of the cluster `clusterUrl` names, through one of its running workers. */
async function clusterSavepoint(
  name: string,
  clusterUrl: string,
  configPath: string | undefined,
  tokenFile: string | undefined,
): Promise<void> {
  const token = readToken(tokenFile);
  const cluster = await findWorkersOf(clusterUrl, configPath, {
    clientId: "eddy-savepoint",
    noWorkersHint: "a savepoint of a cluster is taken by its running workers; start them, then take it",
  });
  // Any worker will do: the one asked asks all the others, over their admin APIs.
  const worker = cluster.workers.find((candidate) => candidate.adminUrl !== undefined);
  if (worker === undefined) {
    const ids = cluster.workers.map((candidate) => candidate.workerId ?? candidate.url).join(", ");
    throw new CommandError(
      `no running worker of cluster ${cluster.name} (${ids}) has an admin listener: a savepoint of a cluster is taken through the workers' admin API, so start them without --admin-port off`,
    );
  }
  const asked = `worker ${worker.workerId ?? worker.url} (admin listener ${worker.adminUrl})`;
  let response: Response;
  try {
    response = await fetch(`${worker.adminUrl}/v1/savepoints`, {
      method: "POST",
      headers: {
        accept: "application/json",
        "content-type": "application/json",
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify({ name }),
      signal: AbortSignal.timeout(CLUSTER_SAVEPOINT_TIMEOUT_MS),
    });
  } catch (error) {
    if ((error as Error).name === "TimeoutError") {
      throw new CommandError(
        `${asked} did not answer within ${CLUSTER_SAVEPOINT_TIMEOUT_MS / 1000} s: whether savepoint ${name} was taken is not known (eddy checkpoints list --checkpoints on the workers' store shows it)`,
      );
    }
    const cause = (error as { cause?: unknown }).cause;
    throw new CommandError(
      `${asked} did not answer: ${cause instanceof Error ? cause.message : (error as Error).message}`,
    );
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    body = undefined;
  }
  if (response.status !== 200) {
    // The worker's refusal ({code, message}) says what was wrong in its own words.
    const said = (body as { message?: unknown } | undefined)?.message;
    let message =
      typeof said === "string" ? said : `${asked} answered POST /v1/savepoints with HTTP ${response.status}`;
    if (response.status === 401 && token === undefined)
      message += "; give the token with --token-file F (or EDDY_TOKEN)";
    throw new CommandError(message);
  }
  if (!isClusterSavepointAnswer(body)) {
    throw new CommandError(`${asked} answered POST /v1/savepoints with something other than a savepoint of a cluster`);
  }
  const workers = `${body.workers.length === 1 ? "worker" : "workers"} ${body.workers.join(", ")}`;
  process.stdout.write(
    `savepoint ${body.name} of cluster ${body.cluster} taken: ${body.partitions} partitions from ${workers} (generation ${body.generation}), ${body.rows} rows, ${body.inboxRecords} messages in flight, ${megabytes(body.bytes)}; commits held ${body.heldMs} ms\n`,
  );
}

async function list(store: BlobStore, json: boolean): Promise<void> {
  try {
    const catalog = await readCatalog(store);
    const ofClusters = await listClusterSavepoints(store);
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ ...catalog, clusterSavepoints: ofClusters.savepoints, unreadable: [...catalog.unreadable, ...ofClusters.unreadable] })}\n`,
      );
      return;
    }
    const line = (manifest: Manifest) =>
      `${manifest.kind === "savepoint" ? `savepoint ${manifest.name}` : "checkpoint"}  ${manifest.id}  ${manifest.createdAt}  commits up to ${manifest.seq}  ${megabytes(storedBytes(allFiles(manifest)))}  base + ${manifest.deltas.length} delta(s)\n`;
    for (const { manifest } of catalog.checkpoints) process.stdout.write(line(manifest));
    for (const { manifest } of catalog.savepoints) process.stdout.write(line(manifest));
    for (const manifest of ofClusters.savepoints) {
      const rows = manifest.partitions.reduce((sum, entry) => sum + entry.rows, 0);
      const waiting = manifest.partitions.reduce((sum, entry) => sum + entry.inboxRecords, 0);
      const bytes = manifest.partitions.reduce((sum, entry) => sum + (entry.object?.bytes ?? 0), 0);
      process.stdout.write(
        `savepoint ${manifest.name}  ${manifest.id}  ${manifest.createdAt}  of cluster ${manifest.cluster} (generation ${manifest.generation}, ${manifest.partitionCount} partitions)  ${rows} rows, ${waiting} messages in flight  ${megabytes(bytes)}\n`,
      );
    }
    for (const { error } of [...catalog.unreadable, ...ofClusters.unreadable])
      process.stdout.write(`unreadable  ${error}\n`);
    const savepoints = catalog.savepoints.length + ofClusters.savepoints.length;
    process.stdout.write(`${catalog.checkpoints.length} checkpoint(s), ${savepoints} savepoint(s) in ${store.url}\n`);
    if (catalog.checkpoints.length + savepoints + catalog.unreadable.length + ofClusters.unreadable.length === 0) {
      process.stdout.write("(the location holds nothing: is the URL right?)\n");
    }
  } finally {
    await store.close();
  }
}

async function verify(store: BlobStore, select: string | undefined): Promise<void> {
  try {
    const catalog = await readCatalog(store);
    const ofClusters = await listClusterSavepoints(store);
    const all = [...catalog.checkpoints, ...catalog.savepoints];
    const chosen =
      select === undefined
        ? all
        : all.filter((entry) => entry.manifest.id === select || entry.manifest.name === select);
    const chosenOfClusters =
      select === undefined
        ? ofClusters.savepoints
        : ofClusters.savepoints.filter((manifest) => manifest.name === select || manifest.id === select);
    const unreadable = [...catalog.unreadable, ...ofClusters.unreadable];
    const count = chosen.length + chosenOfClusters.length;
    if (select !== undefined && count === 0)
      throw new CommandError(`${store.url} holds no checkpoint or savepoint ${JSON.stringify(select)}`);
    if (count === 0 && unreadable.length === 0) {
      throw new CommandError(`${store.url} holds no checkpoint or savepoint to verify (is the URL right?)`);
    }
    let bad = select === undefined ? unreadable.length : 0;
    if (select === undefined) for (const { error } of unreadable) process.stdout.write(`BAD  ${error}\n`);
    const progress = progressLine();
    for (const { manifest } of chosen) {
      const result = await verifyCheckpoint(
        store,
        manifest,
        4,
        progress && ((done, total) => progress.show(`verifying ${manifest.id}: ${done}/${total} files`)),
      );
      progress?.end();
      const label = manifest.kind === "savepoint" ? `savepoint ${manifest.name} (${manifest.id})` : manifest.id;
      if (result.problems.length === 0) process.stdout.write(`ok   ${label}  ${megabytes(result.bytes)}\n`);
      else {
        bad++;
        process.stdout.write(`BAD  ${label}\n`);
        for (const problem of result.problems) process.stdout.write(`       ${problem}\n`);
      }
    }
    for (const manifest of chosenOfClusters) {
      // Every object read, its size and SHA-256 checked and decoded, as a seed reads them.
      progress?.show(`verifying savepoint ${manifest.name} of cluster ${manifest.cluster}`);
      const read = await readClusterSavepoint(store, manifest.name);
      progress?.end();
      const label = `savepoint ${manifest.name} (${manifest.id}) of cluster ${manifest.cluster}`;
      if (read.ok) {
        const bytes = manifest.partitions.reduce((sum, entry) => sum + (entry.object?.bytes ?? 0), 0);
        process.stdout.write(`ok   ${label}  ${megabytes(bytes)}\n`);
      } else {
        bad++;
        process.stdout.write(`BAD  ${label}\n       ${read.message}\n`);
      }
    }
    if (bad > 0) throw new CommandError(`${bad} checkpoint(s) or manifest(s) in ${store.url} would not restore`);
    process.stdout.write(`${count} checked in ${store.url}, all sound\n`);
  } finally {
    await store.close();
  }
}

/** Seeds the new cluster `clusterUrl` names from the cluster savepoint `name`. */
async function seedCluster(
  store: BlobStore,
  name: string,
  clusterUrl: string,
  configPath: string | undefined,
): Promise<void> {
  try {
    const { address, properties, propertiesSource } = clusterFlags(clusterUrl, configPath);
    const connection = seedConnection(address, properties, propertiesSource);
    if (!connection.ok) throw new UsageError(connection.message);
    if (!(await hasClusterSavepoint(store, name))) {
      const catalog = await readCatalog(store);
      const embedded = [...catalog.savepoints, ...catalog.checkpoints].some(
        ({ manifest }) => manifest.name === name || manifest.id === name,
      );
      throw new CommandError(
        embedded
          ? `${name} in ${store.url} is a checkpoint of an embedded Eddy: restore it with --state-dir; a cluster is seeded only from a savepoint of a cluster`
          : `${store.url} holds no savepoint of a cluster named ${JSON.stringify(name)} (eddy checkpoints list)`,
      );
    }
    const seeded = await seedClusterFromSavepoint({
      connection: connection.value,
      cluster: address.name,
      blobs: store,
      name,
    });
    if (!seeded.ok) throw new CommandError(seeded.message);
    const { manifest, rows, inboxRecords, changelogRecords, ms } = seeded.value;
    process.stdout.write(
      `seeded cluster ${address.name} from savepoint ${name} of cluster ${manifest.cluster}: ${manifest.partitionCount} partitions, ${rows} rows in ${changelogRecords} changelog records, ${inboxRecords} messages in flight (${(ms / 1000).toFixed(1)} s); start its workers with eddy run --cluster ${clusterUrl}\n`,
    );
  } finally {
    await store.close();
  }
}

/**
 * Refuses to restore a savepoint of a cluster into a state directory: it holds every partition
 * of a cluster, which only a new cluster's topics can take (eddy checkpoints restore --cluster).
 * An embedded checkpoint or savepoint of the same name or id is restored as ever.
 */
async function refuseClusterSavepoint(store: BlobStore, select: string): Promise<void> {
  // A name a savepoint could not have names no key worth reading (nor one outside the store).
  if (checkSavepointName(select) !== undefined || !(await hasClusterSavepoint(store, select))) return;
  const catalog = await readCatalog(store);
  if (
    [...catalog.checkpoints, ...catalog.savepoints].some(
      ({ manifest }) => manifest.id === select || manifest.name === select,
    )
  )
    return;
  const key = clusterSavepointManifestKey(select);
  const bytes = await store.get(key);
  const manifest = bytes === undefined ? undefined : decodeClusterSavepointManifest(`${store.url} ${key}`, bytes);
  throw new CommandError(
    `${select} in ${store.url} is a savepoint of ${manifest?.ok === true ? `cluster ${manifest.value.cluster}` : "a cluster"}: seed a new cluster from it with eddy checkpoints restore ${select} --cluster kafka://HOST:PORT/NEW-NAME`,
  );
}

async function restore(store: BlobStore, stateDir: string, select: string): Promise<void> {
  try {
    await refuseClusterSavepoint(store, select);
    if (!isEmptyStateDir(stateDir))
      throw new CommandError(`${stateDir} already holds state; restore into an empty or new state directory`);
    // Without a terminal the log carries the progress, as when Eddy restores at start.
    const progress = progressLine();
    let result: Awaited<ReturnType<typeof restoreCheckpoint>>;
    try {
      result = await restoreCheckpoint({
        store,
        stateDir,
        select,
        log: stderrLog(progress),
        ...(progress === undefined
          ? {}
          : { onProgress: (done: TransferProgress) => progress.show(`restoring ${select}: ${transferred(done)}`) }),
      });
    } finally {
      progress?.end();
    }
    if (!result.ok) throw new CommandError(result.error);
    writeLocalCheckpoint(stateDir, store.url, result.manifest);
    process.stdout.write(
      `restored ${result.manifest.kind} ${result.manifest.name ?? result.manifest.id} into ${stateDir} (${megabytes(result.bytes)} in ${(result.ms / 1000).toFixed(1)} s)\n`,
    );
  } finally {
    await store.close();
  }
}

async function create(stateDir: string, location: string | undefined, request: CheckpointRequest): Promise<void> {
  const what = request.savepointName === undefined ? "checkpoint" : `savepoint ${request.savepointName}`;
  // A worker's directory is a cache of some partitions: a checkpoint of it would restore as a
  // whole Eddy's state, missing the others and the changelog after it.
  const cluster = await clusterOfStateDir(stateDir);
  if (cluster !== undefined) {
    throw new CommandError(
      `${stateDir} is the state directory of a worker of cluster ${cluster.name}, only a cache of the partitions it runs: the workers snapshot their partitions to their --checkpoints store by themselves (every --checkpoint-interval); ${request.savepointName === undefined ? "a checkpoint of a whole cluster is its savepoint" : "a savepoint of the whole cluster is taken"} with eddy savepoint <NAME> --cluster kafka://HOST:PORT/${cluster.name}`,
    );
  }
  const pid = runningProcess(stateDir);
  if (pid !== undefined) {
    const path =
      request.savepointName === undefined ? "/checkpoints" : `/savepoints/${encodeURIComponent(request.savepointName)}`;
    let reply: { status: number; body: unknown };
    try {
      reply = await callControlSocket(stateDir, path);
    } catch (error) {
      throw new CommandError(
        `Eddy (process ${pid}) runs on ${stateDir} but its control socket did not answer (${(error as Error).message}); was it started with --checkpoints?`,
      );
    }
    const body = reply.body as { error?: string; id?: string; unchanged?: boolean; uploadedBytes?: number };
    if (reply.status !== 200) throw new CommandError(body.error ?? `HTTP ${reply.status}`);
    process.stdout.write(
      body.unchanged === true
        ? `nothing committed since checkpoint ${body.id}\n`
        : `${what} ${body.id} taken by process ${pid} (${megabytes(body.uploadedBytes ?? 0)} uploaded)\n`,
    );
    return;
  }
  if (location === undefined)
    throw new UsageError(`no Eddy runs on ${stateDir}: give --checkpoints <url> to take the ${what} directly`);
  const progress = progressLine();
  let result: Awaited<ReturnType<typeof checkpointStateDir>>;
  try {
    result = await checkpointStateDir(
      stateDir,
      location,
      request,
      stderrLog(progress),
      progress && ((done) => progress.show(`uploading ${what}: ${transferred(done)}`)),
    );
  } finally {
    progress?.end();
  }
  if (!result.ok) throw new CommandError(result.error);
  if (result.written === undefined) process.stdout.write(`nothing committed since the last checkpoint\n`);
  else
    process.stdout.write(
      `${what} ${result.written.manifest.id} taken (${megabytes(result.written.uploadedBytes)} uploaded)\n`,
    );
}
