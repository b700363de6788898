// Which partition owns an address: a stable hash of the address, modulo the
// deployment's fixed partition count. Stable across processes and versions, so
// stored state always lands where it was written.

/** 32-bit FNV-1a over the UTF-16 code units of the address key; cheap and well spread for short keys. */
export function stableHash(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

export type PartitionId = number & { readonly __brand: "PartitionId" };

export function partitionOf(addressKey: string, partitionCount: number): PartitionId {
  return (stableHash(addressKey) % partitionCount) as PartitionId;
}
