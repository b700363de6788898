// State values as the admin API shows and takes them: a built-in type's value (int, long,
// float, double, bool, string) as its JSON value, bytes that are JSON as that JSON, anything
// else (protobuf, custom bytes) as base64. Writing goes the other way, and a value the state's
// type cannot hold is refused with what it expected, never stored as bytes the function would
// misread.
import { type Type, types } from "@eddy/sdk";

export type StateEncoding = "json" | "base64";

export interface ShownValue {
  readonly value: unknown;
  readonly encoding: StateEncoding;
}

interface BuiltIn {
  readonly type: Type<unknown>;
  /** The value as the type's serialize() takes it, or undefined when JSON `value` is not one. */
  readonly fromJson: (value: unknown) => unknown;
  readonly expected: string;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function longFromJson(value: unknown): bigint | undefined {
  let long: bigint;
  if (typeof value === "number" && Number.isSafeInteger(value)) long = BigInt(value);
  else if (typeof value === "string" && /^[+-]?\d{1,19}$/.test(value)) long = BigInt(value);
  else return undefined;
  return long >= INT64_MIN && long <= INT64_MAX ? long : undefined;
}

const BUILT_INS: ReadonlyMap<string, BuiltIn> = new Map<string, BuiltIn>([
  [
    types.int.typename,
    {
      type: types.int as Type<unknown>,
      expected: "a 32-bit integer",
      fromJson: (value) =>
        typeof value === "number" && Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX
          ? value
          : undefined,
    },
  ],
  [
    types.long.typename,
    {
      type: types.long as Type<unknown>,
      expected: "a 64-bit integer (a number, or digits in a string)",
      fromJson: longFromJson,
    },
  ],
  [
    types.float.typename,
    {
      type: types.float as Type<unknown>,
      expected: "a number",
      fromJson: (value) => (typeof value === "number" ? value : undefined),
    },
  ],
  [
    types.double.typename,
    {
      type: types.double as Type<unknown>,
      expected: "a number",
      fromJson: (value) => (typeof value === "number" ? value : undefined),
    },
  ],
  [
    types.bool.typename,
    {
      type: types.bool as Type<unknown>,
      expected: "true or false",
      fromJson: (value) => (typeof value === "boolean" ? value : undefined),
    },
  ],
  [
    types.string.typename,
    {
      type: types.string as Type<unknown>,
      expected: "a string",
      fromJson: (value) => (typeof value === "string" ? value : undefined),
    },
  ],
]);

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A stored value as the API shows it. */
export function showValue(typename: string, bytes: Uint8Array): ShownValue {
  const builtIn = BUILT_INS.get(typename);
  if (builtIn !== undefined) {
    try {
      const value = builtIn.type.deserialize(bytes);
      // A long beyond 2^53 stays exact as digits.
      if (typeof value === "bigint") {
        return { value: Number.isSafeInteger(Number(value)) ? Number(value) : value.toString(), encoding: "json" };
      }
      if (typeof value === "number" && !Number.isFinite(value)) return { value: String(value), encoding: "json" };
      return { value, encoding: "json" };
    } catch {
      // Not the wrapper message its typename says: shown as the bytes they are.
    }
  } else {
    const json = parseJsonBytes(bytes);
    if (json !== undefined) return json;
  }
  return { value: Buffer.from(bytes).toString("base64"), encoding: "base64" };
}

function parseJsonBytes(bytes: Uint8Array): ShownValue | undefined {
  // Only documents (objects, arrays, strings): bytes like "12" are as likely a number's text as anything.
  let first = 0;
  while (first < bytes.length && (bytes[first] === 0x20 || bytes[first] === 0x0a || bytes[first] === 0x0d)) first++;
  const lead = bytes[first];
  if (lead !== 0x7b && lead !== 0x5b && lead !== 0x22) return undefined;
  try {
    return { value: JSON.parse(strictUtf8.decode(bytes)), encoding: "json" };
  } catch {
    return undefined;
  }
}

export type ValueRead =
  | { readonly ok: true; readonly bytes: Uint8Array }
  | { readonly ok: false; readonly message: string };

/**
 * The bytes a PUT body stands for, for a state of type `typename`: `{"base64": …}` as they are,
 * `{"value": …}` serialized as the built-in type, or as JSON for any other type.
 */
export function valueBytes(typename: string, body: Record<string, unknown>): ValueRead {
  const hasValue = Object.hasOwn(body, "value");
  const hasBase64 = Object.hasOwn(body, "base64");
  if (hasValue === hasBase64) {
    return { ok: false, message: 'give the value as {"value": <JSON>} or its bytes as {"base64": "…"}, one of them' };
  }
  if (hasBase64) {
    const text = body.base64;
    if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) {
      return { ok: false, message: '"base64" is not base64 text' };
    }
    return { ok: true, bytes: Buffer.from(text, "base64") };
  }
  const builtIn = BUILT_INS.get(typename);
  if (builtIn === undefined) return { ok: true, bytes: Buffer.from(JSON.stringify(body.value), "utf8") };
  const value = builtIn.fromJson(body.value);
  if (value === undefined) {
    return {
      ok: false,
      message: `${JSON.stringify(body.value)} is not a ${typename} value (expected ${builtIn.expected})`,
    };
  }
  return { ok: true, bytes: builtIn.type.serialize(value) };
}
