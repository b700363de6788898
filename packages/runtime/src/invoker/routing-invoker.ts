// The runtime's one invoker: in-process functions (Eddy SDK, given to the runtime directly)
// first, the module's HTTP endpoints for every other type. `eddy dev` swaps the in-process
// functions on reload without touching the HTTP side.
import type { ToFunction } from "@eddy/protocol";
import type { Endpoint } from "@eddy/sdk";
import type { Address } from "../core/address.ts";
import type { InvokeOutcome, Invoker } from "../engine/engine.ts";
import type { HttpInvoker } from "./http-invoker.ts";
import { InProcessInvoker } from "./in-process-invoker.ts";

export class RoutingInvoker implements Invoker {
  #inProcess: InProcessInvoker | undefined;
  #inProcessTypes: ReadonlySet<string>;
  readonly #http: HttpInvoker;

  constructor(inProcess: Endpoint | undefined, http: HttpInvoker) {
    this.#inProcess = inProcess === undefined ? undefined : new InProcessInvoker(inProcess);
    this.#inProcessTypes = new Set(inProcess?.typenames ?? []);
    this.#http = http;
  }

  /** Swaps the in-process functions (eddy dev's reload); batches in flight finish on the old code. */
  replaceInProcess(endpoint: Endpoint): void {
    this.#inProcess = new InProcessInvoker(endpoint);
    this.#inProcessTypes = new Set(endpoint.typenames);
  }

  invoke(target: Address, request: ToFunction, traceparent?: string): InvokeOutcome | Promise<InvokeOutcome> {
    if (this.#inProcess !== undefined && this.#inProcessTypes.has(target.typename)) {
      return this.#inProcess.invoke(target, request);
    }
    return this.#http.invoke(target, request, traceparent);
  }

  async close(): Promise<void> {
    await this.#http.close();
  }
}
