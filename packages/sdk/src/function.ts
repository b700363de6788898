// A stateful function: its type, its declared state and its handler. Definitions are
// plain data checked once at definition time; the endpoint serves them.
import { ExpireMode } from "@eddy/protocol";
import type { Context } from "./context.ts";
import type { Message } from "./message.ts";
import { requireTypename } from "./typename.ts";
import type { Type, ValueOf } from "./types.ts";

export interface StateOptions<T> {
  readonly type: Type<T>;
  /** Expire the value this many ms after it was last written. */
  readonly expireAfterWrite?: number;
  /** Expire the value this many ms after the last invocation of the instance (reads count). */
  readonly expireAfterInvoke?: number;
}

/** A state declaration: a type, or a type with an expiry. */
// biome-ignore lint/suspicious/noExplicitAny: Type<T> is invariant in T; declarations of any value type must fit here.
export type StateDeclaration = Type<any> | StateOptions<any>;

export type StateDeclarations = Readonly<Record<string, StateDeclaration>>;

type DeclaredValue<D> = D extends StateOptions<infer T> ? T : ValueOf<D>;

/** Typed access to an instance's state: read a property, assign to write, assign `undefined` to delete. */
export type Storage<S extends StateDeclarations> = { -readonly [K in keyof S]: DeclaredValue<S[K]> | undefined };

export type Handler<S extends StateDeclarations> = (context: Context<S>, message: Message) => void | Promise<void>;

export interface FunctionOptions<S extends StateDeclarations> {
  /** The function type, "namespace/name". */
  readonly typename: string;
  readonly state?: S;
  readonly handle: Handler<S>;
}

/** One declared state, normalized. */
export interface StateSpec {
  readonly name: string;
  readonly type: Type<unknown>;
  readonly expireMode: ExpireMode;
  readonly expireAfterMs: number;
}

export interface StatefulFunction<S extends StateDeclarations = StateDeclarations> {
  readonly kind: "eddy.stateful-function";
  readonly typename: string;
  readonly specs: readonly StateSpec[];
  readonly handle: Handler<S>;
}

// Names become properties of ctx.storage and state names on the wire.
const STATE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function isType(declaration: StateDeclaration): declaration is Type<unknown> {
  return typeof (declaration as Type<unknown>).serialize === "function";
}

function toSpec(functionTypename: string, name: string, declaration: StateDeclaration): StateSpec {
  const where = `${functionTypename}: state "${name}"`;
  if (!STATE_NAME.test(name)) throw new TypeError(`${where}: a state name must be an identifier (letters, digits, _)`);
  if (isType(declaration)) return { name, type: declaration, expireMode: ExpireMode.NONE, expireAfterMs: 0 };
  const options = declaration as StateOptions<unknown>;
  if (options === null || typeof options !== "object" || !isType(options.type)) {
    throw new TypeError(`${where}: expected a type or { type, expireAfterWrite?, expireAfterInvoke? }`);
  }
  const { expireAfterWrite, expireAfterInvoke } = options;
  if (expireAfterWrite !== undefined && expireAfterInvoke !== undefined) {
    throw new TypeError(`${where}: give expireAfterWrite or expireAfterInvoke, not both`);
  }
  const expireAfterMs = expireAfterWrite ?? expireAfterInvoke;
  if (expireAfterMs === undefined) return { name, type: options.type, expireMode: ExpireMode.NONE, expireAfterMs: 0 };
  if (!Number.isSafeInteger(expireAfterMs) || expireAfterMs <= 0) {
    throw new TypeError(`${where}: the expiry must be a positive whole number of milliseconds, got ${expireAfterMs}`);
  }
  const expireMode = expireAfterWrite !== undefined ? ExpireMode.AFTER_WRITE : ExpireMode.AFTER_INVOKE;
  return { name, type: options.type, expireMode, expireAfterMs };
}

/**
 * Defines a stateful function.
 *
 *     const greeter = statefulFunction({
 *       typename: "example/greeter",
 *       state: { visits: types.int },
 *       handle(ctx, message) { ctx.storage.visits = (ctx.storage.visits ?? 0) + 1; },
 *     });
 */
export function statefulFunction<const S extends StateDeclarations = Record<never, never>>(
  options: FunctionOptions<S>,
): StatefulFunction<S> {
  requireTypename(options.typename, "statefulFunction()");
  if (typeof options.handle !== "function") throw new TypeError(`${options.typename}: handle must be a function`);
  const specs = Object.entries(options.state ?? {}).map(([name, declaration]) =>
    toSpec(options.typename, name, declaration),
  );
  return { kind: "eddy.stateful-function", typename: options.typename, specs, handle: options.handle };
}

/** A function of any state shape, as endpoints hold them. */
// biome-ignore lint/suspicious/noExplicitAny: the handler's context type is contravariant in S.
export type AnyStatefulFunction = StatefulFunction<any>;

export function isStatefulFunction(value: unknown): value is AnyStatefulFunction {
  return typeof value === "object" && value !== null && (value as StatefulFunction).kind === "eddy.stateful-function";
}

/**
 * The stateful functions a module exports, each export a function or an array of them (the last
 * one of a type wins), by type name: what `eddy serve` and `eddy dev` run of a functions file.
 */
export function exportedFunctions(module: Record<string, unknown>): AnyStatefulFunction[] {
  const found = new Map<string, AnyStatefulFunction>();
  for (const value of Object.values(module)) {
    for (const candidate of Array.isArray(value) ? value : [value]) {
      if (isStatefulFunction(candidate)) found.set(candidate.typename, candidate);
    }
  }
  return [...found.values()].sort((a, b) => a.typename.localeCompare(b.typename));
}
