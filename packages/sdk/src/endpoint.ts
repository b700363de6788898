// The generic request handler: ToFunction bytes in, FromFunction bytes out, for a set
// of function types. HTTP adapters (serve/) are thin wrappers over invoke().
//
// Semantics (statefun-protocol.md §1.7, §5.4): a declared state missing from the
// request's state list answers IncompleteInvocationContext and runs nothing;
// invocations run in order, later ones seeing earlier state changes; only assigned
// states are reported; a received value whose typename differs from the declared one
// is an error, never a silent reinterpretation.
//
// invokeMultiAddress() takes Eddy's multi-address format (@eddy/protocol's multi-address.ts):
// the calls of several addresses in one body, each run as invoke() runs a single body, and
// each call's failure that call's error result, not the whole request's.
import {
  decodeMultiAddressRequest,
  decodeToFunction,
  ExpireMode,
  encodeFromFunction,
  encodeMultiAddressResponse,
  type FromFunction,
  type Init,
  type InvocationBatchRequest,
  type PersistedValueSpec,
  type ToFunction,
} from "@eddy/protocol";
import { Address } from "./address.ts";
import { BatchContext } from "./context.ts";
import {
  type AnyStatefulFunction,
  isStatefulFunction,
  type StateDeclarations,
  type StatefulFunction,
  type StateSpec,
  type Storage,
} from "./function.ts";
import { Message } from "./message.ts";
import { type StorageFactory, stateMutations, storageFactory } from "./storage.ts";

export type InvokeErrorCode = "malformed-request" | "unknown-function" | "state-type-mismatch" | "function-error";

/** The result of a request handled as messages rather than bytes (see Endpoint.invokeMessage). */
export type InvokeMessageResult =
  | { readonly ok: true; readonly response: Init<FromFunction> }
  | { readonly ok: false; readonly status: 400 | 404 | 500; readonly code: InvokeErrorCode; readonly message: string };

export type InvokeResult =
  | { readonly ok: true; readonly body: Uint8Array }
  | { readonly ok: false; readonly status: 400 | 404 | 500; readonly code: InvokeErrorCode; readonly message: string };

/** The result of a multi-address request: the response body (every call's outcome in it), or why the request as a whole was refused. */
export type InvokeMultiAddressResult =
  | { readonly ok: true; readonly body: Uint8Array }
  | {
      readonly ok: false;
      readonly status: 400 | 413;
      readonly code: "malformed-request" | "too-many-calls";
      readonly message: string;
    };

/** The most calls one multi-address request may carry (Eddy's runtime sends at most 64). */
export const MULTI_ADDRESS_CALLS_MAX = 256;

/** Thrown by handle(); invoke() returns the same information as a value. */
export class InvokeError extends Error {
  readonly status: 400 | 404 | 500;
  readonly code: InvokeErrorCode;

  constructor(status: 400 | 404 | 500, code: InvokeErrorCode, message: string) {
    super(message);
    this.name = "InvokeError";
    this.status = status;
    this.code = code;
  }
}

interface Served {
  readonly fn: StatefulFunction;
  readonly newStorage: StorageFactory;
  readonly specIndex: ReadonlyMap<string, number>;
}

function failure(
  status: 400 | 404 | 500,
  code: InvokeErrorCode,
  message: string,
): { readonly ok: false; readonly status: 400 | 404 | 500; readonly code: InvokeErrorCode; readonly message: string } {
  return { ok: false, status, code, message };
}

const ABSENT = Symbol("absent");

function missingSpec(spec: StateSpec): Init<PersistedValueSpec> {
  const wire: Init<PersistedValueSpec> = { stateName: spec.name, typeTypename: spec.type.typename };
  if (spec.expireMode !== ExpireMode.NONE)
    wire.expirationSpec = { mode: spec.expireMode, expireAfterMillis: spec.expireAfterMs };
  return wire;
}

export class Endpoint {
  readonly #served = new Map<string, Served>();

  constructor(functions: Iterable<AnyStatefulFunction>) {
    for (const fn of functions) {
      if (!isStatefulFunction(fn))
        throw new TypeError("createEndpoint(): expected functions made by statefulFunction()");
      if (this.#served.has(fn.typename)) throw new TypeError(`createEndpoint(): ${fn.typename} is defined twice`);
      const specIndex = new Map(fn.specs.map((spec, index) => [spec.name, index]));
      this.#served.set(fn.typename, { fn, newStorage: storageFactory(fn.typename, fn.specs), specIndex });
    }
  }

  /** The function types this endpoint serves. */
  get typenames(): string[] {
    return [...this.#served.keys()];
  }

  /** Handles one request; failures come back as values with an HTTP status and a code. */
  async invoke(body: Uint8Array): Promise<InvokeResult> {
    const decoded = decodeToFunction(body);
    if (!decoded.ok) return failure(400, "malformed-request", `request body is not a ToFunction: ${decoded.error}`);
    if (decoded.value.invocation === null) {
      return failure(
        400,
        "malformed-request",
        `request body is not a ToFunction: no invocation batch (field 100) in ${body.length} bytes`,
      );
    }
    const result = await this.handleMessage(decoded.value);
    return result.ok ? { ok: true, body: encodeFromFunction(result.response) } : result;
  }

  /**
   * Handles a multi-address request: the calls run concurrently (they are for different
   * addresses), each as invoke() runs a single request, and the response holds each call's
   * FromFunction or its failure's message, in the calls' order. Only a body that is not a
   * multi-address request, or one with more than `callsMax` calls, fails as a whole.
   */
  async invokeMultiAddress(
    body: Uint8Array,
    callsMax: number = MULTI_ADDRESS_CALLS_MAX,
  ): Promise<InvokeMultiAddressResult> {
    const decoded = decodeMultiAddressRequest(body, callsMax);
    if (!decoded.ok) {
      return decoded.code === "too-many"
        ? { ok: false, status: 413, code: "too-many-calls", message: decoded.error }
        : { ok: false, status: 400, code: "malformed-request", message: decoded.error };
    }
    const results = await Promise.all(
      decoded.value.map(async (call) => {
        const result = await this.invoke(call.toFunction);
        return result.ok
          ? { ok: true as const, fromFunction: result.body }
          : { ok: false as const, error: result.message };
      }),
    );
    return { ok: true, body: encodeMultiAddressResponse(results) };
  }

  /**
   * Handles one request given as a decoded message, answering with the reply message: the
   * same as invoke() without the protocol bytes, for runtimes that run functions in their
   * own process. The request must have the decoded shape (absent sub-messages as null).
   */
  async invokeMessage(request: ToFunction): Promise<InvokeMessageResult> {
    return this.handleMessage(request);
  }

  /**
   * invokeMessage() without the promise when it is not needed: the reply comes back as a
   * plain value when every handler of the batch returned without awaiting, and as a promise
   * otherwise. For runtimes calling functions in process, where a promise per batch is a
   * measurable share of the cost.
   */
  handleMessage(request: ToFunction): InvokeMessageResult | Promise<InvokeMessageResult> {
    const batch = request.invocation;
    if (batch === null) return failure(400, "malformed-request", "ToFunction has no invocation batch");
    const target = batch.target;
    if (target === null) return failure(400, "malformed-request", "ToFunction invocation batch has no target address");
    const typename = `${target.namespace}/${target.type}`;
    const served = this.#served.get(typename);
    if (served === undefined) {
      return failure(
        404,
        "unknown-function",
        `unknown function type ${typename}; this endpoint serves ${this.typenames.join(", ") || "nothing"}`,
      );
    }
    return this.#run(served, batch, Address.fromWire(target));
  }

  /** Handles one request; throws InvokeError on failure. */
  async handle(body: Uint8Array): Promise<Uint8Array> {
    const result = await this.invoke(body);
    if (!result.ok) throw new InvokeError(result.status, result.code, result.message);
    return result.body;
  }

  #run(
    served: Served,
    batch: InvocationBatchRequest,
    self: Address,
  ): InvokeMessageResult | Promise<InvokeMessageResult> {
    const { fn, specIndex } = served;
    // Each declared state's received value; ABSENT until the request's state list names it.
    const received: (Uint8Array | undefined | typeof ABSENT)[] = new Array(fn.specs.length).fill(ABSENT);
    let absent = fn.specs.length;
    for (const entry of batch.state) {
      const index = specIndex.get(entry.stateName);
      if (index === undefined) continue; // states this function no longer declares are ignored
      if (received[index] === ABSENT) absent--;
      const value = entry.stateValue;
      if (value === null || !value.hasValue) {
        received[index] = undefined; // a repeated entry replaces the earlier one, as in the official SDKs
        continue;
      }
      const spec = fn.specs[index] as StateSpec;
      if (value.typename !== spec.type.typename) {
        return failure(
          500,
          "state-type-mismatch",
          `${fn.typename} (id ${self.id}): state "${spec.name}" holds a value of type ${value.typename}, but the function declares ${spec.type.typename}`,
        );
      }
      received[index] = value.value;
    }
    if (absent > 0) {
      const missing = fn.specs.filter((_, index) => received[index] === ABSENT);
      return { ok: true, response: { incompleteInvocationContext: { missingValues: missing.map(missingSpec) } } };
    }

    const storage = served.newStorage(received as (Uint8Array | undefined)[]) as Storage<StateDeclarations>;
    const context = new BatchContext(self, storage);
    // Handlers run one after another; the batch goes async only at the first one that returns a promise.
    for (let index = 0; index < batch.invocations.length; index++) {
      const invocation = batch.invocations[index] as (typeof batch.invocations)[number];
      context.callerOnWire = invocation.caller;
      let pending: Promise<void> | void;
      try {
        pending = fn.handle(context, Message.fromWire(invocation.argument, invocation.headers));
      } catch (cause) {
        return handlerFailure(fn, self, cause);
      }
      if (pending !== undefined) return this.#finishAsync(fn, batch, context, pending, index + 1);
    }
    return reply(fn, context);
  }

  /** The rest of a batch once one of its handlers returned a promise (`pending`, for invocation `next` - 1). */
  async #finishAsync(
    fn: StatefulFunction,
    batch: InvocationBatchRequest,
    context: BatchContext<StateDeclarations>,
    pending: Promise<void>,
    next: number,
  ): Promise<InvokeMessageResult> {
    try {
      await pending;
      for (let index = next; index < batch.invocations.length; index++) {
        const invocation = batch.invocations[index] as (typeof batch.invocations)[number];
        context.callerOnWire = invocation.caller;
        const more = fn.handle(context, Message.fromWire(invocation.argument, invocation.headers));
        if (more !== undefined) await more;
      }
    } catch (cause) {
      return handlerFailure(fn, context.self, cause);
    }
    return reply(fn, context);
  }
}

function handlerFailure(fn: StatefulFunction, self: Address, cause: unknown): InvokeMessageResult {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return failure(500, "function-error", `${fn.typename} (id ${self.id}) failed: ${reason}`);
}

/** The batch's reply: its effects in call order, then the states it assigned. */
function reply(fn: StatefulFunction, context: BatchContext<StateDeclarations>): InvokeMessageResult {
  let mutations: ReturnType<typeof stateMutations>;
  try {
    mutations = stateMutations(context.storage, fn.specs);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    return failure(
      500,
      "function-error",
      `${fn.typename} (id ${context.self.id}): state could not be written: ${reason}`,
    );
  }
  const { outgoingMessages, delayedInvocations, outgoingEgresses } = context.effects;
  return {
    ok: true,
    response: {
      invocationResult: { stateMutations: mutations, outgoingMessages, delayedInvocations, outgoingEgresses },
    },
  };
}

export function createEndpoint(functions: Iterable<AnyStatefulFunction>): Endpoint {
  return new Endpoint(functions);
}
