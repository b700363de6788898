// ctx.storage: one accessor property per declared state on a per-function prototype
// (built once), so reads and writes are plain property access. Values are decoded on
// first read and encoded when assigned, and only assigned states are reported back, as
// MODIFY or (for `undefined`) DELETE. Encoding on assignment, as the official SDKs do,
// makes a later read in the same batch see exactly what will be stored (a float rounded
// to 32 bits, a JSON object as it was when assigned), so results don't depend on how
// the runtime batches invocations, and a value that cannot be encoded fails at the
// assignment.
import { MutationType, type PersistedValueMutation, type TypedValue } from "@eddy/protocol";
import type { StateSpec } from "./function.ts";

const SLOTS = Symbol("eddy.storage.slots");

interface Slots {
  /** Each state's current serialized value (first as received); undefined when it has none. */
  readonly bytes: (Uint8Array | undefined)[];
  readonly values: unknown[];
  readonly decoded: boolean[];
  readonly written: boolean[];
}

interface StorageObject {
  [SLOTS]: Slots;
}

export type StorageFactory = (received: (Uint8Array | undefined)[]) => object;

/** Builds the storage prototype for one function type and returns a factory for instances. */
export function storageFactory(functionTypename: string, specs: readonly StateSpec[]): StorageFactory {
  const prototype: object = Object.create(null);
  specs.forEach((spec, index) => {
    Object.defineProperty(prototype, spec.name, {
      enumerable: true,
      get(this: StorageObject) {
        const slots = this[SLOTS];
        if (!slots.decoded[index]) {
          const bytes = slots.bytes[index];
          slots.values[index] = bytes === undefined ? undefined : decodeState(functionTypename, spec, bytes);
          slots.decoded[index] = true;
        }
        return slots.values[index];
      },
      set(this: StorageObject, value: unknown) {
        const slots = this[SLOTS];
        slots.bytes[index] = value === undefined ? undefined : encodeState(functionTypename, spec, value);
        slots.values[index] = undefined;
        slots.decoded[index] = value === undefined; // decoded again from the stored bytes on the next read
        slots.written[index] = true;
      },
    });
  });
  Object.freeze(prototype);
  const count = specs.length;
  return (received) => {
    const storage = Object.create(prototype) as StorageObject;
    storage[SLOTS] = {
      bytes: received,
      values: new Array(count),
      decoded: new Array(count).fill(false),
      written: new Array(count).fill(false),
    };
    return Object.seal(storage);
  };
}

function decodeState(functionTypename: string, spec: StateSpec, bytes: Uint8Array): unknown {
  try {
    return spec.type.deserialize(bytes);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new TypeError(
      `${functionTypename}: state "${spec.name}" could not be read as ${spec.type.typename}: ${reason}`,
    );
  }
}

function encodeState(functionTypename: string, spec: StateSpec, value: unknown): Uint8Array {
  try {
    return spec.type.serialize(value);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new TypeError(
      `${functionTypename}: state "${spec.name}" could not be written as ${spec.type.typename}: ${reason}`,
    );
  }
}

/** The mutations of one batch: assigned states only, in declaration order. */
export function stateMutations(storage: object, specs: readonly StateSpec[]): PersistedValueMutation[] {
  const slots = (storage as StorageObject)[SLOTS];
  const mutations: PersistedValueMutation[] = [];
  for (let index = 0; index < specs.length; index++) {
    if (!slots.written[index]) continue;
    const spec = specs[index] as StateSpec;
    const value = slots.bytes[index];
    if (value === undefined) {
      mutations.push({ mutationType: MutationType.DELETE, stateName: spec.name, stateValue: null });
    } else {
      const stateValue: TypedValue = { typename: spec.type.typename, hasValue: true, value };
      mutations.push({ mutationType: MutationType.MODIFY, stateName: spec.name, stateValue });
    }
  }
  return mutations;
}
