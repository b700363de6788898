// Message arguments as people read them. Dead letters carry each argument's bytes (base64) and
// typename; StateFun's built-in types (io.statefun.types/…) are protobuf wrappers with the value
// in field 1, anything else is shown as UTF-8 text when it is that (JSON types are), else as
// base64.

/** @param {string} base64 */
function bytesOf(base64) {
  return Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
}

/**
 * A protobuf varint at `offset`: [value, next offset]. BigInt, so a long's 64 bits survive.
 * @param {Uint8Array} bytes
 * @param {number} offset
 * @returns {[bigint, number]}
 */
function varint(bytes, offset) {
  let value = 0n;
  let shift = 0n;
  for (let at = offset; at < bytes.length; at++) {
    const byte = /** @type {number} */ (bytes[at]);
    value |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [value, at + 1];
    shift += 7n;
  }
  throw new Error("truncated varint");
}

/**
 * The value of a built-in type's wrapper (field 1), as text; undefined when `typename` is not one.
 * @param {string} typename
 * @param {Uint8Array} bytes
 */
function builtIn(typename, bytes) {
  const kind = typename.startsWith("io.statefun.types/") ? typename.slice("io.statefun.types/".length) : undefined;
  if (kind === undefined) return undefined;
  // An empty wrapper is the type's default (protobuf leaves out default values).
  if (bytes.length === 0) return kind === "string" ? '""' : kind === "bool" ? "false" : "0";
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (kind) {
    case "string": {
      const [length, start] = varint(bytes, 1);
      return JSON.stringify(
        new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(start, start + Number(length))),
      );
    }
    case "int":
      return String(BigInt.asIntN(32, varint(bytes, 1)[0]));
    case "long":
      return String(BigInt.asIntN(64, varint(bytes, 1)[0]));
    case "bool":
      return String(varint(bytes, 1)[0] !== 0n);
    case "float":
      return String(view.getFloat32(1, true));
    case "double":
      return String(view.getFloat64(1, true));
    default:
      return undefined;
  }
}

/**
 * An argument for people: the value of a built-in type, UTF-8 text, or the base64 as it is.
 * @param {string} typename
 * @param {string} base64
 * @returns {{ text: string, as: "value" | "text" | "base64" }}
 */
export function readableArgument(typename, base64) {
  try {
    const bytes = bytesOf(base64);
    const value = builtIn(typename, bytes);
    if (value !== undefined) return { text: value, as: "value" };
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    // Control characters other than whitespace mean binary that happens to be valid UTF-8.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: that is what it looks for
    if (!/[\u0000-\u0008\u000e-\u001f]/.test(text)) return { text, as: "text" };
  } catch {
    // Not base64, a wrapper that does not parse, or not UTF-8: shown as it came.
  }
  return { text: base64, as: "base64" };
}
