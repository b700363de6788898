// @eddy/runtime's public surface.
export * from "./config/index.ts";
export { type RunningRuntime, type RuntimeOptions, startRuntime } from "./runtime.ts";
