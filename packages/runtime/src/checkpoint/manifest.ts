// A checkpoint's manifest: the one object that makes a checkpoint exist. Data objects are
// uploaded first; the manifest, written last under a key no other checkpoint uses, lists
// every object the restore needs with its size and SHA-256, and carries a SHA-256 of its
// own content, so a truncated or altered manifest is recognized as such.
//
// A checkpoint is a chain: a base (a compacted copy of the LMDB environment, in chunks) and
// the deltas after it (the net writes of the commits since the previous checkpoint), each
// checkpoint's manifest listing the whole chain it needs. Ids sort by creation time:
// `20261124T224512345Z-1234` is the checkpoint taken then, holding the commits up to seq 1234.
import { createHash } from "node:crypto";

export const MANIFEST_FORMAT = "eddy-checkpoint/1";
export const CHECKPOINTS_PREFIX = "checkpoints/";
export const SAVEPOINTS_PREFIX = "savepoints/";
export const DATA_PREFIX = "data/";

/** One stored object: a chunk of a base or a delta, compressed (zstd). */
export interface StoredFile {
  readonly key: string;
  /** The bytes stored, and their SHA-256 (hex). */
  readonly bytes: number;
  readonly sha256: string;
  /** The bytes once decompressed. */
  readonly rawBytes: number;
}

export interface BasePart {
  /** The commits it holds: all up to this seq. */
  readonly seq: number;
  /** The chunks of data.mdb, in order. */
  readonly files: readonly StoredFile[];
}

export interface DeltaPart {
  /** The net writes of the commits after fromSeq through toSeq. */
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly files: readonly StoredFile[];
}

export interface Manifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly id: string;
  /** Savepoints are taken on demand, named, and never deleted by retention. */
  readonly kind: "checkpoint" | "savepoint";
  readonly name?: string;
  /** The state it restores: every commit up to this seq. */
  readonly seq: number;
  readonly createdAt: string;
  readonly partitionCount: number;
  readonly base: BasePart;
  readonly deltas: readonly DeltaPart[];
}

export type ParsedManifest =
  | { readonly ok: true; readonly manifest: Manifest }
  | { readonly ok: false; readonly error: string };

const SAVEPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function checkSavepointName(name: string): string | undefined {
  return SAVEPOINT_NAME.test(name)
    ? undefined
    : `savepoint name ${JSON.stringify(name)}: expected 1–100 letters, digits, '.', '_' or '-', starting with a letter or digit`;
}

/** `20261124T224512345Z-1234`: sorts by time, names the seq. */
export function checkpointId(createdAt: Date, seq: number): string {
  return `${createdAt.toISOString().replace(/[-:.]/g, "")}-${seq}`;
}

export function manifestKey(manifest: Pick<Manifest, "kind" | "id" | "name">): string {
  return manifest.kind === "savepoint"
    ? `${SAVEPOINTS_PREFIX}${manifest.name}.json`
    : `${CHECKPOINTS_PREFIX}${manifest.id}.json`;
}

/** The checkpoint id a data object belongs to (data/<id>/…). */
export function dataOwner(key: string): string | undefined {
  if (!key.startsWith(DATA_PREFIX)) return undefined;
  const slash = key.indexOf("/", DATA_PREFIX.length);
  return slash < 0 ? undefined : key.slice(DATA_PREFIX.length, slash);
}

export function allFiles(manifest: Manifest): StoredFile[] {
  return [...manifest.base.files, ...manifest.deltas.flatMap((delta) => delta.files)];
}

/** The bytes the files take in the store. */
export function storedBytes(files: readonly StoredFile[]): number {
  return files.reduce((sum, file) => sum + file.bytes, 0);
}

function digest(body: string): string {
  return createHash("sha256").update(body).digest("hex");
}

/** The manifest as stored: its JSON, then a line with the SHA-256 of that JSON. */
export function encodeManifest(manifest: Manifest): Buffer {
  const body = JSON.stringify(manifest, null, 2);
  return Buffer.from(`${body}\nsha256 ${digest(body)}\n`);
}

/** Parses a stored manifest; `key` names it in every error. */
export function decodeManifest(key: string, bytes: Uint8Array): ParsedManifest {
  const text = Buffer.from(bytes).toString("utf8");
  const match = /\nsha256 ([0-9a-f]{64})\n$/.exec(text);
  if (match === null) return { ok: false, error: `manifest ${key}: no checksum line at its end (truncated?)` };
  const body = text.slice(0, match.index);
  if (digest(body) !== match[1])
    return { ok: false, error: `manifest ${key}: its checksum does not match its content` };
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    return { ok: false, error: `manifest ${key}: not JSON: ${(error as Error).message}` };
  }
  const problem = manifestProblem(value);
  if (problem !== undefined) return { ok: false, error: `manifest ${key}: ${problem}` };
  return { ok: true, manifest: value as Manifest };
}

function fileProblem(value: unknown, where: string): string | undefined {
  const file = value as Partial<StoredFile> | null;
  if (typeof file !== "object" || file === null) return `${where}: expected an object`;
  if (typeof file.key !== "string" || !file.key.startsWith(DATA_PREFIX)) return `${where}.key: expected a data/ key`;
  if (!Number.isSafeInteger(file.bytes) || !Number.isSafeInteger(file.rawBytes))
    return `${where}: expected byte counts`;
  if (typeof file.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(file.sha256))
    return `${where}.sha256: expected 64 hex digits`;
  return undefined;
}

function filesProblem(value: unknown, where: string): string | undefined {
  if (!Array.isArray(value)) return `${where}: expected a list`;
  for (const [index, file] of value.entries()) {
    const problem = fileProblem(file, `${where}[${index}]`);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function manifestProblem(value: unknown): string | undefined {
  const manifest = value as Partial<Manifest> | null;
  if (typeof manifest !== "object" || manifest === null) return "expected an object";
  if (manifest.format !== MANIFEST_FORMAT)
    return `format: expected ${MANIFEST_FORMAT}, found ${JSON.stringify(manifest.format)}`;
  if (typeof manifest.id !== "string") return "id: expected a string";
  if (manifest.kind !== "checkpoint" && manifest.kind !== "savepoint") return "kind: expected checkpoint or savepoint";
  if (!Number.isSafeInteger(manifest.seq)) return "seq: expected an integer";
  if (typeof manifest.createdAt !== "string") return "createdAt: expected a string";
  if (!Number.isSafeInteger(manifest.partitionCount)) return "partitionCount: expected an integer";
  const base = manifest.base as Partial<BasePart> | undefined;
  if (typeof base !== "object" || base === null || !Number.isSafeInteger(base.seq))
    return "base: expected {seq, files}";
  const baseProblem = filesProblem(base.files, "base.files");
  if (baseProblem !== undefined) return baseProblem;
  if (!Array.isArray(manifest.deltas)) return "deltas: expected a list";
  let seq = base.seq as number;
  for (const [index, delta] of manifest.deltas.entries()) {
    const where = `deltas[${index}]`;
    if (typeof delta !== "object" || delta === null) return `${where}: expected an object`;
    if (delta.fromSeq !== seq || !Number.isSafeInteger(delta.toSeq) || delta.toSeq <= delta.fromSeq) {
      return `${where}: expected the commits after ${seq}, found ${delta.fromSeq}..${delta.toSeq}`;
    }
    const problem = filesProblem(delta.files, `${where}.files`);
    if (problem !== undefined) return problem;
    seq = delta.toSeq;
  }
  if (seq !== manifest.seq) return `seq: ${manifest.seq}, but its chain ends at ${seq}`;
  return undefined;
}
