// Checks that Eddy's and the official SDK's replies to the bench request say the same
// thing, so the benchmark compares the same work: both decode as an InvocationResponse
// with the same state mutations (same names, kinds, typenames and decoded values) and
// no other effects, and the values are what 10 invocations must produce.
import { decodeFromFunction, type FromFunction, MutationType } from "@eddy/protocol";
import {
  INITIAL_PROFILE,
  INITIAL_SEEN,
  INT_TYPENAME,
  INVOCATIONS,
  PROFILE_TYPENAME,
  type Profile,
} from "./workload.ts";

export interface MutationSummary {
  readonly stateName: string;
  readonly mutationType: number;
  readonly typename: string;
  readonly value: unknown;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decodeValue(typename: string, bytes: Uint8Array): unknown {
  if (typename === INT_TYPENAME) {
    // IntWrapper: field 1, fixed32 (0x0d), or nothing for 0.
    if (bytes.length === 0) return 0;
    if (bytes.length !== 5 || bytes[0] !== 0x0d) throw new Error(`unexpected int wrapper bytes ${[...bytes]}`);
    return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getInt32(1, true);
  }
  return JSON.parse(utf8.decode(bytes));
}

/** The reply's state mutations in a comparable form; throws if the reply is anything else. */
export function summarize(who: string, reply: Uint8Array): MutationSummary[] {
  const decoded = decodeFromFunction(reply);
  if (!decoded.ok) throw new Error(`${who}: reply does not decode: ${decoded.error}`);
  const message: FromFunction = decoded.value;
  const result = message.invocationResult;
  if (result === null) throw new Error(`${who}: reply is not an InvocationResponse`);
  const effects = result.outgoingMessages.length + result.delayedInvocations.length + result.outgoingEgresses.length;
  if (effects !== 0) throw new Error(`${who}: reply has ${effects} unexpected messages`);
  return result.stateMutations
    .map((mutation) => {
      const value = mutation.stateValue;
      if (value === null || !value.hasValue) throw new Error(`${who}: ${mutation.stateName} has no value`);
      return {
        stateName: mutation.stateName,
        mutationType: mutation.mutationType,
        typename: value.typename,
        value: decodeValue(value.typename, value.value),
      };
    })
    .sort((a, b) => (a.stateName < b.stateName ? -1 : a.stateName > b.stateName ? 1 : 0));
}

/** What both handlers must report after the batch, sorted by state name. */
export function expectedMutations(): MutationSummary[] {
  const profile: Profile = { ...INITIAL_PROFILE, n: INITIAL_PROFILE.n + INVOCATIONS, last: INVOCATIONS - 1 };
  return [
    { stateName: "profile", mutationType: MutationType.MODIFY, typename: PROFILE_TYPENAME, value: profile },
    { stateName: "seen", mutationType: MutationType.MODIFY, typename: INT_TYPENAME, value: INITIAL_SEEN + INVOCATIONS },
  ];
}
