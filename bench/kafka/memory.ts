// A runtime process's memory over a benchmark run, split the way it is spent: V8's heap,
// memory outside it (external: Buffers and other ArrayBuffers; the rest of anonymous memory
// is native: malloc, thread stacks, code), and file-backed pages (LMDB's map, the node
// binary). /proc/<pid>/status is read every 200 ms (VmRSS, RssAnon, RssFile, RssShmem, and
// VmHWM, the kernel's own peak); process.memoryUsage() comes from inside the runtime, over
// its control socket (POST /memory) for an Eddy process or directly for this process. Peaks
// of sampled values can miss a short spike; VmHWM cannot. Used by bench/kafka and
// bench/throughput.
import { readFileSync } from "node:fs";
import { callControlSocket, type MemoryReport } from "../../packages/runtime/src/control-socket.ts";

const PROC_SAMPLE_MS = 200;
const INSIDE_SAMPLE_MS = 250;
const MiB = 2 ** 20;

/** /proc/<pid>/status's memory lines, in bytes; undefined once the process is gone. */
export interface ProcMemory {
  readonly rss: number;
  readonly anon: number;
  readonly file: number;
  readonly shmem: number;
  readonly hwm: number;
}

export function procMemory(pid: number | "self"): ProcMemory | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { rss: kib("VmRSS"), anon: kib("RssAnon"), file: kib("RssFile"), shmem: kib("RssShmem"), hwm: kib("VmHWM") };
}

/** What process.memoryUsage() says inside the runtime, plus the store's memtable when asked over the control socket. */
export interface InsideMemory {
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
  readonly memtable?: number | undefined;
}

/** The peaks of a run, in MiB (one decimal); the inside figures are absent when the runtime never answered. */
export interface MemoryPeaks {
  /** VmHWM, the kernel's peak resident set over the process's life; for this process, the most VmRSS sampled. */
  readonly peakRssMiB: number;
  readonly rssAnonMaxMiB: number;
  readonly rssFileMaxMiB: number;
  readonly rssShmemMaxMiB: number;
  readonly heapUsedMaxMiB: number | undefined;
  readonly heapTotalMaxMiB: number | undefined;
  readonly externalMaxMiB: number | undefined;
  readonly arrayBuffersMaxMiB: number | undefined;
  /** The most of RssAnon outside V8's heap: RssAnon − heapTotal at the same moment (malloc, stacks, external). */
  readonly nativeMaxMiB: number | undefined;
  readonly memtableMaxMiB: number | undefined;
  /** Samples taken, from /proc and from inside. */
  readonly procSamples: number;
  readonly insideSamples: number;
}

const round1 = (value: number) => Math.round(value * 10) / 10;
const mib = (bytes: number) => round1(bytes / MiB);
const mibOrUndefined = (bytes: number | undefined) => (bytes === undefined ? undefined : mib(bytes));

/** Samples one process's memory until stopped. */
export class MemoryWatch {
  #hwm = 0;
  #anon = 0;
  #file = 0;
  #shmem = 0;
  #heapUsed: number | undefined;
  #heapTotal: number | undefined;
  #external: number | undefined;
  #arrayBuffers: number | undefined;
  #native: number | undefined;
  #memtable: number | undefined;
  #last: InsideMemory | undefined;
  #procSamples = 0;
  #insideSamples = 0;
  #asking = false;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #pid: number | "self";
  readonly #inside: () => Promise<InsideMemory | undefined>;

  private constructor(pid: number | "self", inside: () => Promise<InsideMemory | undefined>) {
    this.#pid = pid;
    this.#inside = inside;
    this.#timers.push(setInterval(() => this.#sampleProc(), PROC_SAMPLE_MS));
    this.#timers.push(setInterval(() => void this.#ask(), INSIDE_SAMPLE_MS));
    for (const timer of this.#timers) timer.unref();
  }

  /** An Eddy runtime, asked over the control socket in its state directory. */
  static eddy(pid: number, stateDir: string): MemoryWatch {
    return new MemoryWatch(pid, async () => {
      const reply = await callControlSocket(stateDir, "/memory");
      if (reply.status !== 200) return undefined;
      const report = reply.body as MemoryReport;
      return {
        heapUsed: report.heapUsedBytes,
        heapTotal: report.heapTotalBytes,
        external: report.externalBytes,
        arrayBuffers: report.arrayBuffersBytes,
        memtable: report.memtableBytes,
      };
    });
  }

  /** A process with no control socket (a baseline): /proc only. */
  static process(pid: number): MemoryWatch {
    return new MemoryWatch(pid, async () => undefined);
  }

  /** This process (a runtime embedded in the bench), with `memtable` read from its store if given. */
  static self(memtable?: () => number): MemoryWatch {
    return new MemoryWatch("self", async () => {
      const usage = process.memoryUsage();
      return {
        heapUsed: usage.heapUsed,
        heapTotal: usage.heapTotal,
        external: usage.external,
        arrayBuffers: usage.arrayBuffers,
        memtable: memtable?.(),
      };
    });
  }

  #sampleProc(): void {
    const proc = procMemory(this.#pid);
    if (proc === undefined) return;
    this.#procSamples++;
    // VmHWM covers a process's whole life: right for a runtime process of its own, not for this one.
    this.#hwm = Math.max(this.#hwm, this.#pid === "self" ? proc.rss : proc.hwm, proc.rss);
    this.#anon = Math.max(this.#anon, proc.anon);
    this.#file = Math.max(this.#file, proc.file);
    this.#shmem = Math.max(this.#shmem, proc.shmem);
    if (this.#last !== undefined) this.#native = Math.max(this.#native ?? 0, proc.anon - this.#last.heapTotal);
  }

  async #ask(): Promise<void> {
    // One question at a time: a process busy enough to answer late is not asked twice.
    if (this.#asking) return;
    this.#asking = true;
    try {
      const inside = await this.#inside();
      if (inside === undefined) return;
      this.#insideSamples++;
      this.#last = inside;
      const max = (previous: number | undefined, value: number) => Math.max(previous ?? 0, value);
      this.#heapUsed = max(this.#heapUsed, inside.heapUsed);
      this.#heapTotal = max(this.#heapTotal, inside.heapTotal);
      this.#external = max(this.#external, inside.external);
      this.#arrayBuffers = max(this.#arrayBuffers, inside.arrayBuffers);
      if (inside.memtable !== undefined) this.#memtable = max(this.#memtable, inside.memtable);
    } catch {
      // Not listening yet, or gone: the /proc samples still count.
    } finally {
      this.#asking = false;
    }
  }

  /** Stops sampling (after one last /proc sample) and gives the peaks. */
  stop(): MemoryPeaks {
    this.#sampleProc();
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers.length = 0;
    return this.peaks();
  }

  peaks(): MemoryPeaks {
    return {
      peakRssMiB: mib(this.#hwm),
      rssAnonMaxMiB: mib(this.#anon),
      rssFileMaxMiB: mib(this.#file),
      rssShmemMaxMiB: mib(this.#shmem),
      heapUsedMaxMiB: mibOrUndefined(this.#heapUsed),
      heapTotalMaxMiB: mibOrUndefined(this.#heapTotal),
      externalMaxMiB: mibOrUndefined(this.#external),
      arrayBuffersMaxMiB: mibOrUndefined(this.#arrayBuffers),
      nativeMaxMiB: mibOrUndefined(this.#native),
      memtableMaxMiB: mibOrUndefined(this.#memtable),
      procSamples: this.#procSamples,
      insideSamples: this.#insideSamples,
    };
  }
}
