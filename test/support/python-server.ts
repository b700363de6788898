// Python servers for tests and examples: a script run with the StateFun Python SDK's
// virtualenv (.tools/python, made by scripts/ensure-python.sh) that listens on 127.0.0.1
// and prints its port as its first line (see port-printing-server.ts).
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { type PortPrintingServer, startPortPrintingServer } from "./port-printing-server.ts";

const root = resolve(import.meta.dirname, "../..");
/** The interpreter of the virtualenv scripts/ensure-python.sh makes. */
export const VENV_PYTHON = resolve(root, ".tools/python/bin/python");

/** A first pip install from PyPI can take minutes; a ready virtualenv answers at once. */
const ENSURE_TIMEOUT_MS = 15 * 60_000;

/** Runs scripts/ensure-python.sh (idempotent); throws with the reason if the SDK cannot be installed. */
export function ensurePython(): void {
  const ensure = spawnSync("sh", [resolve(root, "scripts/ensure-python.sh")], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    timeout: ENSURE_TIMEOUT_MS,
  });
  if (ensure.error !== undefined) throw new Error(`scripts/ensure-python.sh: ${ensure.error.message}`);
  if (ensure.status !== 0) throw new Error(`scripts/ensure-python.sh failed (exit ${ensure.status})`);
}

export type PythonServer = PortPrintingServer;

export interface PythonServerOptions {
  /** Arguments after the script, e.g. ["0"] for any free port. */
  readonly args?: readonly string[];
  readonly cwd?: string;
  /** Also copy its stderr to this process's stderr as it comes (default: only collected, for log()). */
  readonly echoStderr?: boolean;
}

/**
 * Runs `script` with the virtualenv's Python (ensurePython() first) and resolves once it has
 * printed its port. Rejects, quoting its stderr, if it exits first or prints no port in 30 s.
 */
export function startPythonServer(script: string, options: PythonServerOptions = {}): Promise<PythonServer> {
  ensurePython();
  const args = options.args ?? [];
  return startPortPrintingServer(VENV_PYTHON, ["-B", script, ...args], {
    name: `${script} ${args.join(" ")}`.trim(),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.echoStderr === undefined ? {} : { echoStderr: options.echoStderr }),
  });
}
