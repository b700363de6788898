// Reads a Kafka benchmark's output topic from the beginning and keeps, per input seq, the
// count the function gave it and how many copies arrived, and the latency of the paced
// records. Input values are "<seq> <sentAtMs>" (sentAtMs 0 for records loaded before the
// run), keyed "k<seq mod keys>"; outputs add " <count>". Seqs below `loadRecords` are the
// load, the `pacedRecords` after them the paced part. Used by bench/kafka and bench/backlog.
import { setTimeout as sleep } from "node:timers/promises";
import { Consumer, FetchIsolationLevels, type Message } from "@platformatic/kafka";

export interface OutputReaderOptions {
  readonly bootstrap: string;
  readonly topic: string;
  readonly loadRecords: number;
  readonly pacedRecords: number;
  readonly keys: number;
  /** read_committed (what an exactly-once consumer may see), else read_uncommitted. */
  readonly readCommitted: boolean;
  /** Fail when no record arrives for this long. */
  readonly progressTimeoutMs: number;
}

export const keyOf = (seq: number, keys: number) => `k${seq % keys}`;

export class OutputReader {
  readonly consumer: Consumer;
  readonly counts: Uint32Array;
  readonly copies: Uint16Array;
  readonly latenciesMs: number[] = [];
  distinctLoad = 0;
  distinctPaced = 0;
  duplicates = 0;
  foreign = 0;
  lastArrivalAt = performance.now();
  firstLoadAt: number | undefined;
  allLoadAt: number | undefined;
  onAllLoad: (() => void) | undefined;
  error: Error | undefined;
  readonly #options: OutputReaderOptions;

  private constructor(consumer: Consumer, options: OutputReaderOptions) {
    this.consumer = consumer;
    this.#options = options;
    this.counts = new Uint32Array(options.loadRecords + options.pacedRecords);
    this.copies = new Uint16Array(options.loadRecords + options.pacedRecords);
  }

  static async start(options: OutputReaderOptions): Promise<OutputReader> {
    const groupId = `bench-reader-${options.topic}`;
    const consumer = new Consumer({ clientId: groupId, groupId, bootstrapBrokers: [options.bootstrap] });
    const reader = new OutputReader(consumer, options);
    const stream = await consumer.consume({
      topics: [options.topic],
      mode: "earliest",
      autocommit: false,
      maxWaitTime: 500,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      isolationLevel: options.readCommitted
        ? FetchIsolationLevels.READ_COMMITTED
        : FetchIsolationLevels.READ_UNCOMMITTED,
    });
    stream.on("data", (message: Message) => reader.#take(message));
    stream.on("error", (error: Error) => {
      reader.error = error;
    });
    return reader;
  }

  #take(message: Message): void {
    const now = performance.now();
    this.lastArrivalAt = now;
    const [seqText, sentText, countText] = message.value.toString().split(" ");
    const seq = Number(seqText);
    if (
      !Number.isSafeInteger(seq) ||
      seq < 0 ||
      seq >= this.counts.length ||
      message.key.toString() !== keyOf(seq, this.#options.keys)
    ) {
      this.foreign++;
      return;
    }
    const copies = this.copies[seq] as number;
    this.copies[seq] = Math.min(copies + 1, 0xffff);
    if (copies > 0) {
      this.duplicates++;
      return;
    }
    this.counts[seq] = Number(countText);
    if (seq < this.#options.loadRecords) {
      this.distinctLoad++;
      this.firstLoadAt ??= now;
      if (this.distinctLoad === this.#options.loadRecords) {
        this.allLoadAt = now;
        this.onAllLoad?.();
      }
    } else {
      this.distinctPaced++;
      this.latenciesMs.push(now - Number(sentText));
    }
  }

  /** Waits until `done()`; fails when no record arrives for progressTimeoutMs or `alive()` says why not. */
  async waitUntil(done: () => boolean, what: () => string, alive: () => string | undefined): Promise<void> {
    const timeoutMs = this.#options.progressTimeoutMs;
    while (!done()) {
      if (this.error !== undefined) throw new Error(`reading the output failed: ${this.error.message}`);
      const dead = alive();
      if (dead !== undefined) throw new Error(`${dead} while waiting for ${what()}`);
      if (performance.now() - this.lastArrivalAt > timeoutMs) {
        throw new Error(`no output record for ${timeoutMs / 1000} s while waiting for ${what()}`);
      }
      await sleep(20);
    }
  }

  /**
   * What is wrong with the output, if anything: inputs missing, records matching no input,
   * duplicates (unless allowed: at-least-once), or a key whose counts are not 1…n (the
   * function's state did not see each of its inputs once).
   */
  problem(duplicatesAllowed: boolean): string | undefined {
    const total = this.counts.length;
    const missing = total - this.distinctLoad - this.distinctPaced;
    if (missing !== 0) return `${missing} of ${total} input records never reached the output`;
    if (this.foreign !== 0) return `${this.foreign} output records match no input record`;
    if (!duplicatesAllowed && this.duplicates !== 0) return `${this.duplicates} output records arrived more than once`;
    const keys = this.#options.keys;
    const inputs = new Float64Array(keys);
    const countSum = new Float64Array(keys);
    const countMax = new Float64Array(keys);
    for (let seq = 0; seq < total; seq++) {
      const key = seq % keys;
      const count = this.counts[seq] as number;
      inputs[key] = (inputs[key] as number) + 1;
      countSum[key] = (countSum[key] as number) + count;
      countMax[key] = Math.max(countMax[key] as number, count);
    }
    for (let key = 0; key < keys; key++) {
      const n = inputs[key] as number;
      if (countMax[key] !== n || countSum[key] !== (n * (n + 1)) / 2) {
        return `key ${keyOf(key, keys)} had ${n} inputs, but its counts were not 1…${n} (max ${countMax[key]}, sum ${countSum[key]})`;
      }
    }
    return undefined;
  }

  async close(): Promise<void> {
    await this.consumer.close(true).catch(() => undefined);
  }
}
