// Sizes on the command line: bytes, or a number with a binary unit (512KiB, 32MiB, 1GiB).
import { UsageError } from "./usage.ts";

const UNIT_BYTES: Record<string, number> = { "": 1, b: 1, kib: 1 << 10, mib: 1 << 20, gib: 1 << 30 };

/** The bytes `text` says, or a usage error naming `flag` and an example of what it takes. */
export function parseSize(flag: string, text: string, example: string): number {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  const unit = UNIT_BYTES[(match?.[2] ?? "").toLowerCase()];
  const bytes = match === null || unit === undefined ? Number.NaN : Number(match[1]) * unit;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new UsageError(`${flag}: "${text}" is not a size; expected bytes or KiB/MiB/GiB, such as ${example}`);
  }
  return bytes;
}
