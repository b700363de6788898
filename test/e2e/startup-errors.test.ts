// Starting the real `eddy run` where something is in the way: a taken port, a bad --host,
// a state directory that cannot be created, another Eddy on the same state directory. Each
// is one line on stderr naming what is wrong, exit status 1, and the process gone. And what
// must not be in the way: a pid file left by kill -9 naming a live process that is not
// Eddy, or naming the killed Eddy while it is still a zombie.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type CommandResult, EddyProcess, playgroundYaml, runEddyCommand, withEddy } from "./smoke/cluster.ts";

const moduleYaml = playgroundYaml(["greetings"]);

function runArgs(eddy: EddyProcess, ...extra: string[]): string[] {
  return ["run", eddy.modulePath, "--state-dir", eddy.stateDir, ...extra];
}

/** The CLI's answer to a failed start: exit 1 and exactly one line, with no stack trace. */
function assertOneLineFailure(result: CommandResult, expected: RegExp): void {
  const shown = `status ${result.status}\n--- stderr ---\n${result.stderr}--- stdout ---\n${result.stdout}`;
  assert.equal(result.status, 1, shown);
  assert.doesNotMatch(result.stderr, /^\s+at /m, shown);
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, shown);
  assert.match(lines[0] as string, /^eddy run: /, shown);
  assert.match(lines[0] as string, expected, shown);
}

async function occupy(port: number): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return server;
}

/** Writes the module (ports filled in) by starting and stopping once. */
async function prepared(): Promise<EddyProcess> {
  const eddy = new EddyProcess({ moduleYaml, args: ["run", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}"] });
  await eddy.start();
  assert.equal(await eddy.stop(), 0);
  return eddy;
}

describe("eddy run: startup failures are one line", { timeout: 60_000 }, () => {
  it("a taken ingress port names the port, the host and the ingress that wanted it, and nothing stays running", async () => {
    const eddy = await prepared();
    await withEddy(eddy, async () => {
      const blocker = await occupy(eddy.ingressPort);
      try {
        const result = await runEddyCommand(runArgs(eddy));
        assertOneLineFailure(
          result,
          new RegExp(
            `port ${eddy.ingressPort} on 127\\.0\\.0\\.1 is in use; the ingress io\\.statefun\\.playground\\.v1/ingress \\(.*module\\.yaml:\\d+:\\d+\\) wants it`,
          ),
        );
      } finally {
        blocker.close();
      }
      // The failed start left the state directory free: the same command now runs.
      await eddy.start();
    });
  });

  it("a taken egress port names the egress", async () => {
    const eddy = await prepared();
    await withEddy(eddy, async () => {
      const blocker = await occupy(eddy.egressPort);
      try {
        const result = await runEddyCommand(runArgs(eddy));
        assertOneLineFailure(
          result,
          new RegExp(
            `port ${eddy.egressPort} on 127\\.0\\.0\\.1 is in use; the egress io\\.statefun\\.playground\\.v1/egress`,
          ),
        );
      } finally {
        blocker.close();
      }
    });
  });

  it("a --host that is no address of this machine, and one that does not resolve", async () => {
    const eddy = await prepared();
    await withEddy(eddy, async () => {
      // 192.0.2.0/24 is TEST-NET-1: never assigned to a real interface.
      const foreign = await runEddyCommand(runArgs(eddy, "--host", "192.0.2.1"));
      assertOneLineFailure(foreign, /192\.0\.2\.1.*(--host)|(--host).*192\.0\.2\.1/);
      const unknown = await runEddyCommand(runArgs(eddy, "--host", "no-such-host.invalid"));
      assertOneLineFailure(unknown, /no-such-host\.invalid/);
    });
  });

  it("--threads 2 with what partition threads do not run yet names each, and where", async () => {
    const eddy = await prepared();
    await withEddy(eddy, async () => {
      const kafka = eddy.writeFile(
        "kafka.yaml",
        `kind: io.statefun.kafka.v1/ingress
spec:
  id: threads/in
  address: 127.0.0.1:9
  startupPosition:
    type: earliest
  topics:
    - topic: in
      valueType: threads/In
      targets:
        - threads/counter
`,
      );
      const result = await runEddyCommand([...runArgs(eddy, "--threads", "2", "--admin-port", "0"), kafka]);
      assertOneLineFailure(
        result,
        /--threads 2 does not run these yet: io\.statefun\.kafka\.v1\/ingress threads\/in \(.*kafka\.yaml:\d+:\d+\); the admin listener \(run with --admin-port off\)\. Run them with --threads 1/,
      );
      // The directory was never opened: the same state directory starts at once without threads.
      await eddy.start();
    });
  });

  it("a state directory that cannot be created names it", async () => {
    const eddy = await prepared();
    await withEddy(eddy, async () => {
      const file = eddy.writeFile("not-a-directory", "");
      const result = await runEddyCommand(["run", eddy.modulePath, "--state-dir", join(file, "state")]);
      assertOneLineFailure(result, /cannot create the state directory .*not-a-directory\/state/);
    });
  });
});

describe("eddy run: one Eddy per state directory", { timeout: 60_000 }, () => {
  it("a second eddy run on a live state directory is refused, naming the directory, the holder and the fix", async () => {
    const eddy = new EddyProcess({ moduleYaml, args: ["run", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}"] });
    await withEddy(eddy, async () => {
      await eddy.start();
      const holder = Number(readFileSync(join(eddy.stateDir, "eddy.pid"), "utf8"));
      // Other ports, so that only the state directory is in the way.
      const other = eddy.writeFile("other.yaml", moduleYaml.replaceAll(/\{\{\w+_PORT\}\}/g, "0"));
      const second = await runEddyCommand(["run", other, "--state-dir", eddy.stateDir]);
      assertOneLineFailure(second, new RegExp(`${eddy.stateDir} is in use by Eddy process ${holder}; stop it first`));
      // The CLI's other commands see it running too, and ask it.
      const replay = await runEddyCommand(["dead-letters", "replay", "--all", "--state-dir", eddy.stateDir]);
      assert.equal(replay.status, 0, replay.stderr);
      assert.match(
        replay.stdout,
        new RegExp(`^0 dead letter\\(s\\) replayed by the Eddy on .* \\(process ${holder}\\)$`, "m"),
      );
    });
  });

  it("a stale eddy.pid naming a live process that is not Eddy does not block the start", async () => {
    const eddy = await prepared();
    await withEddy(eddy, async () => {
      // What kill -9 leaves behind once the pid is reused: here, the test runner's own.
      writeFileSync(join(eddy.stateDir, "eddy.pid"), String(process.pid));
      await eddy.start();
      assert.equal(await eddy.stop(), 0);
      const replay = await runEddyCommand(["dead-letters", "replay", "--all", "--state-dir", eddy.stateDir]);
      assert.doesNotMatch(replay.stderr, /is running on/);
    });
  });

  it("restarts at once after kill -9, while the killed Eddy is still a zombie", async () => {
    const eddy = await prepared();
    await withEddy(eddy, async () => {
      // The shell starts Eddy in the background, then becomes `sleep`, which never reaps it:
      // once killed, Eddy stays a zombie for as long as the sleep runs.
      const eddyBin = join(import.meta.dirname, "../../node_modules/.bin/eddy");
      const log = join(eddy.dir, "first.log");
      const parent = spawn(
        "sh",
        [
          "-c",
          `"$0" run "$1" --state-dir "$2" >"$3" 2>&1 & exec sleep 60`,
          eddyBin,
          eddy.modulePath,
          eddy.stateDir,
          log,
        ],
        { stdio: "ignore" },
      );
      try {
        let output = "";
        for (let tries = 0; tries < 300 && !output.includes("eddy: running"); tries++) {
          await sleep(50);
          output = readFileSync(log, "utf8");
        }
        assert.match(output, /eddy: running/);
        const pid = Number(readFileSync(join(eddy.stateDir, "eddy.pid"), "utf8"));
        process.kill(pid, "SIGKILL");
        let state = "";
        for (let tries = 0; tries < 200 && state !== "Z"; tries++) {
          await sleep(10);
          state = /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, "utf8"))?.[1] ?? "";
        }
        assert.equal(state, "Z", "the killed Eddy is a zombie");
        await eddy.start();
      } finally {
        const exited = once(parent, "exit");
        parent.kill("SIGKILL");
        await exited;
      }
    });
  });
});
