// One `eddy run --cluster` worker of the example as a child process of run.ts: the command
// line it is started with, the last lines it printed (quoted when the example fails), and its
// end by its own PID (SIGKILL for the crash the example shows, SIGTERM to stop it cleanly).
// It is started again with the same state directory and worker id, as an operator would.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const ROOT = resolve(import.meta.dirname, "../..");
export const EDDY_BIN = resolve(ROOT, "node_modules/.bin/eddy");

/** How many of a worker's output lines are kept to quote on failure. */
const OUTPUT_LINES_MAX = 40;
/** The line `eddy run` prints once its ingress listens and it has joined the cluster. */
const RUNNING_LINE = "eddy: running ";
/** A clean stop finishes the group commit and leaves the group; past this the worker is killed. */
const STOP_TIMEOUT_MS = 15_000;

export interface WorkerOptions {
  readonly workerId: string;
  /** Arguments after `eddy`. */
  readonly args: readonly string[];
  /** The playground ingress this worker serves (module port + its --port-offset). */
  readonly ingressUrl: string;
}

export class Worker {
  readonly workerId: string;
  readonly args: readonly string[];
  readonly ingressUrl: string;
  /** The last OUTPUT_LINES_MAX lines, stdout and stderr interleaved, across restarts. */
  readonly #lines: string[] = [];
  #child: ChildProcess | undefined;
  #exited: Promise<unknown> = Promise.resolve();

  constructor(options: WorkerOptions) {
    this.workerId = options.workerId;
    this.args = options.args;
    this.ingressUrl = options.ingressUrl;
  }

  get running(): boolean {
    const child = this.#child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  lastLines(): readonly string[] {
    return this.#lines;
  }

  /** Spawns `eddy run …`; resolves once it says it runs, rejects if it exits first or takes longer than `timeoutMs`. */
  async start(timeoutMs: number): Promise<void> {
    if (this.running) throw new Error(`worker ${this.workerId} is already running`);
    this.#note(`--- eddy ${this.args.join(" ")}`);
    const child = spawn(EDDY_BIN, this.args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    this.#exited = once(child, "exit").catch(() => undefined);
    await new Promise<void>((resolveStart, rejectStart) => {
      // Settled once: whichever comes first of the running line, an exit and the timeout.
      const timer = setTimeout(
        () => rejectStart(new Error(`worker ${this.workerId} did not say it runs within ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      child.once("exit", () => {
        clearTimeout(timer);
        rejectStart(new Error(`worker ${this.workerId} exited (${describeExit(child)}) before it said it runs`));
      });
      child.once("error", (error) => {
        clearTimeout(timer);
        rejectStart(new Error(`worker ${this.workerId} could not be started: ${error.message}`));
      });
      for (const stream of [child.stdout, child.stderr]) {
        let partial = "";
        stream?.setEncoding("utf8").on("data", (chunk: string) => {
          const lines = (partial + chunk).split("\n");
          partial = lines.pop() ?? "";
          for (const line of lines) {
            this.#note(line);
            if (line.startsWith(RUNNING_LINE)) {
              clearTimeout(timer);
              resolveStart();
            }
          }
        });
      }
    });
  }

  /** kill -9: no shutdown runs; the worker's partitions go to the others once its session times out. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.#child?.kill("SIGKILL");
    await this.#exited;
  }

  /** SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT_MS. Resolves to how it ended. */
  async stop(): Promise<string> {
    const child = this.#child;
    if (child === undefined) return "not started";
    if (!this.running) return describeExit(child);
    child.kill("SIGTERM");
    const exitedInTime = await Promise.race([
      this.#exited.then(() => true),
      sleep(STOP_TIMEOUT_MS, false, { ref: false }),
    ]);
    if (!exitedInTime) {
      child.kill("SIGKILL");
      await this.#exited;
      return `killed: it did not stop within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM`;
    }
    return describeExit(child);
  }

  #note(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > OUTPUT_LINES_MAX) this.#lines.shift();
  }
}

function describeExit(child: ChildProcess): string {
  return child.signalCode === null ? `exit code ${child.exitCode}` : `killed by ${child.signalCode}`;
}
