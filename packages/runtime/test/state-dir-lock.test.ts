// One Eddy per state directory, decided by a lock that dies with its process: a stale
// eddy.pid (left by kill -9, naming a pid the OS has since given to someone else) never
// blocks a start, a live holder always does, and of two starting at once exactly one wins.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createEndpoint } from "@eddy/sdk";
import { greeter, person } from "../../../examples/greeter/functions.ts";
import { parseModule } from "../src/config/index.ts";
import { RUNNING_MARKER, type RunningRuntime, runningProcess, StartupError, startRuntime } from "../src/runtime.ts";

const root = mkdtempSync(join(tmpdir(), "eddy-lock-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `state-${++dirs}`);

const loaded = parseModule(
  "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 8090\n---\nkind: io.statefun.playground.v1/egress\nspec:\n  port: 8091\n  topics: [greetings]\n",
  "module.yaml",
);
assert.ok(loaded.ok);
const module = loaded.module;

function start(stateDir: string): Promise<RunningRuntime> {
  return startRuntime({
    module,
    stateDir,
    portOverride: 0,
    partitionCount: 4,
    inProcess: createEndpoint([person, greeter]),
    log: () => {},
  });
}

/** A live process that is not Eddy (what a pid reused after a reboot or container restart names). */
async function unrelatedProcess(): Promise<{ pid: number; stop(): Promise<void> }> {
  const child = spawn("sleep", ["60"], { stdio: "ignore" });
  await once(child, "spawn");
  return {
    pid: child.pid as number,
    async stop() {
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    },
  };
}

describe("state directory lock", () => {
  it("a stale eddy.pid naming a live unrelated process neither blocks a start nor counts as running", async () => {
    const stateDir = freshDir();
    mkdirSync(stateDir, { recursive: true });
    const sleeper = await unrelatedProcess();
    try {
      writeFileSync(join(stateDir, RUNNING_MARKER), String(sleeper.pid));
      assert.equal(runningProcess(stateDir), undefined);
      const runtime = await start(stateDir);
      await runtime.stop();
      // pid 1 is always alive (and never ours): the restart-in-a-container case.
      writeFileSync(join(stateDir, RUNNING_MARKER), "1");
      assert.equal(runningProcess(stateDir), undefined);
      await (await start(stateDir)).stop();
    } finally {
      await sleeper.stop();
    }
  });

  it("a second start on a live state directory is refused, naming the directory, the holder and the fix", async () => {
    const stateDir = freshDir();
    const first = await start(stateDir);
    try {
      await assert.rejects(start(stateDir), (error: unknown) => {
        assert.ok(error instanceof StartupError, String(error));
        assert.ok(error.message.includes(stateDir), error.message);
        assert.match(error.message, new RegExp(`process ${process.pid}\\b`));
        assert.match(error.message, /stop it first/);
        return true;
      });
      assert.equal(runningProcess(stateDir), process.pid);
    } finally {
      await first.stop();
    }
    assert.equal(runningProcess(stateDir), undefined);
    await (await start(stateDir)).stop();
  });

  it("of two starts at the same moment on one state directory, exactly one wins", async () => {
    const stateDir = freshDir();
    const results = await Promise.allSettled([start(stateDir), start(stateDir)]);
    const won = results.filter((result) => result.status === "fulfilled");
    const lost = results.filter((result) => result.status === "rejected");
    for (const result of won) await result.value.stop();
    assert.equal(won.length, 1, lost.map((result) => String(result.reason)).join("\n"));
    assert.match(String(lost[0]?.reason), /stop it first/);
  });
});
