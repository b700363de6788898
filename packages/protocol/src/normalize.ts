// Turns an encoder-side message (Init<T>: fields may be left out) into the decoded shape
// (every scalar present with its proto3 default, absent sub-messages as null): exactly
// what decode(encode(message)) would give, without the bytes. Used where both sides of
// the protocol live in one process.
import type {
  Address,
  DelayedInvocation,
  EgressMessage,
  FromFunction,
  FromFunctionInvocation,
  Init,
  InvocationBatchRequest,
  PersistedValue,
  PersistedValueMutation,
  PersistedValueSpec,
  ToFunction,
  ToFunctionInvocation,
  TypedValue,
} from "./messages.ts";

const EMPTY = new Uint8Array(0);

function address(init: Init<Address> | null | undefined): Address | null {
  if (init === null || init === undefined) return null;
  return { namespace: init.namespace ?? "", type: init.type ?? "", id: init.id ?? "" };
}

function typedValue(init: Init<TypedValue> | null | undefined): TypedValue | null {
  if (init === null || init === undefined) return null;
  return { typename: init.typename ?? "", hasValue: init.hasValue ?? false, value: init.value ?? EMPTY };
}

export function normalizeToFunction(init: Init<ToFunction>): ToFunction {
  const batch = init.invocation;
  if (batch === null || batch === undefined) return { invocation: null };
  const invocation: InvocationBatchRequest = {
    target: address(batch.target),
    state: (batch.state ?? []).map(
      (entry): PersistedValue => ({ stateName: entry.stateName ?? "", stateValue: typedValue(entry.stateValue) }),
    ),
    invocations: (batch.invocations ?? []).map(
      (entry): ToFunctionInvocation => ({ caller: address(entry.caller), argument: typedValue(entry.argument) }),
    ),
  };
  return { invocation };
}

export function normalizeFromFunction(init: Init<FromFunction>): FromFunction {
  const result = init.invocationResult;
  const incomplete = init.incompleteInvocationContext;
  return {
    invocationResult:
      result === null || result === undefined
        ? null
        : {
            stateMutations: (result.stateMutations ?? []).map(
              (mutation): PersistedValueMutation => ({
                mutationType: mutation.mutationType ?? 0,
                stateName: mutation.stateName ?? "",
                stateValue: typedValue(mutation.stateValue),
              }),
            ),
            outgoingMessages: (result.outgoingMessages ?? []).map(
              (message): FromFunctionInvocation => ({
                target: address(message.target),
                argument: typedValue(message.argument),
              }),
            ),
            delayedInvocations: (result.delayedInvocations ?? []).map(
              (delayed): DelayedInvocation => ({
                isCancellationRequest: delayed.isCancellationRequest ?? false,
                cancellationToken: delayed.cancellationToken ?? "",
                delayInMs: delayed.delayInMs ?? 0,
                target: address(delayed.target),
                argument: typedValue(delayed.argument),
              }),
            ),
            outgoingEgresses: (result.outgoingEgresses ?? []).map(
              (egress): EgressMessage => ({
                egressNamespace: egress.egressNamespace ?? "",
                egressType: egress.egressType ?? "",
                argument: typedValue(egress.argument),
              }),
            ),
          },
    incompleteInvocationContext:
      incomplete === null || incomplete === undefined
        ? null
        : {
            missingValues: (incomplete.missingValues ?? []).map(
              (spec): PersistedValueSpec => ({
                stateName: spec.stateName ?? "",
                typeTypename: spec.typeTypename ?? "",
                expirationSpec:
                  spec.expirationSpec === null || spec.expirationSpec === undefined
                    ? null
                    : {
                        mode: spec.expirationSpec.mode ?? 0,
                        expireAfterMillis: spec.expirationSpec.expireAfterMillis ?? 0,
                      },
              }),
            ),
          },
  };
}
