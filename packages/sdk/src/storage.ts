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
import { STATE_SNAPSHOT, type StateSnapshot, type WithStateSnapshot } from "./types.ts";

const SLOTS = Symbol("eddy.storage.slots");

interface Slots {
  /** Each state's value as received; undefined when it had none. */
  readonly bytes: (Uint8Array | undefined)[];
  /** Each assigned state's snapshot (its bytes, or the type's cheaper stand-in); undefined when deleted. */
  readonly snapshots: unknown[];
  /** Per state, how its snapshots are taken, read and turned into bytes (shared by every instance). */
  readonly codecs: readonly StateSnapshot<unknown, unknown>[];
  readonly values: unknown[];
  readonly decoded: boolean[];
  readonly written: boolean[];
}

interface StorageObject {
  [SLOTS]: Slots;
}

export type StorageFactory = (received: (Uint8Array | undefined)[]) => object;

/** Snapshots as bytes: serialize on assignment, deserialize on the next read. */
function bytesSnapshot(spec: StateSpec): StateSnapshot<unknown, unknown> {
  return {
    take: (value) => spec.type.serialize(value),
    read: (snapshot) => spec.type.deserialize(snapshot as Uint8Array),
    bytes: (snapshot) => snapshot as Uint8Array,
  };
}

function snapshotCodec(spec: StateSpec): StateSnapshot<unknown, unknown> {
  return (spec.type as WithStateSnapshot<unknown>)[STATE_SNAPSHOT] ?? bytesSnapshot(spec);
}

/** Builds the storage prototype for one function type and returns a factory for instances. */
export function storageFactory(functionTypename: string, specs: readonly StateSpec[]): StorageFactory {
  const prototype: object = Object.create(null);
  const codecs = specs.map(snapshotCodec);
  specs.forEach((spec, index) => {
    const codec = codecs[index] as StateSnapshot<unknown, unknown>;
    Object.defineProperty(prototype, spec.name, {
      enumerable: true,
      // No closures here: these run on every state access of every invocation.
      get(this: StorageObject) {
        const slots = this[SLOTS];
        if (!slots.decoded[index]) {
          try {
            slots.values[index] = slots.written[index]
              ? codec.read(slots.snapshots[index])
              : spec.type.deserialize(slots.bytes[index] as Uint8Array);
          } catch (cause) {
            throw stateError(functionTypename, spec, "read", cause);
          }
          slots.decoded[index] = true;
        }
        return slots.values[index];
      },
      set(this: StorageObject, value: unknown) {
        const slots = this[SLOTS];
        let snapshot: unknown;
        if (value !== undefined) {
          try {
            snapshot = codec.take(value);
          } catch (cause) {
            throw stateError(functionTypename, spec, "written", cause);
          }
        }
        slots.snapshots[index] = snapshot;
        slots.values[index] = undefined;
        slots.decoded[index] = value === undefined; // read back from the snapshot on the next read
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
      snapshots: new Array(count),
      codecs,
      values: new Array(count),
      // A state received without a value reads as undefined without decoding anything.
      decoded: received.map((bytes) => bytes === undefined),
      written: new Array(count).fill(false),
    };
    return Object.seal(storage);
  };
}

function stateError(functionTypename: string, spec: StateSpec, doing: "read" | "written", cause: unknown): TypeError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new TypeError(
    `${functionTypename}: state "${spec.name}" could not be ${doing} as ${spec.type.typename}: ${reason}`,
  );
}

/** The mutations of one batch: assigned states only, in declaration order. */
export function stateMutations(storage: object, specs: readonly StateSpec[]): PersistedValueMutation[] {
  const slots = (storage as StorageObject)[SLOTS];
  const mutations: PersistedValueMutation[] = [];
  for (let index = 0; index < specs.length; index++) {
    if (!slots.written[index]) continue;
    const spec = specs[index] as StateSpec;
    const snapshot = slots.snapshots[index];
    const value =
      snapshot === undefined ? undefined : (slots.codecs[index] as StateSnapshot<unknown, unknown>).bytes(snapshot);
    if (value === undefined) {
      mutations.push({ mutationType: MutationType.DELETE, stateName: spec.name, stateValue: null });
    } else {
      const stateValue: TypedValue = { typename: spec.type.typename, hasValue: true, value };
      mutations.push({ mutationType: MutationType.MODIFY, stateName: spec.name, stateValue });
    }
  }
  return mutations;
}
