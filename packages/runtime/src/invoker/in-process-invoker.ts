// Invokes functions defined with Eddy's SDK in this process: no HTTP hop, but the same
// protocol bytes, so in-process and remote functions behave identically.
import { decodeFromFunction, encodeToFunction, type Init, type ToFunction } from "@eddy/protocol";
import type { Endpoint } from "@eddy/sdk";
import { type Address, formatAddress } from "../core/address.ts";
import type { InvokeOutcome, Invoker } from "../engine/engine.ts";

export class InProcessInvoker implements Invoker {
  readonly #endpoint: Endpoint;

  constructor(endpoint: Endpoint) {
    this.#endpoint = endpoint;
  }

  async invoke(target: Address, request: Init<ToFunction>, attempt: number): Promise<InvokeOutcome> {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * 2 ** (attempt - 1), 60_000)));
    const result = await this.#endpoint.invoke(encodeToFunction(request));
    if (!result.ok) return { ok: false, reason: `${formatAddress(target)}: ${result.message}` };
    const decoded = decodeFromFunction(result.body);
    return decoded.ok ? { ok: true, response: decoded.value } : { ok: false, reason: decoded.error };
  }

  async close(): Promise<void> {}
}
