// What the s3:// and gs:// URLs share: a bucket as the host, a key prefix as the path,
// a few known query parameters, no credentials; and a server's endpoint URL.

export interface BucketUrlRules {
  readonly protocol: "s3:" | "gs:";
  /** What a good URL looks like, for the messages. */
  readonly expected: string;
  /** Where credentials come from instead of the URL. */
  readonly credentials: string;
  readonly bucketName: RegExp;
  readonly parameters: ReadonlySet<string>;
}

export type BucketUrl =
  | {
      readonly ok: true;
      readonly bucket: string;
      /** Empty, or ends with "/": prepended to every key. */
      readonly prefix: string;
      readonly parameters: ReadonlyMap<string, string>;
    }
  | { readonly ok: false; readonly error: string };

/** Reads the parts every bucket URL has; an error names the URL and what is wrong with it. */
export function readBucketUrl(url: URL, rules: BucketUrlRules): BucketUrl {
  const fail = (problem: string) => ({ ok: false as const, error: bucketUrlError(url, problem) });
  const scheme = rules.protocol.slice(0, -1);
  if (url.protocol !== rules.protocol) return fail(`not a ${scheme}:// URL (${rules.expected})`);
  if (url.username !== "" || url.password !== "")
    return fail(`credentials do not belong in the URL; ${rules.credentials}`);
  if (url.hostname === "") return fail(`names no bucket (${rules.expected})`);
  if (!rules.bucketName.test(url.hostname)) return fail(`bucket ${JSON.stringify(url.hostname)} is not a bucket name`);
  if (url.port !== "") return fail(`a bucket has no port; give the server as ?endpoint=http://host:${url.port}`);
  if (url.hash !== "") return fail("has a #fragment");
  const prefix = parsePrefix(url.pathname);
  if (!prefix.ok) return fail(prefix.error);
  const names = [...url.searchParams.keys()];
  const unknown = [...new Set(names.filter((name) => !rules.parameters.has(name)))];
  if (unknown.length > 0) {
    return fail(`unknown query parameter${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} (${rules.expected})`);
  }
  const repeated = [...new Set(names.filter((name, index) => names.indexOf(name) !== index))];
  if (repeated.length > 0) return fail(`query parameter ${repeated.join(", ")} given more than once`);
  return { ok: true, bucket: url.hostname, prefix: prefix.prefix, parameters: new Map(url.searchParams) };
}

export function bucketUrlError(url: URL, problem: string): string {
  return `checkpoint location ${url.href}: ${problem}`;
}

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
