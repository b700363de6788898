// The admin API (docs/admin-api.md) as the UI calls it. Paths are resolved against the page's
// own URL (/ui/ → ../v1/…), so the UI also works behind a proxy that mounts Eddy under a prefix.
// The bearer token lives in sessionStorage (gone when the tab closes); a 401 asks the person for
// it once, however many requests were refused, and retries them.

const TOKEN_KEY = "eddy.adminToken";

/** An answer the API refused: its HTTP status and the `code` and `message` of its JSON body. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** @type {((reason: string) => Promise<void>) | undefined} */
let askForToken;
/** @type {Promise<void> | undefined} */
let asking;

/**
 * The app registers how to ask for a token: a dialog whose promise settles once one is stored.
 * @param {(reason: string) => Promise<void>} ask
 */
export function onTokenNeeded(ask) {
  askForToken = ask;
}

export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

/** @param {string} token */
export function storeToken(token) {
  if (token === "") sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/**
 * A percent-encoded address path: `example/person` + `seth` → `example/person/seth`.
 * The typename splits at its last "/" (a namespace may hold dots, never a slash in StateFun).
 * @param {string} typename
 * @param {string} [id]
 */
export function addressPath(typename, id) {
  const slash = typename.lastIndexOf("/");
  const path = `${encodeURIComponent(typename.slice(0, slash))}/${encodeURIComponent(typename.slice(slash + 1))}`;
  return id === undefined ? path : `${path}/${encodeURIComponent(id)}`;
}

/**
 * A query string from the defined entries of `query`: `?limit=50&after=x`, or "".
 * @param {Record<string, string | number | undefined>} query
 */
export function queryString(query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text === "" ? "" : `?${text}`;
}

/**
 * Calls the admin API: `api("GET", "v1/stats")`. Resolves with the parsed JSON body; rejects
 * with an ApiError (or the fetch's own error when the listener cannot be reached).
 * @param {string} method
 * @param {string} path relative to the listener's root, without a leading "/"
 * @param {{ body?: unknown, signal?: AbortSignal }} [options]
 * @returns {Promise<any>}
 */
export async function api(method, path, options = {}) {
  const url = new URL(`../${path}`, document.baseURI);
  for (;;) {
    /** @type {Record<string, string>} */
    const headers = { accept: "application/json" };
    const token = storedToken();
    if (token !== "") headers.authorization = `Bearer ${token}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(url, {
      method,
      headers,
      body: options.body === undefined ? null : JSON.stringify(options.body),
      signal: options.signal ?? null,
      cache: "no-store",
    });
    if (response.status === 401 && askForToken !== undefined) {
      const reason = token === "" ? "This Eddy needs its admin token." : "That token was refused.";
      asking ??= askForToken(reason).finally(() => {
        asking = undefined;
      });
      await asking;
      continue;
    }
    const text = await response.text();
    /** @type {any} */
    let body = null;
    try {
      body = text === "" ? null : JSON.parse(text);
    } catch {
      throw new ApiError(response.status, "bad-response", `${method} /${path}: not JSON (${response.status})`);
    }
    if (!response.ok) {
      throw new ApiError(
        response.status,
        typeof body?.code === "string" ? body.code : `http-${response.status}`,
        typeof body?.message === "string" ? body.message : `${method} /${path} answered ${response.status}`,
      );
    }
    return body;
  }
}

/**
 * What to tell a person about a failed call.
 * @param {unknown} error
 */
export function describeError(error) {
  if (error instanceof ApiError) return `${error.code}: ${error.message}`;
  if (error instanceof TypeError) return `Eddy's admin listener cannot be reached (${error.message})`;
  return String(error);
}
