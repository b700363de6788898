// A function's own failure message, as the runtime's log lines quote it. Eddy's SDK names
// the address in its messages ("example/person (id x) failed: …") for readers who see
// them alone; the runtime's lines name the address already, so the SDK's naming becomes
// "the function" there instead of saying the address twice.
import type { Address } from "../core/address.ts";

export function functionMessage(target: Address, message: string): string {
  const named = `${target.typename} (id ${target.id})`;
  return message.startsWith(named) ? `the function${message.slice(named.length)}` : message;
}
