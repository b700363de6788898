// The bench/sdk workload: one ToFunction request (a 10-invocation batch for a function
// with two states) and the same function written against Eddy's SDK and against the
// official JS SDK (apache-flink-statefun 3.3.0). Shared by run.ts and equivalence.test.ts,
// so the benchmark and the check that both handlers do the same work use one definition.
import { createRequire } from "node:module";
import { encodeToFunction, type Init, type ToFunctionInvocation } from "@eddy/protocol";
import { createEndpoint, statefulFunction, types } from "@eddy/sdk";

export const FUNCTION_TYPENAME = "bench/user";
export const PROFILE_TYPENAME = "bench/Profile";
export const EVENT_TYPENAME = "bench/Event";
export const INT_TYPENAME = "io.statefun.types/int";
export const INVOCATIONS = 10;

export interface Profile {
  name: string;
  email: string;
  tags: string[];
  created: string;
  n: number;
  last: number;
}

export interface Event {
  i: number;
  pad: string;
}

const utf8 = new TextEncoder();

function intWrapper(value: number): Uint8Array {
  const bytes = new Uint8Array(5);
  bytes[0] = 0x0d; // field 1, fixed32
  new DataView(bytes.buffer).setInt32(1, value, true);
  return bytes;
}

/** The ~170-byte JSON profile the instance holds when the batch arrives. */
export const INITIAL_PROFILE: Profile = {
  name: "Ada Lovelace",
  email: "ada.lovelace@example.com",
  tags: ["analytical-engine", "poetical-science", "bernoulli"],
  created: "2026-11-24T09:30:00.000Z",
  n: 41,
  last: -1,
};

export const INITIAL_SEEN = 41;

/** The request: target, states `seen` (int) and `profile` (JSON), 10 invocations each with a caller and a JSON event. */
export function buildRequest(): Uint8Array {
  const invocations: Init<ToFunctionInvocation>[] = [];
  for (let i = 0; i < INVOCATIONS; i++) {
    const event: Event = { i, pad: "x".repeat(36) };
    invocations.push({
      caller: { namespace: "bench", type: "caller", id: `caller-${i}` },
      argument: { typename: EVENT_TYPENAME, hasValue: true, value: utf8.encode(JSON.stringify(event)) },
    });
  }
  const bytes = encodeToFunction({
    invocation: {
      target: { namespace: "bench", type: "user", id: "user-0042" },
      state: [
        { stateName: "seen", stateValue: { typename: INT_TYPENAME, hasValue: true, value: intWrapper(INITIAL_SEEN) } },
        {
          stateName: "profile",
          stateValue: {
            typename: PROFILE_TYPENAME,
            hasValue: true,
            value: utf8.encode(JSON.stringify(INITIAL_PROFILE)),
          },
        },
      ],
      invocations,
    },
  });
  // An HTTP server hands both SDKs a Buffer, so the bench does too.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export type BytesHandler = (request: Uint8Array) => Promise<Uint8Array>;

/** Eddy: the function, served by an Endpoint. */
export function eddyHandler(): BytesHandler {
  const Event = types.json<Event>(EVENT_TYPENAME);
  const user = statefulFunction({
    typename: FUNCTION_TYPENAME,
    state: { seen: types.int, profile: types.json<Profile>(PROFILE_TYPENAME) },
    handle(ctx, msg) {
      ctx.storage.seen = (ctx.storage.seen ?? 0) + 1;
      const event = msg.as(Event);
      const profile = ctx.storage.profile as Profile;
      profile.n += 1;
      profile.last = event.i;
      ctx.storage.profile = profile;
    },
  });
  const endpoint = createEndpoint([user]);
  return (request) => endpoint.handle(request);
}

// The official SDK is CommonJS without ESM entry points for its handler.
const require = createRequire(import.meta.url);

interface OfficialType {
  readonly typename: string;
}

interface OfficialStorage {
  seen: number | null;
  profile: Profile | null;
}

interface OfficialContext {
  readonly storage: OfficialStorage;
}

interface OfficialMessage {
  as<T>(type: OfficialType): T;
}

/** The official JS SDK: the same function, through its byte-level handler (what its HTTP adapters call). */
export function officialHandler(): BytesHandler {
  const { StateFun } = require("apache-flink-statefun") as {
    StateFun: { intType(): OfficialType; jsonType(typename: string): OfficialType };
  };
  const { FunctionSpec } = require("apache-flink-statefun/dist/core.js") as {
    FunctionSpec: { fromOpts(options: object): unknown };
  };
  const { handle } = require("apache-flink-statefun/dist/handler.js") as {
    handle(request: Uint8Array, fns: Record<string, unknown>): Promise<Uint8Array>;
  };
  const Event = StateFun.jsonType(EVENT_TYPENAME);
  const fns = {
    [FUNCTION_TYPENAME]: FunctionSpec.fromOpts({
      typename: FUNCTION_TYPENAME,
      specs: [
        { name: "seen", type: StateFun.intType() },
        { name: "profile", type: StateFun.jsonType(PROFILE_TYPENAME) },
      ],
      fn(ctx: OfficialContext, msg: OfficialMessage) {
        ctx.storage.seen = (ctx.storage.seen ?? 0) + 1;
        const event = msg.as<Event>(Event);
        const profile = ctx.storage.profile as Profile;
        profile.n += 1;
        profile.last = event.i;
        ctx.storage.profile = profile;
      },
    }),
  };
  return (request) => handle(request, fns);
}

export const HANDLERS = { eddy: eddyHandler, official: officialHandler } as const;
export type HandlerName = keyof typeof HANDLERS;
