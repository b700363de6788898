// The Eddy processes one configuration of bench/cluster runs: `eddy run` embedded, or N
// workers of one cluster (`eddy run --cluster`), each a child process with its own state
// directory, playground ingress and module.yaml. Each process's module points at its own port
// of the function server (functions.ts), which is how the function server tells them apart.
// Ends only what it started, by PID.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { freePort } from "../../test/support/ports.ts";

const root = resolve(import.meta.dirname, "../..");
const RUNNING = /eddy: running /;
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const OUTPUT_QUOTED_CHARS_MAX = 4_000;

/**
 * A configuration: embedded, or a cluster of N workers; `baseline` runs the `eddy` of another
 * checkout (with its node_modules) instead of this one's, to compare two commits in one run.
 */
export type DeploymentKind = (
  | { readonly kind: "embedded" }
  | { readonly kind: "cluster"; readonly workers: number }
) & { readonly baseline?: string };

/** The `eddy` command of the checkout at `checkout`. */
export function eddyBinOf(checkout: string): string {
  return join(checkout, "node_modules/.bin/eddy");
}

/** One `eddy run` process: started again, killed, stopped, always by its own PID. Its output goes to a log file. */
export class RuntimeProcess {
  readonly label: string;
  readonly ingressUrl: string;
  readonly logPath: string;
  readonly #args: readonly string[];
  /** The checkout whose `eddy` runs (its own directory is the working directory). */
  readonly #checkout: string;
  #child: ChildProcess | undefined;

  constructor(label: string, ingressUrl: string, args: readonly string[], logPath: string, checkout = root) {
    this.label = label;
    this.ingressUrl = ingressUrl;
    this.#args = args;
    this.logPath = logPath;
    this.#checkout = checkout;
  }

  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    const child = this.#child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** Its admin listener's URL, as the latest start printed it (`eddy: admin listening on URL …`). */
  adminUrl(): string | undefined {
    const said = [...this.log().matchAll(/eddy: admin listening on (\S+)/g)].at(-1);
    return said?.[1];
  }

  /** The end of what it printed, for error messages. */
  outputTail(chars = OUTPUT_QUOTED_CHARS_MAX): string {
    return this.log().slice(-chars);
  }

  /** Everything it printed, across restarts. */
  log(): string {
    return existsSync(this.logPath) ? readFileSync(this.logPath, "utf8") : "";
  }

  /** Spawns it and waits for the line that says it runs (it has joined its cluster and listens). */
  async start(): Promise<void> {
    const from = existsSync(this.logPath) ? statSync(this.logPath).size : 0;
    const log = openSync(this.logPath, "a");
    const child = spawn(eddyBinOf(this.#checkout), this.#args, { cwd: this.#checkout, stdio: ["ignore", log, log] });
    closeSync(log);
    this.#child = child;
    const deadline = performance.now() + START_TIMEOUT_MS;
    while (performance.now() < deadline && this.running) {
      if (RUNNING.test(readFileSync(this.logPath, "utf8").slice(from))) return;
      await sleep(50);
    }
    const why = this.running ? `did not say it runs within ${START_TIMEOUT_MS / 1000} s` : "exited";
    await this.kill();
    throw new Error(`eddy ${this.label} ${why}:\n${this.outputTail()}`);
  }

  /** kill -9: no shutdown hook runs. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.running) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  }

  /** SIGTERM, then SIGKILL if it has not gone within STOP_TIMEOUT_MS. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.running) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const gone = await Promise.race([exited.then(() => true), sleep(STOP_TIMEOUT_MS, false, { ref: false })]);
    if (!gone && this.running) {
      child.kill("SIGKILL");
      await exited;
    }
  }
}

export interface Deployment {
  /** "embedded", "1 worker", "2 workers"; " (baseline)" after a baseline's. */
  readonly name: string;
  readonly processes: readonly RuntimeProcess[];
  /** Where the modules, state directories, checkpoints and logs (<label>.log) are. */
  readonly dir: string;
  /** Stops every process and removes `dir`, unless asked to keep it (to read the logs). */
  stop(keep?: boolean): Promise<void>;
}

/** The labels of a configuration's processes, which the function server must serve before it starts. */
export function labelsOf(kind: DeploymentKind): string[] {
  return kind.kind === "embedded" ? ["embedded"] : Array.from({ length: kind.workers }, (_, index) => `w${index + 1}`);
}

export function nameOf(kind: DeploymentKind): string {
  const name = kind.kind === "embedded" ? "embedded" : `${kind.workers} worker${kind.workers === 1 ? "" : "s"}`;
  return kind.baseline === undefined ? name : `${name} (baseline)`;
}

function moduleYaml(functionsUrl: string, ingressPort: number): string {
  return `kind: io.statefun.endpoints.v2/http
spec:
  functions: bench/*
  urlPathTemplate: ${functionsUrl}
---
kind: io.statefun.playground.v1/ingress
spec:
  port: ${ingressPort}
`;
}

/**
 * Starts the processes of `kind` (workers all at once, as a deployment would) and resolves once
 * each has said it runs. `functionUrls` maps each label of labelsOf(kind) to its function port.
 */
export async function startDeployment(
  kind: DeploymentKind,
  functionUrls: Readonly<Record<string, string>>,
  cluster: { readonly bootstrap: string; readonly name: string } | undefined,
): Promise<Deployment> {
  const dir = mkdtempSync(join(tmpdir(), "eddy-bench-cluster-"));
  const processes: RuntimeProcess[] = [];
  for (const label of labelsOf(kind)) {
    const functionsUrl = functionUrls[label];
    if (functionsUrl === undefined) throw new Error(`the function server serves no ${label}`);
    const port = await freePort();
    const modulePath = join(dir, `${label}.yaml`);
    writeFileSync(modulePath, moduleYaml(functionsUrl, port));
    // Workers of one machine: each its own admin port (the default 8093 would be taken twice).
    const args = ["run", modulePath, "--state-dir", join(dir, `state-${label}`), "--admin-port", "0"];
    if (kind.kind === "cluster") {
      if (cluster === undefined) throw new Error("a cluster needs a broker");
      args.push(
        "--cluster",
        `kafka://${cluster.bootstrap}/${cluster.name}`,
        "--checkpoints",
        pathToFileURL(join(dir, "checkpoints")).href,
        "--worker-id",
        label,
      );
    }
    processes.push(
      new RuntimeProcess(label, `http://127.0.0.1:${port}`, args, join(dir, `${label}.log`), kind.baseline ?? root),
    );
  }
  const stop = async (keep = false) => {
    await Promise.all(processes.map((each) => each.stop()));
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(processes.map((each) => each.start()));
  } catch (error) {
    await stop();
    throw error;
  }
  return { name: nameOf(kind), processes, dir, stop };
}
