// @eddy/runtime's public surface.
export * from "./config/index.ts";
export { listDeadLetters, queueReplay } from "./dead-letters.ts";
export { RUNNING_MARKER, type RunningRuntime, type RuntimeOptions, runningProcess, startRuntime } from "./runtime.ts";
