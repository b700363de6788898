// The module.yaml loader: StateFun 3.x configuration in, typed ModuleConfig or precise errors out.
export {
  ConfigError,
  ConfigErrorCode,
  ConfigWarning,
  ConfigWarningCode,
  type FieldLocation,
  formatLocation,
  type SourceLocation,
} from "./diagnostics.ts";
export { formatDuration, parseDuration } from "./duration.ts";
export { ASYNC_DEFAULTS, MAX_NUM_BATCH_REQUESTS_DEFAULT, OKHTTP_DEFAULTS, parseFunctionPattern } from "./endpoint.ts";
export {
  fileReferences,
  type LoadResult,
  loadModuleFile,
  loadModuleFiles,
  mergeResults,
  parseModule,
} from "./module.ts";
export { type ResolvedFunction, resolveFunction } from "./resolve.ts";
export * from "./types.ts";
export { applyUrlTemplate, FUNCTION_NAME_PLACEHOLDER, functionUrl } from "./url-template.ts";
