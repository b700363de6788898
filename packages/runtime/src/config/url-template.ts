// StateFun's urlPathTemplate: the literal `{function.name}` becomes the function type's
// name (never its namespace), the rest is kept as written. `http+unix` / `https+unix` URLs
// carry a socket file: the first path segment ending in `.sock` ends the socket path and
// the rest is the HTTP path (`http+unix:///run/fns.sock/statefun` → /run/fns.sock, /statefun).
import type { FunctionUrl } from "./types.ts";

export const FUNCTION_NAME_PLACEHOLDER = "{function.name}";

export const URL_TEMPLATE_EXPECTED =
  "an http, https, http+unix or https+unix URL, e.g. http://functions:8000/statefun/{function.name} or http+unix:///run/functions.sock/statefun";

export type FunctionUrlResult =
  | { readonly ok: true; readonly url: FunctionUrl }
  | { readonly ok: false; readonly reason: string };

export function applyUrlTemplate(template: string, functionName: string): string {
  return template.replaceAll(FUNCTION_NAME_PLACEHOLDER, functionName);
}

export function functionUrl(template: string, functionName: string): FunctionUrlResult {
  const text = applyUrlTemplate(template, functionName);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, reason: "is not an absolute URL" };
  }
  switch (url.protocol) {
    case "http:":
    case "https:":
      if (url.hostname === "") return { ok: false, reason: "has no host" };
      return { ok: true, url: { kind: "tcp", url: text } };
    case "http+unix:":
    case "https+unix:":
      return unixUrl(url);
    default:
      return { ok: false, reason: `has the unsupported scheme ${url.protocol.slice(0, -1)}` };
  }
}

function unixUrl(url: URL): FunctionUrlResult {
  if (url.host !== "") {
    return { ok: false, reason: `names the host "${url.host}"; a unix socket URL starts with three slashes` };
  }
  const segments = url.pathname.split("/").slice(1);
  const socketIndex = segments.findIndex((segment) => segment.endsWith(".sock"));
  if (socketIndex < 0) {
    return { ok: false, reason: "names no socket file (a path segment ending in .sock)" };
  }
  const socketPath = decodeURIComponent(`/${segments.slice(0, socketIndex + 1).join("/")}`);
  const rest = segments.slice(socketIndex + 1).join("/");
  return {
    ok: true,
    url: { kind: "unix", socketPath, path: `/${rest}${url.search}`, tls: url.protocol === "https+unix:" },
  };
}
