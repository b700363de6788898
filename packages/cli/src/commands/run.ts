// `eddy run <module.yaml>...`: the embedded runtime, or with --cluster one worker of a cluster
// on Kafka. Loads the StateFun module files (invalid configuration: every error with
// file:line, field and expectation, exit 1), keeps state in --state-dir, and on SIGTERM/SIGINT
// finishes the group commit and closes the store before exiting.
import { parseArgs } from "node:util";
import { loadModuleFiles, type ModuleConfig, startRuntime } from "@eddy/runtime";
import { ADMIN_OPTIONS, adminFlags, adminForThreads, printAdminUrl } from "../admin-flags.ts";
import { ADMISSION_OPTIONS, admissionFlags } from "../admission-flags.ts";
import { parseIngressBodyLimit } from "../body-limit.ts";
import { CHECKPOINT_OPTIONS, checkpointSettings } from "../checkpoint-flags.ts";
import { CLUSTER_OPTIONS, clusterFlags, resolveClusterSettings } from "../cluster-flags.ts";
import { LOG_OPTIONS, logLevelFlag } from "../log-flags.ts";
import { parseRetention } from "../retention.ts";
import { readToken } from "../token.ts";
import { UsageError } from "../usage.ts";

export class ConfigurationError extends Error {
  override name = "ConfigurationError";
}

/** The runtime stopped itself because it could not go on; the reason is in the log above. */
export class StoppedError extends Error {
  override name = "StoppedError";
}

/** Loads module files, printing every warning and error; throws ConfigurationError when any file is invalid. */
export async function loadModulesOrThrow(paths: readonly string[]): Promise<ModuleConfig> {
  const loaded = await loadModuleFiles(paths);
  for (const warning of loaded.warnings) process.stderr.write(`warning: ${warning.format()}\n`);
  if (!loaded.ok) {
    for (const error of loaded.errors) process.stderr.write(`error: ${error.format()}\n`);
    throw new ConfigurationError(`${loaded.errors.length} configuration error(s); nothing was started`);
  }
  return loaded.module;
}

export async function runCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      "state-dir": { type: "string" },
      host: { type: "string" },
      "failure-policy": { type: "string" },
      "token-file": { type: "string" },
      retention: { type: "string" },
      "ingress-body-limit": { type: "string" },
      threads: { type: "string" },
      ...ADMISSION_OPTIONS,
      ...ADMIN_OPTIONS,
      ...CHECKPOINT_OPTIONS,
      ...LOG_OPTIONS,
      ...CLUSTER_OPTIONS,
    },
  });
  if (positionals.length === 0) throw new UsageError("give the module.yaml file(s) to run");
  const policy = values["failure-policy"] ?? "retry";
  if (policy !== "retry" && policy !== "dead-letter" && policy !== "stop") {
    throw new UsageError(`--failure-policy: "${policy}" is not one of retry, dead-letter, stop`);
  }

  const token = readToken(values["token-file"]);
  const retentionMs = parseRetention(values.retention);
  const ingressBodyBytesLimit = parseIngressBodyLimit(values["ingress-body-limit"]);
  const threads = parseThreads(values.threads);
  const admission = admissionFlags(values);
  const checkpoints = checkpointSettings(values);
  const logLevel = logLevelFlag(values);
  const { portOffset, cluster: clusterRequest } = clusterFlags(values);
  const admin = adminForThreads(adminFlags(values, portOffset), values, threads ?? 1);
  const module = await loadModulesOrThrow(positionals);

  const stateDir = values["state-dir"] ?? "eddy-state";
  const cluster =
    clusterRequest === undefined
      ? undefined
      : resolveClusterSettings(clusterRequest, {
          module,
          stateDir,
          host: values.host,
          portOffset: portOffset ?? 0,
          warn: (line) => process.stderr.write(`${line}\n`),
        });
  let stopRequested: (code: number) => void = () => {};
  const exitCode = new Promise<number>((resolve) => {
    stopRequested = resolve;
  });
  const runtime = await startRuntime({
    module,
    stateDir,
    failurePolicy: policy,
    ...(values.host === undefined ? {} : { host: values.host }),
    ...(token === undefined ? {} : { token }),
    ...(retentionMs === undefined ? {} : { retentionMs }),
    ...(ingressBodyBytesLimit === undefined ? {} : { ingressBodyBytesLimit }),
    ...admission,
    ...(admin === undefined ? {} : { admin }),
    ...logLevel,
    steerHeap: true,
    ...(checkpoints === undefined ? {} : { checkpoints }),
    ...(portOffset === undefined ? {} : { portOffset }),
    ...(cluster === undefined ? {} : { cluster }),
    ...(threads === undefined ? {} : { threads }),
    onStop: () => stopRequested(1),
  });
  // Keeps the process alive even when the module declares no ingress (nothing else would).
  const keepAlive = setInterval(() => {}, 1 << 30);
  // Before the line that says it runs: whoever reads that line may signal at once.
  process.once("SIGINT", () => stopRequested(0));
  process.once("SIGTERM", () => stopRequested(0));
  for (const url of runtime.ingressUrls) process.stdout.write(`eddy: ingress listening on ${url}\n`);
  for (const url of runtime.egressUrls) process.stdout.write(`eddy: egress listening on ${url}\n`);
  printAdminUrl(runtime.adminUrl);
  if (cluster !== undefined) {
    process.stdout.write(
      `eddy: worker ${cluster.workerId} of cluster ${cluster.name}, reached at ${cluster.advertiseUrl}\n`,
    );
  }
  process.stdout.write(`eddy: running ${positionals.join(", ")} with state in ${stateDir}\n`);

  const code = await exitCode;
  clearInterval(keepAlive);
  process.stdout.write("eddy: stopping\n");
  await runtime.stop();
  if (code !== 0) throw new StoppedError("stopped after a failure (see above)");
}

/** --threads N: how many threads run the partitions; a whole number from 1. */
export function parseThreads(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw new UsageError(`--threads: "${text}" is not a thread count; expected a whole number from 1`);
  }
  return Number(text);
}
