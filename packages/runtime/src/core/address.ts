// Addresses on the runtime side: a function type plus an instance id. `addressKey` is
// the one string form used in maps and storage keys; ids may contain any character,
// so the key separates the parts with a NUL, which a typename cannot contain.
import type { Address as WireAddress } from "@eddy/protocol";

/** "namespace/name" */
export type FunctionTypename = string & { readonly __brand: "FunctionTypename" };

export interface Address {
  readonly typename: FunctionTypename;
  readonly id: string;
}

export type AddressKey = string & { readonly __brand: "AddressKey" };

export function addressKey(address: Address): AddressKey {
  return `${address.typename}\u0000${address.id}` as AddressKey;
}

export function fromWireAddress(wire: WireAddress): Address {
  return { typename: `${wire.namespace}/${wire.type}` as FunctionTypename, id: wire.id };
}

export function toWireAddress(address: Address): WireAddress {
  const slash = address.typename.lastIndexOf("/");
  return { namespace: address.typename.slice(0, slash), type: address.typename.slice(slash + 1), id: address.id };
}

export function formatAddress(address: Address): string {
  return `${address.typename}/${address.id}`;
}

/**
 * The function type of reply addresses: the caller an HTTP request that waits for a reply
 * gives its message (the id names the request). No function serves it; the partition core
 * stores the first message sent to it as the request's answer.
 */
export const REPLY_TYPENAME = "eddy.ingress/reply" as FunctionTypename;

export function replyAddress(requestId: string): Address {
  return { typename: REPLY_TYPENAME, id: requestId };
}
