// ctx.storage: one accessor property per declared state on a per-function prototype
// (built once), so reads and writes are plain property access. Values are decoded on
// first read and encoded once at the end of the batch, and only assigned states are
// reported back, as MODIFY or (for `undefined`) DELETE.
import { MutationType, type PersistedValueMutation, type TypedValue } from "@eddy/protocol";
import type { StateSpec } from "./function.ts";

const SLOTS = Symbol("eddy.storage.slots");

interface Slots {
  /** The value each state had when the batch arrived; undefined when it had none. */
  readonly received: (Uint8Array | undefined)[];
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
          const bytes = slots.received[index];
          slots.values[index] = bytes === undefined ? undefined : decodeState(functionTypename, spec, bytes);
          slots.decoded[index] = true;
        }
        return slots.values[index];
      },
      set(this: StorageObject, value: unknown) {
        const slots = this[SLOTS];
        slots.values[index] = value;
        slots.decoded[index] = true;
        slots.written[index] = true;
      },
    });
  });
  Object.freeze(prototype);
  const count = specs.length;
  return (received) => {
    const storage = Object.create(prototype) as StorageObject;
    storage[SLOTS] = {
      received,
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

/** The mutations of one batch: assigned states only, in declaration order. */
export function stateMutations(storage: object, specs: readonly StateSpec[]): PersistedValueMutation[] {
  const slots = (storage as StorageObject)[SLOTS];
  const mutations: PersistedValueMutation[] = [];
  for (let index = 0; index < specs.length; index++) {
    if (!slots.written[index]) continue;
    const spec = specs[index] as StateSpec;
    const value = slots.values[index];
    if (value === undefined) {
      mutations.push({ mutationType: MutationType.DELETE, stateName: spec.name, stateValue: null });
    } else {
      const stateValue: TypedValue = {
        typename: spec.type.typename,
        hasValue: true,
        value: spec.type.serialize(value),
      };
      mutations.push({ mutationType: MutationType.MODIFY, stateName: spec.name, stateValue });
    }
  }
  return mutations;
}
