// What a user meets at the command line besides a command's work: every command answers
// --help and -h with its own usage; output cut short by a closed pipe (`| head -1`) ends
// quietly; an unreachable or unauthorized checkpoint store, a missing functions file and
// other mistakes of the user or the environment are one line naming what and where, never
// a stack trace.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { seedDeadLetters } from "../support/dead-letter-store.ts";
import { type CommandResult, freePort, runEddyCommand } from "./smoke/cluster.ts";

const root = resolve(import.meta.dirname, "../..");
const eddyBin = resolve(root, "node_modules/.bin/eddy");

const COMMANDS = ["run", "dev", "serve", "send", "dead-letters", "state", "top", "checkpoints", "savepoint"] as const;

function show(result: CommandResult): string {
  return `exit ${result.status}\n--- stdout ---\n${result.stdout}--- stderr ---\n${result.stderr}`;
}

/** The command failed with exactly one line on stderr, and no stack. */
function assertOneLine(result: CommandResult, status: number, pattern: RegExp): void {
  assert.equal(result.status, status, show(result));
  assert.equal(result.stderr.trimEnd().split("\n").length, 1, `one line\n${show(result)}`);
  assert.match(result.stderr, pattern, show(result));
}

describe("every command answers --help", () => {
  for (const command of COMMANDS) {
    it(`eddy ${command} --help and -h print its own usage on stdout and exit 0`, async () => {
      const results = await Promise.all(["--help", "-h"].map((flag) => runEddyCommand([command, flag])));
      for (const result of results) {
        assert.equal(result.status, 0, show(result));
        assert.equal(result.stderr, "", show(result));
        assert.match(result.stdout, new RegExp(`^Usage: eddy ${command} `), show(result));
        assert.match(result.stdout, /-h, --help/);
      }
    });
  }

  it("help wins over the rest of the line, and `eddy help <command>` says the same", async () => {
    const withArgs = await runEddyCommand(["run", "module.yaml", "--state-dir", "x", "--help"]);
    assert.equal(withArgs.status, 0, show(withArgs));
    assert.match(withArgs.stdout, /^Usage: eddy run /);
    const help = await runEddyCommand(["help", "dead-letters"]);
    assert.equal(help.status, 0, show(help));
    assert.equal(help.stdout, (await runEddyCommand(["dead-letters", "--help"])).stdout);
  });

  it("the top-level help lists every command", async () => {
    const result = await runEddyCommand(["--help"]);
    assert.equal(result.status, 0, show(result));
    for (const command of COMMANDS) assert.match(result.stdout, new RegExp(`^  ${command} `, "m"));
  });
});

describe("a closed pipe", () => {
  const directories: string[] = [];
  after(() => {
    for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  });

  it("`eddy dead-letters list | head -1` ends quietly with exit 0", async () => {
    // ~500 kB of listing: far more than a pipe buffers, so writes hit the closed pipe.
    const { stateDir } = await seedDeadLetters({ partitions: 2, perPartition: 2500 });
    directories.push(stateDir);
    const child = spawn(eddyBin, ["dead-letters", "list", "--state-dir", stateDir], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    let first = "";
    child.stdout.once("data", (chunk: Buffer) => {
      first = chunk.toString().split("\n")[0] ?? "";
      child.stdout.destroy();
    });
    const [status, signal] = (await once(child, "close")) as [number | null, NodeJS.Signals | null];
    assert.match(first, /^0-1-1 {2}/);
    assert.equal(stderr, "", "nothing on stderr");
    assert.deepEqual([status, signal], [0, null]);
  });
});

describe("known errors are one line", () => {
  const directories: string[] = [];
  after(() => {
    for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  });

  /** An environment with no AWS credentials anywhere the SDK looks (and no instance metadata to ask). */
  function withoutAwsCredentials(): NodeJS.ProcessEnv {
    const home = mkdtempSync(join(tmpdir(), "eddy-no-aws-"));
    directories.push(home);
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(process.env)) if (!name.startsWith("AWS_")) env[name] = value;
    return {
      ...env,
      HOME: home,
      AWS_CONFIG_FILE: join(home, "config"),
      AWS_SHARED_CREDENTIALS_FILE: join(home, "credentials"),
      AWS_EC2_METADATA_DISABLED: "true",
    };
  }

  it("an S3 endpoint nobody listens on: `eddy checkpoints list|verify` name the URL and the cause", async () => {
    const port = await freePort();
    const url = `s3://bucket/prefix?endpoint=http://127.0.0.1:${port}`;
    const env = { ...withoutAwsCredentials(), AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" };
    for (const action of ["list", "verify"]) {
      const result = await runEddyCommand(["checkpoints", action, "--checkpoints", url], env);
      assertOneLine(result, 1, new RegExp(`^eddy checkpoints: ${url.replace(/[.?/]/g, "\\$&")}: .*ECONNREFUSED`));
    }
  });

  it("S3 without credentials: `eddy checkpoints list` says so in one line", async () => {
    const port = await freePort();
    const url = `s3://bucket/prefix?endpoint=http://127.0.0.1:${port}`;
    const result = await runEddyCommand(["checkpoints", "list", "--checkpoints", url], withoutAwsCredentials());
    assertOneLine(result, 1, /^eddy checkpoints: s3:\/\/bucket\/prefix\?endpoint=\S+: .*credentials/i);
  });

  it("a functions file that does not exist is named by `eddy serve` and `eddy dev`", async () => {
    const serve = await runEddyCommand(["serve", "no/such/functions.ts"]);
    assertOneLine(serve, 1, /^eddy serve: .*no\/such\/functions\.ts/);
    const dev = await runEddyCommand(["dev", "no/such/functions.ts", "--module", "examples/greeter/module.yaml"]);
    assertOneLine(dev, 1, /^eddy dev: .*no\/such\/functions\.ts/);
  });

  it("a port in use is named by `eddy serve`", async () => {
    const blocker = spawn(eddyBin, ["serve", "examples/greeter/functions.ts", "--port", "0"], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const [line] = (await once(blocker.stdout, "data")) as [Buffer];
      const port = /127\.0\.0\.1:(\d+)/.exec(line.toString())?.[1];
      assert.ok(port !== undefined, line.toString());
      const result = await runEddyCommand(["serve", "examples/greeter/functions.ts", "--port", port]);
      assertOneLine(result, 1, new RegExp(`^eddy serve: listen EADDRINUSE: .* 127\\.0\\.0\\.1:${port} `));
    } finally {
      blocker.kill("SIGTERM");
      await once(blocker, "close");
    }
  });

  it("a usage error is the error and where to read the usage, not the whole usage", async () => {
    const result = await runEddyCommand(["dead-letters", "replay"]);
    assert.equal(result.status, 2, show(result));
    assert.equal(
      result.stderr,
      "eddy dead-letters: give dead letter ids or --all\n(eddy dead-letters --help shows its usage)\n",
    );
  });
});
