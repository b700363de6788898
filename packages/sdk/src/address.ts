// Address: the identity of a function instance, a function type plus an id.
import type { Address as WireAddress } from "@eddy/protocol";
import { requireTypename } from "./typename.ts";

export class Address {
  readonly namespace: string;
  readonly name: string;
  readonly id: string;

  constructor(namespace: string, name: string, id: string) {
    this.namespace = namespace;
    this.name = name;
    this.id = id;
  }

  /** The function type, "namespace/name". */
  get typename(): string {
    return `${this.namespace}/${this.name}`;
  }

  toString(): string {
    return `${this.namespace}/${this.name}/${this.id}`;
  }

  equals(other: Address): boolean {
    return this.namespace === other.namespace && this.name === other.name && this.id === other.id;
  }

  static fromWire(wire: WireAddress): Address {
    return new Address(wire.namespace, wire.type, wire.id);
  }

  toWire(): WireAddress {
    return { namespace: this.namespace, type: this.name, id: this.id };
  }
}

/** `address("example/greeter", "seth")` */
export function address(typename: string, id: string): Address {
  const { namespace, name } = requireTypename(typename, "address()");
  if (typeof id !== "string") throw new TypeError(`address(${typename}): id must be a string, got ${typeof id}`);
  return new Address(namespace, name, id);
}
