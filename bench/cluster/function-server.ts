// The function server (functions.ts) as run.ts holds it: a forked child process, one port per
// runtime process it serves, asked for its counts over IPC one command at a time.
import { type ChildProcess, fork } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import type { Command, Report, Snapshot } from "./functions.ts";

const START_TIMEOUT_MS = 30_000;

export class FunctionServer {
  readonly urls: Readonly<Record<string, string>>;
  readonly #child: ChildProcess;
  /** Commands go one at a time: each waits for the answer to the one before. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(child: ChildProcess, urls: Readonly<Record<string, string>>) {
    this.#child = child;
    this.urls = urls;
  }

  /** Forks functions.ts serving `labels`; resolves once every port listens. */
  static async start(labels: readonly string[]): Promise<FunctionServer> {
    const child = fork(join(import.meta.dirname, "functions.ts"), [...labels], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const urls = await new Promise<Record<string, string>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the function server did not start")), START_TIMEOUT_MS);
      child.once("exit", (code, signal) => reject(new Error(`the function server exited (${code ?? signal})`)));
      child.on("message", (report: Report) => {
        if ("ready" in report) {
          clearTimeout(timer);
          resolve({ ...report.ready });
        }
      });
    });
    return new FunctionServer(child, urls);
  }

  get pid(): number {
    return this.#child.pid as number;
  }

  /** "reset" starts a measured window (its answer carries empty latencies); "snapshot" reads it. */
  command(command: Command): Promise<Snapshot> {
    const answer = this.#queue.then(
      () =>
        new Promise<Snapshot>((resolve, reject) => {
          const onExit = () => reject(new Error("the function server exited"));
          this.#child.once("exit", onExit);
          const onMessage = (report: Report) => {
            if (!("snapshot" in report)) return;
            this.#child.off("message", onMessage);
            this.#child.off("exit", onExit);
            resolve(report.snapshot);
          };
          this.#child.on("message", onMessage);
          this.#child.send(command);
        }),
    );
    this.#queue = answer.catch(() => undefined);
    return answer;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = once(this.#child, "exit");
    this.#child.kill("SIGTERM");
    await exited;
  }
}
