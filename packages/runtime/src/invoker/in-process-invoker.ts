// Invokes functions defined with Eddy's SDK in this process: no HTTP hop and no protocol
// bytes. The request and reply are the protocol's messages in their decoded shape (the
// core builds requests that way, typed as such; replies are normalized here), so
// in-process functions see exactly what a remote one would receive.
import { normalizeFromFunction, type ToFunction } from "@eddy/protocol";
import type { Endpoint } from "@eddy/sdk";
import { type Address, formatAddress } from "../core/address.ts";
import type { InvokeOutcome, Invoker } from "../engine/engine.ts";

export class InProcessInvoker implements Invoker {
  readonly #endpoint: Endpoint;

  constructor(endpoint: Endpoint) {
    this.#endpoint = endpoint;
  }

  async invoke(target: Address, request: ToFunction): Promise<InvokeOutcome> {
    const result = await this.#endpoint.invokeMessage(request);
    if (!result.ok) return { ok: false, reason: `${formatAddress(target)}: ${result.message}` };
    return { ok: true, response: normalizeFromFunction(result.response) };
  }

  async close(): Promise<void> {}
}
