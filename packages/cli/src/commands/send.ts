// `eddy send <namespace/type/id> <value>`: one message through a running Eddy's HTTP
// ingress, optionally waiting for the function's reply (request-reply). The value is text:
// a string by default; with --type, a built-in type's value written out (42, true), JSON
// for any other type when it parses as JSON, else the text's bytes.
import { parseArgs } from "node:util";
import { parseAddress, pathOf } from "../address.ts";
import { readToken } from "../token.ts";
import { CommandError, UsageError } from "../usage.ts";

const BUILTIN_PREFIX = "io.statefun.types/";
const DEFAULT_INGRESS = "http://127.0.0.1:8090/";

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** The Content-Type that makes the ingress read `value` as a value of `typename`. */
function contentTypeFor(value: string, typename: string | undefined): string {
  if (typename === undefined) return "text/plain; charset=utf-8";
  if (typename.startsWith(BUILTIN_PREFIX)) return `text/plain; charset=utf-8; typename=${typename}`;
  return isJson(value) ? `application/json; typename=${typename}` : `application/vnd.${typename}`;
}

function parseWait(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (text.trim() === "" || !Number.isFinite(seconds) || seconds < 0) {
    throw new UsageError(`--wait: "${text}" is not a number of seconds`);
  }
  return seconds;
}

export async function sendCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      type: { type: "string", short: "t" },
      wait: { type: "string", short: "w" },
      ingress: { type: "string" },
      "idempotency-key": { type: "string" },
      "token-file": { type: "string" },
    },
  });
  const [address, value, ...extra] = positionals;
  if (address === undefined || value === undefined) throw new UsageError("give the address and the value to send");
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
  const wait = parseWait(values.wait);
  const ingress = values.ingress ?? DEFAULT_INGRESS;
  let url: URL;
  try {
    url = new URL(pathOf(parseAddress(address)), ingress.endsWith("/") ? ingress : `${ingress}/`);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`--ingress: "${ingress}" is not a URL`);
  }
  const headers: Record<string, string> = { "content-type": contentTypeFor(value, values.type) };
  if (wait !== undefined) headers.prefer = `wait=${wait}`;
  if (values["idempotency-key"] !== undefined) headers["idempotency-key"] = values["idempotency-key"];
  const token = readToken(values["token-file"]);
  if (token !== undefined) headers.authorization = `Bearer ${token}`;

  let response: Response;
  try {
    response = await fetch(url, { method: "POST", headers, body: value });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new CommandError(`no Eddy ingress answered at ${url.origin} (${cause}); is \`eddy run\` running?`);
  }
  const body = await response.text();
  if (response.status === 202) {
    const location = new URL(response.headers.get("location") ?? "", url).href;
    process.stderr.write(`eddy send: accepted; no reply within ${wait} s: GET ${location} for it\n`);
    return;
  }
  if (response.status !== 200) throw new CommandError(`HTTP ${response.status}: ${body.trim()}`);
  process.stdout.write(body.endsWith("\n") ? body : `${body}\n`);
}
