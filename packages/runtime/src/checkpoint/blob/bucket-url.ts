// What the s3:// and gs:// URLs share: the path as a key prefix, and a server's endpoint URL.

/** The URL path as a key prefix: "" or "a/b/", each part non-empty. */
export function parsePrefix(pathname: string): { ok: true; prefix: string } | { ok: false; error: string } {
  let path: string;
  try {
    path = decodeURIComponent(pathname.replace(/^\//, "").replace(/\/$/, ""));
  } catch {
    return { ok: false, error: `path ${pathname} is not valid percent-encoding` };
  }
  if (path === "") return { ok: true, prefix: "" };
  if (path.split("/").some((part) => part === "" || part === "." || part === "..")) {
    return { ok: false, error: `prefix ${JSON.stringify(path)}: expected a path of non-empty parts` };
  }
  return { ok: true, prefix: `${path}/` };
}

/** An endpoint given in a URL: http(s), no credentials, no query; undefined when fine, else what is wrong. */
export function checkEndpoint(endpoint: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    return "not a URL (expected http://host:port or https://host)";
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    return `scheme ${parsed.protocol} (expected http: or https:)`;
  if (parsed.username !== "" || parsed.password !== "") return "credentials do not belong in the URL";
  if (parsed.search !== "" || parsed.hash !== "") return "has a query or fragment";
  return undefined;
}
