// The bytes a cluster worker puts into Kafka's classic group protocol: its member metadata in
// JoinGroup (who it is, where its HTTP ingress and its admin listener are, which partitions it
// owns now, so the leader's assignor can be sticky) and each member's assignment in SyncGroup
// (its partitions, plus the whole partition → owner map, so any worker can forward an ingress
// request or an admin API call to the owner).
//
// The metadata also carries the worker's module (cluster-module.ts): its fingerprint, and its
// items when they are short enough, so that a worker the group refuses for another module can
// read a member's and say what differs (module-check.ts). The items are left out above
// MODULE_ITEMS_BYTES_MAX: Kafka keeps every member's metadata in one record of
// __consumer_offsets (1 MiB by default), which 128 workers must share with their assignments.
//
// Both start with a version byte. A decoder meets bytes written by other processes, maybe other
// versions of Eddy, maybe not Eddy at all: it checks every length and bound, refuses trailing
// bytes, and returns a Failure rather than throwing. Layout (big-endian):
//   metadata   u8 version=3 | str workerId | str url | str adminUrl | u32 n | n × u32 partition
//              (ascending) | 8 bytes module fingerprint | u8 described (0: items left out, 1:
//              they follow) | [u16 k | k × (u8 kind (1 function, 2 ingress, 3 egress) | str name)]
//   assignment u8 version=3 | u32 n | n × u32 partition (ascending)
//              | u32 partitionCount | u16 w | w × (str workerId, str url, str adminUrl)
//              | partitionCount × u16 owner (index into the w workers, 0xffff = no owner)
//   str        u16 byte length | UTF-8; an empty adminUrl: the worker has no admin listener
// Version 2 added the module to the metadata. Version 3 added the admin URLs; both versions are
// read, and a leader writes the assignments in the lowest version its members wrote their
// metadata in, so a version-2 worker in the group (a rolling upgrade) can read its assignment.
// A version-2 leader cannot read version 3's metadata: until the leader is upgraded, newer
// workers get no partitions and the leader logs why.
import { type Failure, failure, type Result, success } from "../errors.ts";
import {
  type AnnouncedModule,
  FINGERPRINT_BYTES,
  MODULE_ITEM_KIND_CODES,
  type ModuleItem,
  type ModuleItemKind,
  moduleOfItems,
} from "./cluster-module.ts";

export const MEMBERSHIP_VERSION = 3;
/** The oldest version this Eddy reads (and writes assignments in, for members that wrote it). */
export const MEMBERSHIP_VERSION_MIN = 2;

/** Bounds a decoder enforces, so a hostile or corrupt buffer cannot make it allocate much. */
export const WORKER_ID_BYTES_MAX = 255;
export const URL_BYTES_MAX = 2048;
export const PARTITION_COUNT_MAX = 65_535;
/** One u16 owner index per partition, 0xffff reserved for "no owner". */
const WORKERS_MAX = 0xfffe;
const NO_OWNER = 0xffff;
/** The most bytes a module's items take in the metadata; a longer list is left out (see the header). */
export const MODULE_ITEMS_BYTES_MAX = 2048;
const MODULE_ITEM_BYTES_MAX = 1024;
const KIND_OF_CODE = new Map<number, ModuleItemKind>(
  Object.entries(MODULE_ITEM_KIND_CODES).map(([kind, code]) => [code, kind as ModuleItemKind]),
);

/** What a member says about itself when it joins. */
export interface MemberMetadata {
  readonly workerId: string;
  /** Where other workers forward HTTP requests for this worker's partitions (--advertise). */
  readonly url: string;
  /**
   * Where other workers send admin API calls for this worker's partitions (--admin-advertise);
   * undefined without an admin listener, or from a worker of version 2.
   */
  readonly adminUrl?: string | undefined;
  /** The version the metadata was written in (decoded); MEMBERSHIP_VERSION when encoding. */
  readonly version?: number;
  /** The partitions this worker owns now, ascending: the assignor keeps them where it can. */
  readonly owned: readonly number[];
  /** The worker's module: its items are undefined after decoding when they were too long to send. */
  readonly module: AnnouncedModule;
}

export interface PartitionOwner {
  readonly workerId: string;
  readonly url: string;
  /** Its admin listener's URL: undefined when it has none, or the assignment is of version 2. */
  readonly adminUrl?: string | undefined;
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
  writer.str(metadata.adminUrl ?? "", URL_BYTES_MAX, "adminUrl");
  writer.partitions(metadata.owned, PARTITION_COUNT_MAX);
  const fingerprint = Buffer.from(metadata.module.fingerprint, "hex");
  if (fingerprint.length !== FINGERPRINT_BYTES || fingerprint.toString("hex") !== metadata.module.fingerprint) {
    throw new RangeError(
      `module fingerprint ${JSON.stringify(metadata.module.fingerprint)} is not ${FINGERPRINT_BYTES} bytes of hex`,
    );
  }
  writer.bytes(fingerprint);
  const items = metadata.module.items === undefined ? undefined : encodeModuleItems(metadata.module.items);
  if (items === undefined) {
    writer.u8(0);
  } else {
    writer.u8(1);
    writer.bytes(items);
  }
  return writer.done();
}

/** The items as the metadata holds them; undefined when they take more than MODULE_ITEMS_BYTES_MAX. */
function encodeModuleItems(items: readonly ModuleItem[]): Buffer | undefined {
  if (items.length > 0xffff) return undefined;
  const writer = new Writer();
  writer.u16(items.length);
  for (const item of items) {
    if (Buffer.byteLength(item.name, "utf8") > MODULE_ITEM_BYTES_MAX) return undefined;
    writer.u8(MODULE_ITEM_KIND_CODES[item.kind]);
    writer.str(item.name, MODULE_ITEM_BYTES_MAX, "module item");
  }
  const bytes = writer.done();
  return bytes.length > MODULE_ITEMS_BYTES_MAX ? undefined : bytes;
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
  const adminUrl = version.value >= 3 ? reader.str(URL_BYTES_MAX, "adminUrl") : success("");
  if (!adminUrl.ok) return adminUrl;
  const owned = reader.partitions(PARTITION_COUNT_MAX, "owned");
  if (!owned.ok) return owned;
  const module = decodeModule(reader);
  if (!module.ok) return module;
  const end = reader.end();
  if (!end.ok) return end;
  return success({
    workerId: workerId.value,
    url: url.value,
    ...(adminUrl.value === "" ? {} : { adminUrl: adminUrl.value }),
    version: version.value,
    owned: owned.value,
    module: module.value,
  });
}

function decodeModule(reader: Reader): Result<AnnouncedModule, MembershipCodecFailure["code"]> {
  const fingerprintBytes = reader.bytes(FINGERPRINT_BYTES, "module fingerprint");
  if (!fingerprintBytes.ok) return fingerprintBytes;
  const fingerprint = Buffer.from(fingerprintBytes.value).toString("hex");
  const described = reader.u8("module described");
  if (!described.ok) return described;
  if (described.value === 0) return success({ fingerprint, items: undefined });
  if (described.value !== 1) return reader.malformed(`module described is ${described.value}, not 0 or 1`);
  const count = reader.u16("module items' count");
  if (!count.ok) return count;
  const items: ModuleItem[] = [];
  for (let index = 0; index < count.value; index++) {
    const code = reader.u8("module item kind");
    if (!code.ok) return code;
    const kind = KIND_OF_CODE.get(code.value);
    if (kind === undefined) return reader.malformed(`module item ${index} has kind ${code.value}`);
    const name = reader.str(MODULE_ITEM_BYTES_MAX, "module item");
    if (!name.ok) return name;
    if (name.value === "") return reader.malformed(`module item ${index} is empty`);
    items.push({ kind, name: name.value });
  }
  // The items are what the fingerprint was taken of, or the sender is not what it says.
  const recomputed = moduleOfItems(items);
  if (recomputed.fingerprint !== fingerprint) {
    return reader.malformed(
      `module items make fingerprint ${recomputed.fingerprint}, the metadata says ${fingerprint}`,
    );
  }
  return success({ fingerprint, items: recomputed.items });
}

/**
 * The assignment's bytes, in `version` (default MEMBERSHIP_VERSION): version 2 leaves the admin
 * URLs out, for a group with a member that reads only that.
 */
export function encodeAssignment(assignment: MemberAssignment, version = MEMBERSHIP_VERSION): Buffer {
  if (version < MEMBERSHIP_VERSION_MIN || version > MEMBERSHIP_VERSION) {
    throw new RangeError(`assignment version ${version} is not one this Eddy writes`);
  }
  const admin = version >= 3;
  const writer = new Writer();
  writer.u8(version);
  const partitionCount = assignment.owners.length;
  writer.partitions(assignment.partitions, partitionCount);
  writer.u32(partitionCount);
  // Workers are written once each and named by index: 128 partitions cost 256 bytes, not 128 URLs.
  const index = new Map<string, number>();
  const workers: PartitionOwner[] = [];
  const keyOf = (owner: PartitionOwner) => `${owner.workerId}\0${owner.url}\0${admin ? (owner.adminUrl ?? "") : ""}`;
  for (const owner of assignment.owners) {
    if (owner === undefined) continue;
    const key = keyOf(owner);
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
    if (admin) writer.str(worker.adminUrl ?? "", URL_BYTES_MAX, "adminUrl");
  }
  for (const owner of assignment.owners) {
    writer.u16(owner === undefined ? NO_OWNER : (index.get(keyOf(owner)) as number));
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
    const adminUrl = version.value >= 3 ? reader.str(URL_BYTES_MAX, "adminUrl") : success("");
    if (!adminUrl.ok) return adminUrl;
    workers.push(
      Object.freeze({
        workerId: workerId.value,
        url: url.value,
        ...(adminUrl.value === "" ? {} : { adminUrl: adminUrl.value }),
      }),
    );
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

  bytes(value: Uint8Array): void {
    this.#chunks.push(Buffer.from(value));
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
    if (version.value < MEMBERSHIP_VERSION_MIN || version.value > MEMBERSHIP_VERSION) {
      return failure(
        "membership-version-unsupported",
        `${this.#what} has version ${version.value}; this Eddy reads versions ${MEMBERSHIP_VERSION_MIN} to ${MEMBERSHIP_VERSION}`,
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

  bytes(length: number, what: string): Result<Uint8Array, MembershipCodecFailure["code"]> {
    if (!this.#has(length)) return this.#short(length, what);
    const value = this.#bytes.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
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
