// The partition a keyed record goes to, chosen as Kafka's Java producer (which StateFun's Kafka
// egress used) chooses it, so a StateFun application moved to Eddy keeps each key on its
// partition: Java takes (murmur2(key) & 0x7fffffff) % partitions. @platformatic/kafka's default
// takes murmur2(key) >>> 0 instead, which differs for a negative hash whenever the partition
// count is not a power of two; its murmur2 also computes in BigInt, allocating on every record.
// The client reduces what a partitioner returns modulo the topic's partition count, so the
// partitioner returns the non-negative hash and the client finishes Java's formula.
import type { Partitioner } from "@platformatic/kafka";

const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const R = 24;
const POSITIVE = 0x7fffffff;

/**
 * Kafka's Utils.murmur2 (Java): the signed 32-bit hash of `bytes`. Int32 arithmetic only
 * (Math.imul wraps like Java's int multiply), so it allocates nothing.
 */
export function murmur2(bytes: Uint8Array): number {
  const length = bytes.length;
  // Whole 4-byte words end here; the rest (0–3 bytes) is the tail.
  const wordsEnd = length & ~3;
  let h = SEED ^ length;
  for (let i = 0; i < wordsEnd; i += 4) {
    let k =
      byteAt(bytes, i) | (byteAt(bytes, i + 1) << 8) | (byteAt(bytes, i + 2) << 16) | (byteAt(bytes, i + 3) << 24);
    k = Math.imul(k, M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  // Java's switch on length % 4 falls through from case 3 to case 1, then multiplies once.
  const tail = length & 3;
  if (tail > 0) {
    if (tail === 3) h ^= byteAt(bytes, wordsEnd + 2) << 16;
    if (tail >= 2) h ^= byteAt(bytes, wordsEnd + 1) << 8;
    h ^= byteAt(bytes, wordsEnd);
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h;
}

/** Callers stay below bytes.length; the cast only tells the compiler so. */
function byteAt(bytes: Uint8Array, index: number): number {
  return bytes[index] as number;
}

/**
 * A partitioner for one Producer: a keyed record goes where Java's producer would put it. A
 * record without a key goes round-robin over the topic's partitions, counted per topic from 0:
 * what the client does for one when no partitioner is set, which is how Eddy sent them before
 * (a partitioner, once set, is asked for keyless records too, so it must do this itself). Java
 * spreads keyless records differently (sticky batches), but nothing promises a keyless record a
 * partition, so Eddy keeps its own behaviour there. The round-robin counters are per Producer,
 * as the client's are: make a new partitioner for each Producer.
 */
export function javaCompatiblePartitioner(): Partitioner<Buffer, Buffer, Buffer, Buffer> {
  const nextKeylessByTopic = new Map<string, number>();
  return (message, key) => {
    if (key instanceof Uint8Array) return murmur2(key) & POSITIVE;
    const next = nextKeylessByTopic.get(message.topic) ?? 0;
    nextKeylessByTopic.set(message.topic, next + 1);
    return next;
  };
}
