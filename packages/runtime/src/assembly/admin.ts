// The admin listener and the metrics behind it, as both modes assemble them: the metrics exist
// only when the listener is asked for (RuntimeOptions.admin), so a runtime without it counts
// nothing; the listener opens before the store, so a port in use costs no restore; the levels
// it reports (backlogs, delayed messages, disk, lag) are read from the engine once it runs.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Engine } from "../engine/engine.ts";
import { errorMessage } from "../errors.ts";
import type { Connector } from "../io/connector.ts";
import { AdminServer } from "../observe/admin-server.ts";
import { type RuntimeGauges, RuntimeMetrics } from "../observe/metrics.ts";
import type { Closers } from "./closers.ts";
import type { RuntimeOptions } from "./options.ts";
import { StartupError } from "./startup-error.ts";

/** The metrics of a runtime with an admin listener; undefined without one. */
export function newMetrics(options: RuntimeOptions): RuntimeMetrics | undefined {
  return options.admin === undefined ? undefined : new RuntimeMetrics();
}

/**
 * Opens the admin listener (its close registered with `closers`) and returns its URL; undefined
 * without one. A port that cannot be had is a StartupError naming it and the flag that chose it.
 */
export async function openAdmin(
  options: RuntimeOptions,
  metrics: RuntimeMetrics | undefined,
  closers: Closers,
): Promise<string | undefined> {
  if (options.admin === undefined || metrics === undefined) return undefined;
  const host = options.host ?? "127.0.0.1";
  const { port } = options.admin;
  const server = new AdminServer({ port, host, token: options.token, metrics });
  try {
    const url = await server.listen();
    closers.defer("the admin listener", () => server.close());
    return url;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const where = `the admin listener cannot listen on port ${port} of ${host}`;
    // The port's fault names --admin-port; anything else (no such address here, a name that
    // does not resolve) is the host's, and names --host.
    throw new StartupError(
      code === "EADDRINUSE"
        ? `${where}: it is in use (--admin-port)`
        : code === "EACCES"
          ? `${where}: it needs privileges this process lacks (--admin-port)`
          : `${where} (--host): ${errorMessage(error)}`,
    );
  }
}

/** The levels /metrics reads at each scrape, from the running engine and connectors. */
export function runtimeGauges(engine: Engine, stateDir: string, connectors: readonly Connector[]): RuntimeGauges {
  return {
    functionTypes: () => engine.functionTypeLoads(),
    delayedMessagesPending: () => engine.delayedMessagesPending,
    stateBytesOnDisk: () => diskBytes(stateDir, 3),
    admission: () => engine.admission,
    sourceLags: async () =>
      (await Promise.all(connectors.map((connector) => connector.sourceLags?.() ?? Promise.resolve([])))).flat(),
  };
}

/** Disk space the files under `path` take (allocated blocks), `depth` levels down. */
function diskBytes(path: string, depth: number): number {
  let bytes = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) {
      if (depth > 1) bytes += diskBytes(child, depth - 1);
    } else if (entry.isFile()) {
      // A file removed between the listing and its stat (a log segment, a snapshot) takes nothing.
      const stats = statSync(child, { throwIfNoEntry: false });
      if (stats !== undefined) bytes += stats.blocks * 512;
    }
  }
  return bytes;
}
