// Invokes functions defined with Eddy's SDK in this process: no HTTP hop and no protocol
// bytes. The request and reply are the protocol's messages in their decoded shape (the
// core builds requests that way, typed as such; replies are normalized here), so
// in-process functions see exactly what a remote one would receive. A batch whose
// handlers all return without awaiting answers without a promise.
import { normalizeFromFunction, type ToFunction } from "@eddy/protocol";
import type { Endpoint, InvokeMessageResult } from "@eddy/sdk";
import type { Address } from "../core/address.ts";
import type { InvokeOutcome, Invoker } from "../engine/engine.ts";
import { functionMessage } from "./function-message.ts";

function outcome(target: Address, result: InvokeMessageResult): InvokeOutcome {
  // The reason does not name the address: whoever logs it does, once.
  if (!result.ok) return { ok: false, reason: functionMessage(target, result.message) };
  return { ok: true, response: normalizeFromFunction(result.response) };
}

export class InProcessInvoker implements Invoker {
  readonly #endpoint: Endpoint;

  constructor(endpoint: Endpoint) {
    this.#endpoint = endpoint;
  }

  invoke(target: Address, request: ToFunction): InvokeOutcome | Promise<InvokeOutcome> {
    const result = this.#endpoint.handleMessage(request);
    return result instanceof Promise ? result.then((settled) => outcome(target, settled)) : outcome(target, result);
  }

  async close(): Promise<void> {}
}
