// `eddy state get|put|delete|list`: a running Eddy's state, address by address, through its
// admin API (admin-client.ts: the control socket of --state-dir, or --admin URL). A write is
// made by the running process, durable before the command returns, and seen by the function's
// next invocation; with Eddy stopped there is nobody to ask, and the command says so.
import { parseArgs } from "node:util";
import { type CliAddress, formatAddress, parseAddress, parseTypename, pathOf } from "../address.ts";
import { ADMIN_CLIENT_OPTIONS, type AdminClient, adminClient } from "../admin-client.ts";
import { valueBody } from "../state-value.ts";
import { UsageError } from "../usage.ts";

const LIST_LIMIT_DEFAULT = 50;
/** The API's largest page. */
const LIST_PAGE_MAX = 1000;

/** One state value as GET /v1/state/… gives it. */
interface StateEntry {
  readonly typename: string;
  readonly value: unknown;
  readonly encoding: "json" | "base64";
  readonly writtenAtMs: number | null;
}

interface AddressState {
  readonly partition: number;
  readonly state: Readonly<Record<string, StateEntry>>;
  readonly backlog: number;
  readonly inFlight: { readonly messages: number; readonly failedAttempts: number } | null;
  readonly delayedMessages: number;
}

const OPTIONS = {
  ...ADMIN_CLIENT_OPTIONS,
  json: { type: "boolean" },
  base64: { type: "boolean" },
  typename: { type: "string" },
  prefix: { type: "string" },
  limit: { type: "string" },
  after: { type: "string" },
  all: { type: "boolean" },
} as const;

const parse = (args: string[]) => parseArgs({ args, allowPositionals: true, options: OPTIONS });
type Values = ReturnType<typeof parse>["values"];

/** Flags that only some actions take: naming one elsewhere is a mistake worth saying. */
const ACTION_FLAGS: Readonly<Record<string, readonly (keyof Values)[]>> = {
  get: ["json"],
  put: ["base64", "typename", "json"],
  delete: [],
  list: ["prefix", "limit", "after", "all", "json"],
};

export async function stateCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args);
  const [action, ...rest] = positionals;
  // Object.hasOwn: "constructor" is no action, though every object literal has one.
  const allowed = action !== undefined && Object.hasOwn(ACTION_FLAGS, action) ? ACTION_FLAGS[action] : undefined;
  if (allowed === undefined) {
    throw new UsageError(
      action === undefined
        ? "give get, put, delete or list"
        : `unknown action "${action}"; expected get, put, delete or list`,
    );
  }
  for (const flag of ["json", "base64", "typename", "prefix", "limit", "after", "all"] as const) {
    if (values[flag] !== undefined && !allowed.includes(flag)) {
      throw new UsageError(`--${flag} is not an option of eddy state ${action}`);
    }
  }
  const expect = (names: readonly string[]): string[] => {
    if (rest.length < names.length) throw new UsageError(`give ${names.join(", ")}`);
    if (rest.length > names.length) throw new UsageError(`unexpected arguments: ${rest.slice(names.length).join(" ")}`);
    return rest;
  };
  switch (action) {
    case "get": {
      const [address] = expect(["the address (namespace/type/id)"]);
      return get(adminClient(values), parseAddress(address as string), values.json === true);
    }
    case "put": {
      const [address, name, value] = expect(["the address (namespace/type/id)", "the state's name", "the value"]);
      return put(adminClient(values), parseAddress(address as string), name as string, value as string, values);
    }
    case "delete": {
      const [address, name] = expect(["the address (namespace/type/id)", "the state's name"]);
      return remove(adminClient(values), parseAddress(address as string), name as string);
    }
    default: {
      const [typename] = expect(["the function type (namespace/type)"]);
      return list(adminClient(values), typename as string, values);
    }
  }
}

function statePath(address: CliAddress, name?: string): string {
  return `/v1/state/${pathOf(address)}${name === undefined ? "" : `/${encodeURIComponent(name)}`}`;
}

/** A value as one line: JSON as JSON, bytes as `base64:…`. */
function formatValue(entry: StateEntry): string {
  return entry.encoding === "base64" ? `base64:${String(entry.value)}` : JSON.stringify(entry.value);
}

function formatEntry(name: string, entry: StateEntry): string {
  const written = entry.writtenAtMs === null ? "" : `  (written ${new Date(entry.writtenAtMs).toISOString()})`;
  return `  ${name} = ${formatValue(entry)}  [${entry.typename}]${written}`;
}

async function get(client: AdminClient, address: CliAddress, json: boolean): Promise<void> {
  const answer = await client.call<AddressState>("GET", statePath(address));
  if (json) {
    process.stdout.write(`${JSON.stringify(answer)}\n`);
    return;
  }
  const names = Object.keys(answer.state).sort();
  const lines = [`${formatAddress(address)}  (partition ${answer.partition})`];
  if (names.length === 0) lines.push("  no state");
  for (const name of names) lines.push(formatEntry(name, answer.state[name] as StateEntry));
  const inFlight =
    answer.inFlight === null
      ? "none"
      : `${answer.inFlight.messages} message(s), ${answer.inFlight.failedAttempts} failed attempt(s)`;
  lines.push(`backlog ${answer.backlog}, in flight: ${inFlight}, delayed ${answer.delayedMessages}`);
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function put(client: AdminClient, address: CliAddress, name: string, text: string, values: Values) {
  const body = {
    ...valueBody(text, values.base64 === true),
    ...(values.typename === undefined ? {} : { typename: values.typename }),
  };
  const entry = await client.call<StateEntry>("PUT", statePath(address, name), body);
  if (values.json === true) process.stdout.write(`${JSON.stringify(entry)}\n`);
  else process.stdout.write(`${formatAddress(address)}\n${formatEntry(name, entry)}\n`);
}

async function remove(client: AdminClient, address: CliAddress, name: string): Promise<void> {
  const answer = await client.call<{ deleted: boolean }>("DELETE", statePath(address, name));
  process.stdout.write(
    answer.deleted
      ? `deleted ${name} of ${formatAddress(address)}\n`
      : `${formatAddress(address)} held no ${name}; nothing deleted\n`,
  );
}

function parseLimit(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw new UsageError(`--limit: "${text}" is not a whole number of ids, 1 or more`);
  }
  return Number(text);
}

async function list(client: AdminClient, text: string, values: Values): Promise<void> {
  const typename = parseTypename(text);
  const limit = parseLimit(values.limit);
  if (limit !== undefined && values.all === true) throw new UsageError("give --limit N or --all, not both");
  const wanted = values.all === true ? Number.POSITIVE_INFINITY : (limit ?? LIST_LIMIT_DEFAULT);
  const ids: string[] = [];
  let after = values.after;
  let next: string | null = null;
  // Page by page: however many ids a type holds, each answer stays small.
  do {
    const query = new URLSearchParams({ limit: String(Math.min(LIST_PAGE_MAX, wanted - ids.length)) });
    if (after !== undefined) query.set("after", after);
    if (values.prefix !== undefined) query.set("prefix", values.prefix);
    const page = await client.call<{ ids: string[]; next: string | null }>(
      "GET",
      `/v1/state/${pathOf(typename)}?${query}`,
    );
    if (values.json !== true) for (const id of page.ids) process.stdout.write(`${id}\n`);
    ids.push(...page.ids);
    next = page.next;
    after = next ?? undefined;
  } while (next !== null && ids.length < wanted);
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify({ ids, next })}\n`);
    return;
  }
  if (next !== null) process.stderr.write(`(more: --after ${next} for the next ids, or --all)\n`);
}
