// Runs the real `eddy` CLI as a child process for end-to-end tests, on fixed ports so
// it can be killed (SIGKILL) and restarted on the same state directory.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "../../support/ports.ts";

export { freePort };

const root = resolve(import.meta.dirname, "../../..");
const eddyBin = join(root, "node_modules/.bin/eddy");

// The Eddys these helpers start inherit this: each takes a free admin port unless a test names
// one, however the tests are run (npm test sets the same; a soak script or `node --test` alone
// does not), so several workers, or a developer's Eddy on 8093, never collide.
process.env.EDDY_ADMIN_PORT ??= "0";

export interface CommandResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the `eddy` CLI once and collects its output. Asynchronous on purpose: tests that
 * serve functions from their own process must keep answering while it runs.
 */
export async function runEddyCommand(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<CommandResult> {
  const child = spawn(eddyBin, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [status] = (await once(child, "close")) as [number | null];
  return { status, stdout, stderr };
}

/** The playground ingress and egress documents of a module, on the ports EddyProcess fills in. */
export function playgroundYaml(topics: readonly string[]): string {
  return `kind: io.statefun.playground.v1/ingress
spec:
  port: {{INGRESS_PORT}}
---
kind: io.statefun.playground.v1/egress
spec:
  port: {{EGRESS_PORT}}
  topics: [${topics.join(", ")}]
`;
}

/** The smoke functions' HTTP endpoint (statefun.smoke.e2e/*) at `functionsUrl`, as a module document. */
export function smokeEndpointYaml(functionsUrl: string): string {
  return `kind: io.statefun.endpoints.v2/http
spec:
  functions: statefun.smoke.e2e/*
  urlPathTemplate: ${functionsUrl}
  maxNumBatchRequests: 10000
  transport:
    call: 10s
---
`;
}

/** `eddy dev` on the greeter example with the module EddyProcess writes, plus `extra` options. */
export function greeterDevArgs(...extra: string[]): string[] {
  return ["dev", "examples/greeter/functions.ts", "--module", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}", ...extra];
}

/** The HTTP endpoint of `functions` (a pattern such as `ns/*`) at `url`, and the playground ingress. */
export function endpointAndIngressYaml(functions: string, url: string): string {
  return `kind: io.statefun.endpoints.v2/http
spec:
  functions: ${functions}
  urlPathTemplate: ${url}
---
kind: io.statefun.playground.v1/ingress
spec:
  port: {{INGRESS_PORT}}
`;
}

/**
 * A worker of the cluster `bootstrap`/`cluster` (`eddy run --cluster`) running `moduleYaml`, its
 * state in its own directory, its snapshots in `checkpoints` (a directory every worker of the
 * cluster shares: a partition's snapshots must be where its next owner looks).
 */
export function clusterWorkerProcess(options: {
  readonly moduleYaml: string;
  readonly bootstrap: string;
  readonly cluster: string;
  readonly workerId: string;
  readonly checkpoints: string;
}): EddyProcess {
  return new EddyProcess({
    moduleYaml: options.moduleYaml,
    args: [
      "run",
      "{{MODULE}}",
      "--state-dir",
      "{{STATE_DIR}}",
      "--cluster",
      `kafka://${options.bootstrap}/${options.cluster}`,
      "--checkpoints",
      `file://${options.checkpoints}`,
      "--worker-id",
      options.workerId,
    ],
  });
}

/**
 * A counting instance's count, asked of one worker with request-reply (a string "get" to
 * `<typename>/<id>`; a worker that does not run the instance forwards it to the one that
 * does); undefined while it cannot answer.
 */
export async function askCount(via: EddyProcess, typename: string, id: number): Promise<number | undefined> {
  const response = await fetch(`${via.ingressUrl()}${typename}/${id}`, {
    method: "PUT",
    headers: { "content-type": "text/plain", prefer: "wait=5" },
    body: "get",
  }).catch(() => undefined);
  if (response === undefined) return undefined;
  const text = await response.text();
  return response.status === 200 ? Number(text) : undefined;
}

/**
 * Waits (up to 90 s) until instances 0 … ids-1 of `typename`, asked of the workers in turn, have
 * each counted `total` records spread round-robin over them (record n to instance n mod ids);
 * fails at once on a count above that.
 */
export async function waitForExactCounts(
  workers: readonly EddyProcess[],
  typename: string,
  ids: number,
  total: number,
): Promise<void> {
  const expected = (id: number) => Math.floor(total / ids) + (id < total % ids ? 1 : 0);
  let last: (number | undefined)[] = [];
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    last = [];
    for (let id = 0; id < ids; id++) {
      const count = await askCount(workers[id % workers.length] as EddyProcess, typename, id);
      if (count !== undefined && count > expected(id))
        throw new Error(`instance ${id} counted ${count} of ${expected(id)}`);
      last.push(count);
    }
    if (last.every((count, id) => count === expected(id))) return;
    await new Promise((resume) => setTimeout(resume, 300));
  }
  throw new Error(`counts ${JSON.stringify(last)}, expected ${expected(0)} or ${expected(ids - 1)} each`);
}

export interface EddyProcessOptions {
  /** The module.yaml text; `{{INGRESS_PORT}}` and `{{EGRESS_PORT}}` are filled in. */
  readonly moduleYaml: string;
  /** Arguments after `eddy`, with `{{MODULE}}`, `{{STATE_DIR}}` and `{{DIR}}` (the deployment's folder) filled in. */
  readonly args: readonly string[];
  /** Variables added to the test's environment for the process (OTEL_*, say). */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * The partitions a cluster worker runs now, from its dead-letter route (GET /dead-letters, which
 * names them); none while it does not answer. `headers`: its token, if it needs one.
 */
export async function partitionsOf(eddy: EddyProcess, headers: Record<string, string> = {}): Promise<number[]> {
  const response = await fetch(`${eddy.ingressUrl()}dead-letters`, { headers }).catch(() => undefined);
  if (response?.status !== 200) return [];
  return ((await response.json()) as { partitions: number[] }).partitions;
}

/** One Eddy deployment: a state directory and fixed ports that survive restarts. */
export class EddyProcess {
  readonly dir = mkdtempSync(join(tmpdir(), "eddy-e2e-"));
  readonly stateDir = join(this.dir, "state");
  readonly modulePath = join(this.dir, "module.yaml");
  ingressPort = 0;
  egressPort = 0;
  #child: ChildProcess | undefined;
  readonly #options: EddyProcessOptions;
  /** Everything the runtime printed, across restarts (for failure messages). */
  output = "";

  constructor(options: EddyProcessOptions) {
    this.#options = options;
  }

  ingressUrl(): string {
    return `http://127.0.0.1:${this.ingressPort}/`;
  }

  egressUrl(): string {
    return `http://127.0.0.1:${this.egressPort}/`;
  }

  /** Starts the runtime; `extraArgs` are added to the options' arguments for this start only. */
  async start(extraArgs: readonly string[] = []): Promise<void> {
    if (this.ingressPort === 0) {
      this.ingressPort = await freePort();
      this.egressPort = await freePort();
      const yaml = this.#options.moduleYaml
        .replaceAll("{{INGRESS_PORT}}", String(this.ingressPort))
        .replaceAll("{{EGRESS_PORT}}", String(this.egressPort));
      writeFileSync(this.modulePath, yaml);
    }
    const args = [...this.#options.args, ...extraArgs].map((arg) =>
      arg
        .replaceAll("{{MODULE}}", this.modulePath)
        .replaceAll("{{STATE_DIR}}", this.stateDir)
        .replaceAll("{{DIR}}", this.dir),
    );
    const env = this.#options.env === undefined ? process.env : { ...process.env, ...this.#options.env };
    const child = spawn(eddyBin, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env });
    this.#child = child;
    child.stderr?.on("data", (chunk: Buffer) => {
      this.output += chunk.toString();
    });
    let ready = false;
    // Only this start's output: the last one's "running" line must not make a restart look ready.
    const startsAt = this.output.length;
    const started = new Promise<void>((resolveStarted, reject) => {
      child.stdout?.on("data", (chunk: Buffer) => {
        this.output += chunk.toString();
        if (!ready && this.output.slice(startsAt).includes("eddy: running")) {
          ready = true;
          resolveStarted();
        }
      });
      child.once("exit", (code, signal) => {
        if (!ready) reject(new Error(`eddy exited before it was ready (${code ?? signal}):\n${this.output}`));
      });
    });
    await started;
  }

  /** kill -9: no shutdown hook runs, the group commit in flight may be cut off. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  }

  /** SIGSTOP: the process is frozen (a zombie once its session times out) until resume(). */
  pause(): void {
    this.#child?.kill("SIGSTOP");
  }

  /** SIGCONT after pause(). */
  resume(): void {
    this.#child?.kill("SIGCONT");
  }

  /** SIGTERM and wait: the clean shutdown path. Returns the exit code. */
  async stop(): Promise<number | null> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = once(child, "exit") as Promise<[number | null]>;
    child.kill("SIGTERM");
    const [code] = await exited;
    return code;
  }

  /** Deletes the state directory (a lost disk); the process must not run. */
  wipeState(): void {
    rmSync(this.stateDir, { recursive: true, force: true });
  }

  /** Kills the process if it runs and deletes the deployment's directory. */
  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  writeFile(name: string, text: string): string {
    const path = join(this.dir, name);
    writeFileSync(path, text);
    return path;
  }
}

/** Runs `work` against `eddy`, then disposes of it; a failure carries the end of Eddy's output. */
export async function withEddy(eddy: EddyProcess, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\n--- eddy output ---\n${eddy.output.slice(-4000)}`,
    );
  } finally {
    await eddy.dispose();
  }
}
