// Which endpoint serves a function type, and at which URL: an endpoint bound to the exact
// type wins over one bound to its namespace (`ns/*`), as in StateFun's function provider lookup.
import type { FunctionTypename, FunctionUrl, HttpEndpointConfig, ModuleConfig } from "./types.ts";
import { applyUrlTemplate, functionUrl } from "./url-template.ts";

export interface ResolvedFunction {
  readonly endpoint: HttpEndpointConfig;
  readonly url: FunctionUrl;
}

export function resolveFunction(
  module: ModuleConfig,
  typename: FunctionTypename | string,
): ResolvedFunction | undefined {
  const slash = typename.indexOf("/");
  if (slash <= 0 || slash !== typename.lastIndexOf("/") || slash === typename.length - 1) return undefined;
  const namespace = typename.slice(0, slash);
  const name = typename.slice(slash + 1);
  const endpoint =
    module.endpoints.find((e) => e.functions.kind === "type" && e.functions.typename === typename) ??
    module.endpoints.find((e) => e.functions.kind === "namespace" && e.functions.namespace === namespace);
  if (endpoint === undefined) return undefined;
  const resolved = functionUrl(endpoint.urlPathTemplate, name);
  // The template was validated at load time with a stand-in name; a name that still breaks the
  // URL is passed on verbatim so the invoker's error names the exact URL it could not use.
  const url: FunctionUrl = resolved.ok
    ? resolved.url
    : { kind: "tcp", url: applyUrlTemplate(endpoint.urlPathTemplate, name) };
  return { endpoint, url };
}
