// Typenames are "namespace/name". Like every StateFun SDK, we split on the last "/"
// and require both parts to be non-empty.

export interface TypenameParts {
  readonly namespace: string;
  readonly name: string;
}

export function parseTypename(typename: string): TypenameParts | undefined {
  const slash = typename.lastIndexOf("/");
  if (slash <= 0 || slash === typename.length - 1) return undefined;
  return { namespace: typename.slice(0, slash), name: typename.slice(slash + 1) };
}

/** Throws for a malformed typename: passing one is a programming error in the caller. */
export function requireTypename(typename: string, what: string): TypenameParts {
  const parts = typeof typename === "string" ? parseTypename(typename) : undefined;
  if (parts === undefined) {
    throw new TypeError(`${what}: "${String(typename)}" is not a typename; expected "namespace/name"`);
  }
  return parts;
}
