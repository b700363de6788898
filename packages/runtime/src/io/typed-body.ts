// HTTP bodies <-> TypedValues, as a person expects them at the HTTP ingress.
//
// Request bodies: `application/vnd.<typename>` is the typed value's bytes as they are
// (StateFun's playground ingress); `text/plain` is text for StateFun's built-in types
// (a string, or a number or boolean written out), encoded as their wrapper messages;
// `application/json` is JSON bytes for a JSON type named by the `typename` parameter. Any
// other body keeps StateFun's playground behaviour: its bytes under io.statefun.types/string.
//
// Reply bodies: built-in types as their natural text, JSON values as application/json,
// anything else as its bytes with `Content-Type: application/vnd.<typename>`; a client
// that accepts application/vnd.* gets the bytes of any type.
import type { TypedValue } from "@eddy/protocol";
import { type Type, types } from "@eddy/sdk";

const VND = "application/vnd.";
const STRING_TYPENAME = "io.statefun.types/string";

interface MediaType {
  /** type/subtype, lower-cased. */
  readonly essence: string;
  /** The subtype as sent (typenames are case-sensitive). */
  readonly raw: string;
  readonly params: ReadonlyMap<string, string>;
}

function parseMediaType(header: string): MediaType {
  const [head = "", ...rest] = header.split(";");
  const params = new Map<string, string>();
  for (const part of rest) {
    const equals = part.indexOf("=");
    if (equals < 0) continue;
    let value = part.slice(equals + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    params.set(part.slice(0, equals).trim().toLowerCase(), value);
  }
  return { essence: head.trim().toLowerCase(), raw: head.trim(), params };
}

/** A built-in type and how its values read from and print to text. */
interface TextCodec {
  readonly type: Type<unknown>;
  readonly expected: string;
  parse(text: string): unknown;
}

const INTEGER = /^[+-]?\d+$/;

function parseNumber(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === "NaN") return Number.NaN;
  const value = Number(trimmed);
  return trimmed === "" || Number.isNaN(value) ? undefined : value;
}

const TEXT_CODECS: ReadonlyMap<string, TextCodec> = new Map<string, TextCodec>([
  [STRING_TYPENAME, { type: types.string as Type<unknown>, expected: "text", parse: (text) => text }],
  [
    types.int.typename,
    {
      type: types.int as Type<unknown>,
      expected: "a 32-bit integer",
      parse(text) {
        const trimmed = text.trim();
        const value = Number(trimmed);
        return INTEGER.test(trimmed) && value >= -(2 ** 31) && value < 2 ** 31 ? value : undefined;
      },
    },
  ],
  [
    types.long.typename,
    {
      type: types.long as Type<unknown>,
      expected: "a 64-bit integer",
      parse(text) {
        const trimmed = text.trim();
        if (!INTEGER.test(trimmed)) return undefined;
        const value = BigInt(trimmed);
        return value >= -(2n ** 63n) && value < 2n ** 63n ? value : undefined;
      },
    },
  ],
  [types.float.typename, { type: types.float as Type<unknown>, expected: "a number", parse: parseNumber }],
  [types.double.typename, { type: types.double as Type<unknown>, expected: "a number", parse: parseNumber }],
  [
    types.bool.typename,
    {
      type: types.bool as Type<unknown>,
      expected: "true or false",
      parse(text) {
        const trimmed = text.trim();
        return trimmed === "true" ? true : trimmed === "false" ? false : undefined;
      },
    },
  ],
]);

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

export type ArgumentRead =
  | { readonly ok: true; readonly argument: TypedValue }
  | { readonly ok: false; readonly status: 400 | 415; readonly message: string };

function typed(typename: string, value: Uint8Array): ArgumentRead {
  return { ok: true, argument: { typename, hasValue: true, value } };
}

/** The message an HTTP request body stands for, given its Content-Type. */
export function argumentFromBody(contentType: string | undefined, body: Uint8Array): ArgumentRead {
  const media = parseMediaType(contentType ?? "");
  if (media.essence.startsWith(VND)) return typed(media.raw.slice(VND.length), body);
  if (media.essence === "text/plain") {
    const typename = media.params.get("typename") ?? STRING_TYPENAME;
    const text = decodeUtf8(body);
    if (text === undefined) return { ok: false, status: 400, message: "text/plain body is not valid UTF-8" };
    const codec = TEXT_CODECS.get(typename);
    if (codec === undefined) return typed(typename, body);
    const value = codec.parse(text);
    if (value === undefined) {
      const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
      return {
        ok: false,
        status: 400,
        message: `text/plain body ${JSON.stringify(shown)} is not a ${typename} value (expected ${codec.expected})`,
      };
    }
    return typed(typename, codec.type.serialize(value));
  }
  if (media.essence === "application/json") {
    const typename = media.params.get("typename");
    if (typename === undefined || typename === "") {
      return {
        ok: false,
        status: 415,
        message:
          "application/json needs the message's typename: Content-Type: application/json; typename=<namespace>/<type> (or send its bytes as application/vnd.<typename>)",
      };
    }
    const text = decodeUtf8(body);
    try {
      if (text === undefined) throw new Error("not valid UTF-8");
      JSON.parse(text);
    } catch (error) {
      return { ok: false, status: 400, message: `application/json body is not JSON: ${(error as Error).message}` };
    }
    return typed(typename, body);
  }
  return typed(STRING_TYPENAME, body);
}

export interface ReplyBody {
  readonly contentType: string;
  readonly body: Uint8Array;
}

const encoder = new TextEncoder();

/** Bytes that read as a JSON object, array or string. */
function isJson(bytes: Uint8Array): boolean {
  let first = 0;
  while (
    first < bytes.length &&
    (bytes[first] === 0x20 || bytes[first] === 0x0a || bytes[first] === 0x0d || bytes[first] === 0x09)
  )
    first++;
  const lead = bytes[first];
  if (lead !== 0x7b && lead !== 0x5b && lead !== 0x22) return false; // { [ "
  const text = decodeUtf8(bytes);
  if (text === undefined) return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** How a reply reads over HTTP; `accept` is the request's Accept header. */
export function replyBody(value: TypedValue, accept: string | undefined): ReplyBody {
  const raw: ReplyBody = { contentType: `${VND}${value.typename}`, body: value.value };
  if (accept?.toLowerCase().includes(VND)) return raw;
  const codec = TEXT_CODECS.get(value.typename);
  if (codec !== undefined) {
    let decoded: unknown;
    try {
      decoded = codec.type.deserialize(value.value);
    } catch {
      return raw; // not the wrapper message its typename says: the bytes as they are
    }
    return { contentType: "text/plain; charset=utf-8", body: encoder.encode(String(decoded)) };
  }
  if (isJson(value.value)) return { contentType: "application/json", body: value.value };
  return raw;
}
