// A child process a benchmark starts (Eddy, a function server, a baseline), stopped by its
// PID: the tail of its output kept for error messages, a wait for the line that says it is
// ready, and SIGTERM then SIGKILL if it does not go.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const OUTPUT_QUOTED_CHARS_MAX = 4_000;

export class Child {
  readonly process: ChildProcess;
  output = "";
  readonly #name: string;

  constructor(
    name: string,
    command: string,
    args: readonly string[],
    options: { cwd: string; env: NodeJS.ProcessEnv },
  ) {
    this.#name = name;
    this.process = spawn(command, args, { cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"], env: options.env });
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-OUTPUT_QUOTED_CHARS_MAX);
    };
    this.process.stdout?.on("data", keep);
    this.process.stderr?.on("data", keep);
  }

  get name(): string {
    return this.#name;
  }

  get pid(): number {
    return this.process.pid as number;
  }

  /** Resolves with the first match of `ready` in its output; rejects if it exits or START_TIMEOUT_MS passes. */
  async ready(ready: RegExp): Promise<RegExpMatchArray> {
    const deadline = performance.now() + START_TIMEOUT_MS;
    while (performance.now() < deadline) {
      const match = ready.exec(this.output);
      if (match !== null) return match;
      if (this.exited !== undefined) break;
      await sleep(20);
    }
    throw new Error(`${this.#name} did not start (${this.exited ?? "no sign of life"}):\n${this.output}`);
  }

  /** How it ended, once it has. */
  get exited(): string | undefined {
    const { exitCode, signalCode } = this.process;
    if (exitCode === null && signalCode === null) return undefined;
    return `exited with ${exitCode ?? signalCode}`;
  }

  /** SIGTERM by its PID, SIGKILL after STOP_TIMEOUT_MS; waits for the exit. */
  async stop(): Promise<void> {
    if (this.exited !== undefined) return;
    const exited = once(this.process, "exit");
    this.process.kill("SIGTERM");
    const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_TIMEOUT_MS, true, { ref: false })]);
    if (timedOut && this.exited === undefined) {
      this.process.kill("SIGKILL");
      await exited;
    }
  }
}
