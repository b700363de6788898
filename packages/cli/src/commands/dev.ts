// `eddy dev <functions.ts> --module <module.yaml>`: the runtime and your TypeScript
// functions (Eddy SDK) in one process, no HTTP hop. Saving the functions file reloads it
// (the file itself; modules it imports stay as first loaded, which Node's ESM cache decides).
// With --threads N, every partition thread imports the file, and a reload imports it again in each.
import { watch } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { startRuntime } from "@eddy/runtime";
import { type AnyStatefulFunction, createEndpoint, exportedFunctions } from "@eddy/sdk";
import { ADMIN_OPTIONS, adminFlags, adminForThreads, printAdminUrl } from "../admin-flags.ts";
import { ADMISSION_OPTIONS, admissionFlags } from "../admission-flags.ts";
import { parseIngressBodyLimit } from "../body-limit.ts";
import { CHECKPOINT_OPTIONS, checkpointSettings } from "../checkpoint-flags.ts";
import { LOG_OPTIONS, logLevelFlag } from "../log-flags.ts";
import { parseRetention } from "../retention.ts";
import { readToken } from "../token.ts";
import { UsageError } from "../usage.ts";
import { loadModulesOrThrow, parseThreads, StoppedError } from "./run.ts";

/** The functions file's URL; each reload's is new, so that Node imports the file again. */
function functionsUrl(path: string, version: number): string {
  return `${pathToFileURL(resolve(path)).href}${version === 0 ? "" : `?reload=${version}`}`;
}

async function importFunctions(path: string, version: number): Promise<AnyStatefulFunction[]> {
  return exportedFunctions((await import(functionsUrl(path, version))) as Record<string, unknown>);
}

export async function devCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      module: { type: "string", short: "m", multiple: true },
      "state-dir": { type: "string" },
      host: { type: "string" },
      "token-file": { type: "string" },
      retention: { type: "string" },
      "ingress-body-limit": { type: "string" },
      threads: { type: "string" },
      ...ADMISSION_OPTIONS,
      ...ADMIN_OPTIONS,
      ...CHECKPOINT_OPTIONS,
      ...LOG_OPTIONS,
    },
  });
  const [functionsPath, ...extra] = positionals;
  if (functionsPath === undefined) throw new UsageError("give the module that exports your functions");
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
  const modules = values.module ?? [];
  if (modules.length === 0) throw new UsageError("give --module <module.yaml> for the ingresses and egresses");

  const token = readToken(values["token-file"]);
  const retentionMs = parseRetention(values.retention);
  const ingressBodyBytesLimit = parseIngressBodyLimit(values["ingress-body-limit"]);
  const threads = parseThreads(values.threads) ?? 1;
  const admission = admissionFlags(values);
  const admin = adminForThreads(adminFlags(values, undefined), values, threads);
  const checkpoints = checkpointSettings(values);
  const logLevel = logLevelFlag(values);
  const functions = await importFunctions(functionsPath, 0);
  if (functions.length === 0) throw new UsageError(`${functionsPath} exports no stateful functions`);
  const module = await loadModulesOrThrow(modules);
  const stateDir = values["state-dir"] ?? "eddy-state";
  const typenames = functions.map((fn) => fn.typename).sort();
  // A signal (0), or the runtime cannot go on (1: a commit failed, a connector hit a bug, a
  // function failed under the stop policy): either way the runtime is stopped, never left wedged.
  let stopRequested: (code: number) => void = () => {};
  const exitCode = new Promise<number>((resolve) => {
    stopRequested = resolve;
  });
  const runtime = await startRuntime({
    module,
    stateDir,
    // Functions cannot be handed to other threads: each partition thread imports the file.
    ...(threads === 1
      ? { inProcess: createEndpoint(functions) }
      : { threads, inProcessUrl: functionsUrl(functionsPath, 0) }),
    onStop: () => stopRequested(1),
    ...(values.host === undefined ? {} : { host: values.host }),
    ...(token === undefined ? {} : { token }),
    ...(retentionMs === undefined ? {} : { retentionMs }),
    ...(ingressBodyBytesLimit === undefined ? {} : { ingressBodyBytesLimit }),
    ...admission,
    ...(admin === undefined ? {} : { admin }),
    ...logLevel,
    steerHeap: true,
    ...(checkpoints === undefined ? {} : { checkpoints }),
  });
  // Before the line that says it runs: whoever reads that line may signal at once.
  process.once("SIGINT", () => stopRequested(0));
  process.once("SIGTERM", () => stopRequested(0));
  for (const url of runtime.ingressUrls) process.stdout.write(`eddy: ingress listening on ${url}\n`);
  for (const url of runtime.egressUrls) process.stdout.write(`eddy: egress listening on ${url}\n`);
  printAdminUrl(runtime.adminUrl);
  process.stdout.write(`eddy: running ${typenames.join(", ")} in-process with state in ${stateDir}\n`);

  let version = 0;
  let reloading: Promise<void> = Promise.resolve();
  const watcher = watch(functionsPath, () => {
    reloading = reloading.then(async () => {
      try {
        version++;
        if (threads > 1) {
          try {
            await runtime.reloadInProcess(functionsUrl(functionsPath, version));
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            process.stderr.write(`eddy: not reloaded: ${message}\n`);
            return;
          }
          process.stdout.write(`eddy: reloaded ${functionsPath}\n`);
          return;
        }
        const next = await importFunctions(functionsPath, version);
        const nextTypes = next.map((fn) => fn.typename).sort();
        if (nextTypes.join() !== typenames.join()) {
          process.stderr.write(
            `eddy: not reloaded: the function types changed (${nextTypes.join(", ")}); restart eddy dev\n`,
          );
          return;
        }
        runtime.replaceInProcess(createEndpoint(next));
        process.stdout.write(`eddy: reloaded ${functionsPath}\n`);
      } catch (error) {
        process.stderr.write(`eddy: not reloaded, ${functionsPath} failed to load: ${String(error)}\n`);
      }
    });
  });
  // Keeps the process alive even when the module declares no ingress (nothing else would).
  const keepAlive = setInterval(() => {}, 1 << 30);
  const code = await exitCode;
  watcher.close();
  clearInterval(keepAlive);
  process.stdout.write("eddy: stopping\n");
  await runtime.stop();
  if (code !== 0) throw new StoppedError("stopped after a failure (see above)");
}
