// The value `eddy state put` sends, from the text on the command line: read as JSON when it
// parses (42, true, {"a": 1}, "\"42\""), else taken as a string (hello, so a string needs no
// quotes unless it would parse as something else); the admin API then checks it against the
// state's type. With --base64 the text is the bytes, base64-encoded, sent as they are.
import { UsageError } from "./usage.ts";

export type StateValueBody = { readonly value: unknown } | { readonly base64: string };

export function valueBody(text: string, base64: boolean): StateValueBody {
  if (base64) {
    const compact = text.replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) {
      throw new UsageError(`--base64: "${text}" is not base64`);
    }
    return { base64: compact };
  }
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return { value: text };
  }
}
