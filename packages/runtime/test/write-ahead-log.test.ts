// The write-ahead log's contract: frames come back in order after a reopen, a torn last
// frame is cut off (it was never acknowledged), damage anywhere else and gaps are errors
// naming where, and only whole segments the store holds are dropped.
import assert from "node:assert/strict";
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LogCorruptError, WriteAheadLog } from "../src/store/write-ahead-log.ts";

const root = mkdtempSync(join(tmpdir(), "eddy-wal-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, String(dirs++));

const payload = (seq: number) => Buffer.from(`frame ${seq} `.repeat((seq % 7) + 1));
const texts = (frames: readonly { seq: number; payload: Buffer }[]) =>
  frames.map((frame) => `${frame.seq}:${frame.payload.toString()}`);
const expected = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, index) => `${from + index}:${payload(from + index).toString()}`);

async function writeFrames(dir: string, count: number, segmentBytes?: number): Promise<WriteAheadLog> {
  const { log } = WriteAheadLog.open(dir, 0, segmentBytes === undefined ? {} : { segmentBytes });
  for (let seq = 1; seq <= count; seq++) assert.equal(await log.append(payload(seq)), seq);
  return log;
}

const segmentFiles = (dir: string) =>
  readdirSync(dir)
    .filter((name) => name.endsWith(".log"))
    .sort();

describe("WriteAheadLog", () => {
  it("returns the frames after the store's seq, in order, after a reopen", async () => {
    const dir = freshDir();
    (await writeFrames(dir, 20)).close();
    assert.deepEqual(texts(WriteAheadLog.open(dir, 0, { readOnly: true }).frames), expected(1, 20));
    const { log, frames } = WriteAheadLog.open(dir, 12);
    assert.deepEqual(texts(frames), expected(13, 20));
    assert.equal(log.lastSeq, 20);
    assert.equal(await log.append(payload(21)), 21);
    log.close();
    assert.deepEqual(texts(WriteAheadLog.open(dir, 12).frames), expected(13, 21));
  });

  it("starts after the store's seq when every segment was dropped", async () => {
    const dir = freshDir();
    const { log, frames } = WriteAheadLog.open(dir, 41);
    assert.deepEqual(frames, []);
    assert.equal(await log.append(payload(42)), 42);
    log.close();
    assert.deepEqual(segmentFiles(dir), ["0000000000000042.log"]);
    assert.deepEqual(texts(WriteAheadLog.open(dir, 41).frames), expected(42, 42));
  });

  it("cuts off a torn last frame, and appends after the last whole one", async () => {
    for (const damage of ["half a frame", "half a header", "a flipped byte"] as const) {
      const dir = freshDir();
      (await writeFrames(dir, 5)).close();
      const [file] = segmentFiles(dir);
      const path = join(dir, file as string);
      const whole = readFileSync(path);
      const lastFrameAt = whole.length - (16 + payload(5).length);
      if (damage === "half a frame") writeFileSync(path, whole.subarray(0, whole.length - 3));
      else if (damage === "half a header") writeFileSync(path, whole.subarray(0, lastFrameAt + 7));
      else {
        whole[whole.length - 1] = (whole[whole.length - 1] as number) ^ 0xff;
        writeFileSync(path, whole);
      }
      // A reader while Eddy runs leaves the tail alone: the append may still be under way.
      const reader = WriteAheadLog.open(dir, 0, { readOnly: true });
      assert.deepEqual(texts(reader.frames), expected(1, 4), damage);
      assert.notEqual(statSync(path).size, lastFrameAt, damage);

      const { log, frames } = WriteAheadLog.open(dir, 0);
      assert.deepEqual(texts(frames), expected(1, 4), damage);
      assert.equal(statSync(path).size, lastFrameAt, `${damage}: the tail is cut`);
      assert.equal(await log.append(payload(5)), 5);
      log.close();
      assert.deepEqual(texts(WriteAheadLog.open(dir, 0).frames), expected(1, 5), damage);
    }
  });

  it("forgets a segment a crash left without a whole frame, so the next one is not deleted in its name", async () => {
    for (const left of ["nothing", "half a header"] as const) {
      const dir = freshDir();
      (await writeFrames(dir, 5)).close();
      // Killed during the first append after a restart: the new segment has no whole frame.
      writeFileSync(join(dir, "0000000000000006.log"), left === "nothing" ? "" : Buffer.alloc(7, 1));
      const { log, frames } = WriteAheadLog.open(dir, 0);
      assert.deepEqual(texts(frames), expected(1, 5), left);
      assert.equal(await log.append(payload(6)), 6);
      assert.equal(await log.append(payload(7)), 7);
      log.dropThrough(5);
      log.close();
      assert.deepEqual(segmentFiles(dir), ["0000000000000006.log"], left);
      assert.deepEqual(texts(WriteAheadLog.open(dir, 5).frames), expected(6, 7), left);
    }
  });

  it("refuses damage before the last segment's tail, naming the file and offset", async () => {
    const dir = freshDir();
    (await writeFrames(dir, 30, 200)).close();
    const files = segmentFiles(dir);
    assert.ok(files.length >= 3, `${files.length} segments`);
    const path = join(dir, files[1] as string);
    const bytes = readFileSync(path);
    bytes[20] = (bytes[20] as number) ^ 0xff;
    writeFileSync(path, bytes);
    assert.throws(
      () => WriteAheadLog.open(dir, 0),
      (error: unknown) =>
        error instanceof LogCorruptError &&
        error.message.includes(path) &&
        error.message.includes("checksum") &&
        error.message.includes("byte 0"),
    );
  });

  it("refuses a log that does not continue from the store's seq, or skips frames", async () => {
    const dir = freshDir();
    (await writeFrames(dir, 30, 200)).close();
    const files = segmentFiles(dir);
    const { log } = WriteAheadLog.open(dir, 0);
    log.close();
    rmSync(join(dir, files[0] as string));
    assert.throws(() => WriteAheadLog.open(dir, 0), /the store holds frames up to 0, but the log resumes at/);
    rmSync(join(dir, files[2] as string));
    assert.throws(() => WriteAheadLog.open(dir, 100), LogCorruptError);
    assert.throws(
      () => WriteAheadLog.open(dir, 0),
      (error: unknown) =>
        error instanceof LogCorruptError && /segment .* starts at \d+, expected \d+/.test(error.message),
    );
  });

  it("drops whole segments the store holds, never the one being written", async () => {
    const dir = freshDir();
    const log = await writeFrames(dir, 40, 256);
    const before = segmentFiles(dir);
    assert.ok(before.length >= 4, `${before.length} segments`);
    const secondFirst = Number((before[1] as string).slice(0, 16));
    // Seq secondFirst - 2 lies in the first segment, but not its last frame: nothing goes.
    log.dropThrough(secondFirst - 2);
    assert.deepEqual(segmentFiles(dir), before);
    log.dropThrough(secondFirst - 1);
    assert.deepEqual(segmentFiles(dir), before.slice(1));
    log.dropThrough(40);
    assert.deepEqual(segmentFiles(dir), before.slice(-1), "the current segment stays");
    assert.equal(log.segmentCount, 1);
    assert.equal(await log.append(payload(41)), 41);
    log.close();
    // Reopened with every frame held, the leftover segment goes.
    const reopened = WriteAheadLog.open(dir, 41);
    assert.deepEqual(reopened.frames, []);
    assert.deepEqual(segmentFiles(dir), []);
  });

  it("reads nothing and creates nothing read-only where there is no log", () => {
    const dir = freshDir();
    assert.deepEqual(WriteAheadLog.open(dir, 7, { readOnly: true }).frames, []);
    assert.equal(existsSync(dir), false);
    const { log } = WriteAheadLog.open(dir, 7, { readOnly: true });
    assert.throws(() => log.append(Buffer.from("x")), /read-only/);
  });

  it("ignores files that are not segments", async () => {
    const dir = freshDir();
    (await writeFrames(dir, 3)).close();
    appendFileSync(join(dir, "notes.txt"), "hello");
    assert.deepEqual(texts(WriteAheadLog.open(dir, 0).frames), expected(1, 3));
  });
});
