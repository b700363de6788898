// The control socket of a running Eddy (control-socket.ts), as the CLI uses it: `/checkpoints`
// takes a checkpoint now, `/savepoints/<name>` a savepoint (both need --checkpoints),
// `/memory` reports memory and the budget's use (bench/backlog reads it). A socket that cannot
// be had is a warning, not a failed start: only those CLI commands need it.
import type { WrittenCheckpoint } from "../checkpoint/checkpoint-writer.ts";
import type { Checkpointer } from "../checkpoint/checkpointer.ts";
import { type ControlApi, type ControlSocket, listenControlSocket, type MemoryReport } from "../control-socket.ts";
import { errorMessage } from "../errors.ts";
import { errorFields, type Logger } from "../observe/logger.ts";

export async function openControl(
  stateDir: string,
  checkpointer: Checkpointer | undefined,
  memory: () => MemoryReport,
  log: Logger,
  api?: ControlApi,
): Promise<ControlSocket | undefined> {
  try {
    return await listenControlSocket(stateDir, (path) => controlRequest(checkpointer, memory, path), api);
  } catch (error) {
    log.warn(
      `no control socket in ${stateDir} (${errorMessage(error)}); eddy checkpoints create and eddy savepoint cannot reach this process`,
      errorFields(error),
    );
    return undefined;
  }
}

/** A checkpoint just written, as the control socket and the admin API answer it. */
export function checkpointSummary(written: WrittenCheckpoint): Record<string, unknown> {
  return {
    id: written.manifest.id,
    kind: written.manifest.kind,
    name: written.manifest.name,
    seq: written.manifest.seq,
    key: written.key,
    uploadedBytes: written.uploadedBytes,
  };
}

async function controlRequest(
  checkpointer: Checkpointer | undefined,
  memory: () => MemoryReport,
  path: string,
): Promise<{ status: number; body: unknown }> {
  if (path === "/memory") return { status: 200, body: memory() };
  if (checkpointer === undefined) {
    return { status: 409, body: { error: "this Eddy runs without --checkpoints: it takes no checkpoints" } };
  }
  const summary = checkpointSummary;
  if (path === "/checkpoints") {
    const written = await checkpointer.checkpoint();
    if (written !== undefined) return { status: 200, body: summary(written) };
    return { status: 200, body: { unchanged: true, id: checkpointer.latest?.id, seq: checkpointer.latest?.seq } };
  }
  const savepoint = /^\/savepoints\/([^/]+)$/.exec(path);
  if (savepoint !== null) {
    try {
      const written = await checkpointer.checkpoint({ savepointName: decodeURIComponent(savepoint[1] as string) });
      return { status: 200, body: summary(written as WrittenCheckpoint) };
    } catch (error) {
      return { status: 409, body: { error: errorMessage(error) } };
    }
  }
  return { status: 404, body: { error: `no such control request: ${path}` } };
}
