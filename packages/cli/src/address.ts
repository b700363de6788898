// Addresses and typenames as the command line takes them, and as URL paths (the ingress's
// and the admin API's). A typename is `namespace/type`; an address is `namespace/type/id`:
// the first two `/`-separated parts are the namespace and the type, everything after the
// second `/` is the id, which may itself hold slashes. In a path each part is %-encoded, so
// an id's slashes stay in the id.
import { UsageError } from "./usage.ts";

export interface CliAddress {
  readonly namespace: string;
  readonly type: string;
  readonly id: string;
}

export interface CliTypename {
  readonly namespace: string;
  readonly type: string;
}

export function parseAddress(text: string): CliAddress {
  const first = text.indexOf("/");
  const second = first < 0 ? -1 : text.indexOf("/", first + 1);
  if (first <= 0 || second <= first + 1 || second === text.length - 1) {
    throw new UsageError(`"${text}" is not an address: expected <namespace>/<type>/<id>`);
  }
  return { namespace: text.slice(0, first), type: text.slice(first + 1, second), id: text.slice(second + 1) };
}

export function parseTypename(text: string): CliTypename {
  const parts = text.split("/");
  if (parts.length !== 2 || parts.some((part) => part === "")) {
    const hint = parts.length > 2 ? " (an address's id does not belong here)" : "";
    throw new UsageError(`"${text}" is not a function type: expected <namespace>/<type>${hint}`);
  }
  return { namespace: parts[0] as string, type: parts[1] as string };
}

/** `namespace/type` of an address or a typename, as users read it. */
export function typenameOf({ namespace, type }: CliTypename): string {
  return `${namespace}/${type}`;
}

export function formatAddress(address: CliAddress): string {
  return `${address.namespace}/${address.type}/${address.id}`;
}

/** The path of a typename, or of an address, each part %-encoded; no leading slash. */
export function pathOf(value: CliTypename | CliAddress): string {
  const parts = "id" in value ? [value.namespace, value.type, value.id] : [value.namespace, value.type];
  return parts.map((part) => encodeURIComponent(part)).join("/");
}
