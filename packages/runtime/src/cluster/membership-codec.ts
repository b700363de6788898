// The bytes a cluster worker puts into Kafka's classic group protocol: its member metadata in
// JoinGroup (who it is, where its HTTP ingress is, which partitions it owns now, so the leader's
// assignor can be sticky) and each member's assignment in SyncGroup (its partitions, plus the
// whole partition → owner map, so any worker can forward a request to the owner).
//
// Both start with a version byte. A decoder meets bytes written by other processes, maybe other
// versions of Eddy, maybe not Eddy at all: it checks every length and bound, refuses trailing
// bytes, and returns a Failure rather than throwing. Layout (big-endian):
//   metadata   u8 version=1 | str workerId | str url | u32 n | n × u32 partition (ascending)
//   assignment u8 version=1 | u32 n | n × u32 partition (ascending)
//              | u32 partitionCount | u16 w | w × (str workerId, str url)
//              | partitionCount × u16 owner (index into the w workers, 0xffff = no owner)
//   str        u16 byte length | UTF-8
import { type Failure, failure, type Result, success } from "../errors.ts";

export const MEMBERSHIP_VERSION = 1;

/** Bounds a decoder enforces, so a hostile or corrupt buffer cannot make it allocate much. */
export const WORKER_ID_BYTES_MAX = 255;
export const URL_BYTES_MAX = 2048;
export const PARTITION_COUNT_MAX = 65_535;
/** One u16 owner index per partition, 0xffff reserved for "no owner". */
const WORKERS_MAX = 0xfffe;
const NO_OWNER = 0xffff;

/** What a member says about itself when it joins. */
export interface MemberMetadata {
  readonly workerId: string;
  /** Where other workers forward HTTP requests for this worker's partitions (--advertise). */
  readonly url: string;
  /** The partitions this worker owns now, ascending: the assignor keeps them where it can. */
  readonly owned: readonly number[];
}

export interface PartitionOwner {
  readonly workerId: string;
  readonly url: string;
}

/** What the leader hands each member in SyncGroup. */
export interface MemberAssignment {
  /** This member's partitions, ascending. */
  readonly partitions: readonly number[];
  /** Indexed by partition; undefined where no member owns it. Its length is the cluster's partition count. */
  readonly owners: readonly (PartitionOwner | undefined)[];
}

export type MembershipCodecFailure = Failure<"membership-malformed" | "membership-version-unsupported">;

export function encodeMemberMetadata(metadata: MemberMetadata): Buffer {
  const writer = new Writer();
  writer.u8(MEMBERSHIP_VERSION);
  writer.str(metadata.workerId, WORKER_ID_BYTES_MAX, "workerId");
  writer.str(metadata.url, URL_BYTES_MAX, "url");
  writer.partitions(metadata.owned, PARTITION_COUNT_MAX);
  return writer.done();
}

export function decodeMemberMetadata(bytes: Uint8Array): Result<MemberMetadata, MembershipCodecFailure["code"]> {
  const reader = new Reader(bytes, "member metadata");
  const version = reader.version();
  if (!version.ok) return version;
  const workerId = reader.str(WORKER_ID_BYTES_MAX, "workerId");
  if (!workerId.ok) return workerId;
  if (workerId.value === "") return reader.malformed("workerId is empty");
  const url = reader.str(URL_BYTES_MAX, "url");
  if (!url.ok) return url;
  const owned = reader.partitions(PARTITION_COUNT_MAX, "owned");
  if (!owned.ok) return owned;
  const end = reader.end();
  if (!end.ok) return end;
  return success({ workerId: workerId.value, url: url.value, owned: owned.value });
}

export function encodeAssignment(assignment: MemberAssignment): Buffer {
  const writer = new Writer();
  writer.u8(MEMBERSHIP_VERSION);
  const partitionCount = assignment.owners.length;
  writer.partitions(assignment.partitions, partitionCount);
  writer.u32(partitionCount);
  // Workers are written once each and named by index: 128 partitions cost 256 bytes, not 128 URLs.
  const index = new Map<string, number>();
  const workers: PartitionOwner[] = [];
  for (const owner of assignment.owners) {
    if (owner === undefined) continue;
    const key = `${owner.workerId}\0${owner.url}`;
    if (index.has(key)) continue;
    index.set(key, workers.length);
    workers.push(owner);
  }
  if (workers.length > WORKERS_MAX)
    throw new RangeError(`assignment names ${workers.length} workers, at most ${WORKERS_MAX}`);
  writer.u16(workers.length);
  for (const worker of workers) {
    writer.str(worker.workerId, WORKER_ID_BYTES_MAX, "workerId");
    writer.str(worker.url, URL_BYTES_MAX, "url");
  }
  for (const owner of assignment.owners) {
    writer.u16(owner === undefined ? NO_OWNER : (index.get(`${owner.workerId}\0${owner.url}`) as number));
  }
  return writer.done();
}

export function decodeAssignment(bytes: Uint8Array): Result<MemberAssignment, MembershipCodecFailure["code"]> {
  const reader = new Reader(bytes, "assignment");
  const version = reader.version();
  if (!version.ok) return version;
  const partitions = reader.partitions(PARTITION_COUNT_MAX, "partitions");
  if (!partitions.ok) return partitions;
  const partitionCount = reader.u32("partition count");
  if (!partitionCount.ok) return partitionCount;
  if (partitionCount.value > PARTITION_COUNT_MAX) {
    return reader.malformed(`partition count ${partitionCount.value} is above ${PARTITION_COUNT_MAX}`);
  }
  const beyond = partitions.value.find((partition) => partition >= partitionCount.value);
  if (beyond !== undefined) {
    return reader.malformed(`partition ${beyond} is not below the partition count ${partitionCount.value}`);
  }
  const workerCount = reader.u16("worker count");
  if (!workerCount.ok) return workerCount;
  if (workerCount.value > WORKERS_MAX) return reader.malformed(`${workerCount.value} workers, at most ${WORKERS_MAX}`);
  const workers: PartitionOwner[] = [];
  for (let i = 0; i < workerCount.value; i++) {
    const workerId = reader.str(WORKER_ID_BYTES_MAX, "workerId");
    if (!workerId.ok) return workerId;
    if (workerId.value === "") return reader.malformed(`worker ${i}'s workerId is empty`);
    const url = reader.str(URL_BYTES_MAX, "url");
    if (!url.ok) return url;
    workers.push(Object.freeze({ workerId: workerId.value, url: url.value }));
  }
  const owners: (PartitionOwner | undefined)[] = [];
  for (let partition = 0; partition < partitionCount.value; partition++) {
    const owner = reader.u16("owner");
    if (!owner.ok) return owner;
    if (owner.value === NO_OWNER) {
      owners.push(undefined);
      continue;
    }
    const worker = workers[owner.value];
    if (worker === undefined) {
      return reader.malformed(`partition ${partition}'s owner is worker ${owner.value} of ${workers.length}`);
    }
    owners.push(worker);
  }
  const end = reader.end();
  if (!end.ok) return end;
  return success({ partitions: partitions.value, owners });
}

class Writer {
  readonly #chunks: Buffer[] = [];

  u8(value: number): void {
    const chunk = Buffer.allocUnsafe(1);
    chunk.writeUInt8(value);
    this.#chunks.push(chunk);
  }

  u16(value: number): void {
    const chunk = Buffer.allocUnsafe(2);
    chunk.writeUInt16BE(value);
    this.#chunks.push(chunk);
  }

  u32(value: number): void {
    const chunk = Buffer.allocUnsafe(4);
    chunk.writeUInt32BE(value);
    this.#chunks.push(chunk);
  }

  str(value: string, bytesMax: number, what: string): void {
    const bytes = Buffer.from(value, "utf8");
    // An encoder's input comes from Eddy itself: a value past the bound is a bug, not the world.
    if (bytes.length > bytesMax) throw new RangeError(`${what} is ${bytes.length} bytes, at most ${bytesMax}`);
    this.u16(bytes.length);
    this.#chunks.push(bytes);
  }

  /** Sorted and checked, so a decoder can insist on strictly ascending partitions. */
  partitions(partitions: readonly number[], countMax: number): void {
    const sorted = [...partitions].sort((a, b) => a - b);
    for (let i = 0; i < sorted.length; i++) {
      const partition = sorted[i] as number;
      if (!Number.isInteger(partition) || partition < 0 || partition >= countMax) {
        throw new RangeError(`partition ${partition} is not an integer in [0, ${countMax})`);
      }
      if (i > 0 && sorted[i - 1] === partition) throw new RangeError(`partition ${partition} is listed twice`);
    }
    this.u32(sorted.length);
    for (const partition of sorted) this.u32(partition);
  }

  done(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

class Reader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #what: string;
  #offset = 0;

  constructor(bytes: Uint8Array, what: string) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#what = what;
  }

  malformed(problem: string): MembershipCodecFailure {
    return failure(
      "membership-malformed",
      `${this.#what} at byte ${this.#offset} of ${this.#bytes.length}: ${problem}`,
      false,
    );
  }

  version(): Result<number, MembershipCodecFailure["code"]> {
    const version = this.u8("version");
    if (!version.ok) return version;
    if (version.value !== MEMBERSHIP_VERSION) {
      return failure(
        "membership-version-unsupported",
        `${this.#what} has version ${version.value}; this Eddy reads version ${MEMBERSHIP_VERSION}`,
        false,
      );
    }
    return version;
  }

  u8(what: string): Result<number, MembershipCodecFailure["code"]> {
    if (!this.#has(1)) return this.#short(1, what);
    const value = this.#view.getUint8(this.#offset);
    this.#offset += 1;
    return success(value);
  }

  u16(what: string): Result<number, MembershipCodecFailure["code"]> {
    if (!this.#has(2)) return this.#short(2, what);
    const value = this.#view.getUint16(this.#offset);
    this.#offset += 2;
    return success(value);
  }

  u32(what: string): Result<number, MembershipCodecFailure["code"]> {
    if (!this.#has(4)) return this.#short(4, what);
    const value = this.#view.getUint32(this.#offset);
    this.#offset += 4;
    return success(value);
  }

  str(bytesMax: number, what: string): Result<string, MembershipCodecFailure["code"]> {
    const length = this.u16(`${what}'s length`);
    if (!length.ok) return length;
    if (length.value > bytesMax) return this.malformed(`${what} is ${length.value} bytes, at most ${bytesMax}`);
    if (!this.#has(length.value)) return this.#short(length.value, what);
    const start = this.#offset;
    try {
      const text = utf8.decode(this.#bytes.subarray(start, start + length.value));
      this.#offset += length.value;
      return success(text);
    } catch {
      return this.malformed(`${what} is not UTF-8`);
    }
  }

  partitions(countMax: number, what: string): Result<readonly number[], MembershipCodecFailure["code"]> {
    const count = this.u32(`${what}' count`);
    if (!count.ok) return count;
    if (count.value > countMax) return this.malformed(`${count.value} ${what}, at most ${countMax}`);
    // Checked before allocating: the count must fit in what is left.
    if (!this.#has(count.value * 4)) return this.#short(count.value * 4, what);
    const partitions: number[] = [];
    for (let i = 0; i < count.value; i++) {
      const partition = this.u32(what);
      if (!partition.ok) return partition;
      if (partition.value >= countMax) return this.malformed(`partition ${partition.value} is not below ${countMax}`);
      const previous = partitions.at(-1);
      if (previous !== undefined && partition.value <= previous) {
        return this.malformed(`${what} are not strictly ascending (${partition.value} after ${previous})`);
      }
      partitions.push(partition.value);
    }
    return success(partitions);
  }

  end(): Result<true, MembershipCodecFailure["code"]> {
    if (this.#offset !== this.#bytes.length) {
      return this.malformed(`${this.#bytes.length - this.#offset} bytes after the end`);
    }
    return success(true);
  }

  #has(length: number): boolean {
    return this.#offset + length <= this.#bytes.length;
  }

  #short(length: number, what: string): MembershipCodecFailure {
    return this.malformed(`${what} needs ${length} bytes, ${this.#bytes.length - this.#offset} are left`);
  }
}
