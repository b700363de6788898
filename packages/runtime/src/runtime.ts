// The runtime's entry point, as the CLI, the tests, the benchmarks and embedders import it:
// startRuntime and its options, assembled in assembly/ (start-runtime.ts), and what tells
// whether an Eddy runs on a state directory.
import { HOLDER_PID_FILE, stateDirHolder } from "./state-dir-lock.ts";

export type { CheckpointSettings } from "./assembly/checkpoints.ts";
export {
  INGRESS_BODY_BYTES_LIMIT_DEFAULT,
  INGRESS_BODY_BYTES_LIMIT_MAX,
  type RunningRuntime,
  type RuntimeOptions,
} from "./assembly/options.ts";
export { startRuntime } from "./assembly/start-runtime.ts";
export { StartupError } from "./assembly/startup-error.ts";
export { PLAYGROUND_EGRESS_ID } from "./io/playground/egress.ts";

/** A file in the state directory naming the process that runs on it; believed only while its lock is held. */
export const RUNNING_MARKER = HOLDER_PID_FILE;

/**
 * The pid of the live Eddy running on `stateDir` (this process included), if any. Decided by
 * the state directory's lock (state-dir-lock.ts), not by the pid file, which kill -9 leaves behind.
 */
export function runningProcess(stateDir: string): number | undefined {
  return stateDirHolder(stateDir);
}
