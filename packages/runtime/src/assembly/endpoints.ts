// The module's HTTP function endpoints as the invoker calls them. Every file an endpoint names
// (trusted CAs, client certificate and key, the key's password, the signing key) is read here,
// once, at start: a file that went missing since the module was loaded, or an empty signing
// key, is a StartupError naming the module's file:line, not a failure at the first call of
// some function type long after Eddy said it runs.
import { readFileSync } from "node:fs";
import { formatLocation } from "../config/diagnostics.ts";
import type { ResolvedFunction } from "../config/index.ts";
import type { FileReference, HttpEndpointConfig, ModuleConfig } from "../config/types.ts";
import type { HttpFunctionEndpoint } from "../invoker/http-invoker.ts";
import { StartupError } from "./startup-error.ts";

/** The default largest function reply (StateFun's payload_max_bytes); also the largest ingress body. */
export const PAYLOAD_BYTES_DEFAULT = 32 * 1024 * 1024;
/** Calls a v2 endpoint may have open at once, when it does not say. */
const OKHTTP_POOL_SIZE = 1024;

interface EndpointFiles {
  readonly tls: { ca?: string; cert?: string; key?: string; passphrase?: string } | undefined;
  readonly signingKey: string | undefined;
}

/** Reads a file an endpoint names, or throws the StartupError that says where it was named. */
function readNamed(file: FileReference, what: string): string {
  try {
    return readFileSync(file.path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new StartupError(`${formatLocation(file.source)}: cannot read the ${what} ${file.path} (${code})`);
  }
}

function readEndpointFiles(endpoint: HttpEndpointConfig): EndpointFiles {
  const transport = endpoint.transport;
  if (transport.type === "io.statefun.transports.v1/okhttp") return { tls: undefined, signingKey: undefined };
  const tls: { ca?: string; cert?: string; key?: string; passphrase?: string } = {};
  if (transport.tls.trustCaCerts !== undefined) tls.ca = readNamed(transport.tls.trustCaCerts, "trusted CA file");
  const client = transport.tls.client;
  if (client !== undefined) {
    tls.cert = readNamed(client.cert, "client certificate");
    tls.key = readNamed(client.key, "client key");
    if (client.keyPassword !== undefined) tls.passphrase = readNamed(client.keyPassword, "key password file").trim();
  }
  let signingKey: string | undefined;
  if (transport.signingKey !== undefined) {
    signingKey = readNamed(transport.signingKey, "signing key").trim();
    if (signingKey === "") {
      throw new StartupError(
        `${formatLocation(transport.signingKey.source)}: signing_key ${transport.signingKey.path} is empty`,
      );
    }
  }
  return { tls: Object.keys(tls).length === 0 ? undefined : tls, signingKey };
}

function httpEndpoint(resolved: ResolvedFunction, files: EndpointFiles): HttpFunctionEndpoint {
  const transport = resolved.endpoint.transport;
  const url = resolved.url;
  const base =
    url.kind === "tcp"
      ? { url: url.url }
      : { url: `${url.tls ? "https" : "http"}://localhost${url.path}`, unixSocketPath: url.socketPath };
  if (transport.type === "io.statefun.transports.v1/okhttp") {
    return {
      ...base,
      callTimeoutMs: transport.callTimeoutMs,
      connectTimeoutMs: transport.connectTimeoutMs,
      maxResponseBytes: PAYLOAD_BYTES_DEFAULT,
      poolSize: OKHTTP_POOL_SIZE,
    };
  }
  return {
    ...base,
    callTimeoutMs: transport.callTimeoutMs,
    connectTimeoutMs: transport.connectTimeoutMs,
    maxResponseBytes: transport.payloadBytesMax,
    poolSize: transport.poolSizeMax,
    ...(files.tls === undefined ? {} : { tls: files.tls }),
    ...(files.signingKey === undefined ? {} : { signingKey: files.signingKey }),
  };
}

/**
 * What the HTTP invoker asks for each function type: its endpoint (undefined: no endpoint in
 * the module serves it), built once per type from the files read at start.
 */
export function httpEndpoints(
  module: ModuleConfig,
  resolve: (typename: string) => ResolvedFunction | undefined,
): { endpointFor(typename: string): HttpFunctionEndpoint | undefined } {
  const files = new Map(module.endpoints.map((endpoint) => [endpoint, readEndpointFiles(endpoint)]));
  const built = new Map<string, HttpFunctionEndpoint | undefined>();
  return {
    endpointFor(typename) {
      if (!built.has(typename)) {
        const resolved = resolve(typename);
        const read = resolved === undefined ? undefined : files.get(resolved.endpoint);
        built.set(typename, resolved === undefined || read === undefined ? undefined : httpEndpoint(resolved, read));
      }
      return built.get(typename);
    },
  };
}
