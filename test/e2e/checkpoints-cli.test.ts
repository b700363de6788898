// The checkpoint CLI against the real `eddy` binary (docs/checkpoints.md): `checkpoints
// create` and `savepoint` go through the control socket of the Eddy running on a state
// directory, or open a stopped one directly; `list` and `verify` show what a store holds
// and name every bad object; `restore` and a start on an empty disk bring the state back,
// skipping a checkpoint whose data was altered or whose manifest was cut off.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { greeting } from "../../examples/greeter/functions.ts";
import {
  type CommandResult,
  EddyProcess,
  freePort,
  greeterDevArgs,
  playgroundYaml,
  runEddyCommand,
} from "./smoke/cluster.ts";

/** The subset of a stored manifest (docs/checkpoints.md) this test reads. */
interface StoredManifest {
  readonly id: string;
  readonly seq: number;
  readonly base: { readonly files: readonly { readonly key: string }[] };
  readonly deltas: readonly { readonly files: readonly { readonly key: string }[] }[];
}

interface ListedCatalog {
  readonly checkpoints: readonly { readonly key: string; readonly manifest: StoredManifest }[];
  readonly savepoints: readonly {
    readonly key: string;
    readonly manifest: StoredManifest & { readonly name: string };
  }[];
  readonly unreadable: readonly { readonly key: string; readonly error: string }[];
}

/** `text` as a literal in a RegExp (paths and object keys hold dots). */
function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

function show(result: CommandResult): string {
  return `exit ${result.status}\n--- stdout ---\n${result.stdout}--- stderr ---\n${result.stderr}`;
}

/** Runs `eddy <args>` and checks its exit code; the failure message carries everything it printed. */
async function eddyCommand(args: readonly string[], status: number): Promise<CommandResult> {
  const result = await runEddyCommand(args);
  assert.equal(result.status, status, `eddy ${args.join(" ")}: expected exit ${status}\n${show(result)}`);
  return result;
}

function assertPrinted(result: CommandResult, pattern: RegExp, what: string): void {
  assert.match(`${result.stdout}${result.stderr}`, pattern, `${what}\n${show(result)}`);
}

/** The greeter's answer to ada, through `eddy send --wait` on the deployment's ingress. */
async function greetAda(eddy: EddyProcess): Promise<string> {
  const args = ["send", "example/person/ada", '{"name":"ada"}', "--type", "example/GreetRequest", "--wait", "5"];
  const sent = await runEddyCommand([...args, "--ingress", eddy.ingressUrl()]);
  assert.equal(sent.status, 0, `eddy send failed\n${show(sent)}\n--- eddy output ---\n${eddy.output}`);
  return sent.stdout.trim();
}

function newGreeter(...extra: string[]): EddyProcess {
  return new EddyProcess({ moduleYaml: playgroundYaml(["greetings"]), args: greeterDevArgs(...extra) });
}

/** The pid the runtime wrote into its state directory (the CLI names it when it goes through the control socket). */
function runtimePid(eddy: EddyProcess): number {
  return Number(readFileSync(join(eddy.stateDir, "eddy.pid"), "utf8"));
}

/** A stored manifest is its JSON, then a line `sha256 <hex>`. */
function readManifest(store: string, id: string): StoredManifest {
  const text = readFileSync(join(store, "checkpoints", `${id}.json`), "utf8");
  return JSON.parse(text.slice(0, text.lastIndexOf("\nsha256 "))) as StoredManifest;
}

function takenCheckpointId(result: CommandResult, pid: number): string {
  const taken = new RegExp(`^checkpoint (\\S+) taken by process ${pid} `).exec(result.stdout);
  assert.ok(taken !== null, `expected "checkpoint <id> taken by process ${pid}"\n${show(result)}`);
  return taken[1] as string;
}

describe("eddy checkpoints and eddy savepoint on a running eddy dev", { timeout: 60_000 }, () => {
  let eddy: EddyProcess;
  let store: string;

  before(async () => {
    eddy = newGreeter("--checkpoints", "{{DIR}}/ckpt", "--checkpoint-interval", "0");
    store = join(eddy.dir, "ckpt");
    await eddy.start();
  });

  after(async () => {
    await eddy?.dispose();
  });

  it("create and savepoint go through the running process; list and verify show both", async () => {
    assert.equal(await greetAda(eddy), greeting("ada", 1));
    assert.equal(await greetAda(eddy), greeting("ada", 2));
    const pid = runtimePid(eddy);

    const created = await eddyCommand(["checkpoints", "create", "--state-dir", eddy.stateDir], 0);
    const id = takenCheckpointId(created, pid);
    const again = await eddyCommand(["checkpoints", "create", "--state-dir", eddy.stateDir], 0);
    assert.equal(again.stdout, `nothing committed since checkpoint ${id}\n`, show(again));

    const savepoint = await eddyCommand(["savepoint", "before-upgrade", "--state-dir", eddy.stateDir], 0);
    assertPrinted(savepoint, new RegExp(`^savepoint before-upgrade \\S+ taken by process ${pid} `), "savepoint taken");
    const twice = await eddyCommand(["savepoint", "before-upgrade", "--state-dir", eddy.stateDir], 1);
    assertPrinted(
      twice,
      /savepoint before-upgrade already exists in file:\/\/.*savepoints\/before-upgrade\.json/,
      "the second savepoint of the same name is refused",
    );
    const escaping = await eddyCommand(["savepoint", "../x", "--state-dir", eddy.stateDir], 2);
    assertPrinted(escaping, /savepoint name "\.\.\/x": expected 1–100 letters/, "the bad name is named");

    // After the savepoint: the restore in the next test must bring back visit 2, not this one.
    assert.equal(await greetAda(eddy), greeting("ada", 3));

    const [listed, json, verified] = await Promise.all([
      eddyCommand(["checkpoints", "list", "--checkpoints", store], 0),
      eddyCommand(["checkpoints", "list", "--checkpoints", store, "--json"], 0),
      eddyCommand(["checkpoints", "verify", "--checkpoints", store], 0),
    ]);
    assertPrinted(listed, new RegExp(`^checkpoint  ${id}  .*commits up to`, "m"), "the checkpoint is listed");
    assertPrinted(listed, /^savepoint before-upgrade {2}\S+ {2}.*commits up to/m, "the savepoint is listed");
    assertPrinted(listed, /^1 checkpoint\(s\), 1 savepoint\(s\) in file:\/\//m, "the summary line");
    const catalog = JSON.parse(json.stdout) as ListedCatalog;
    assert.deepEqual(
      {
        checkpoints: catalog.checkpoints.map((entry) => entry.manifest.id),
        savepoints: catalog.savepoints.map((entry) => entry.manifest.name),
        unreadable: catalog.unreadable,
      },
      { checkpoints: [id], savepoints: ["before-upgrade"], unreadable: [] },
      show(json),
    );
    assertPrinted(
      verified,
      /^2 checked in file:\/\/\S+, all sound$/m,
      "verify checks the checkpoint and the savepoint",
    );
  });

  it("restore by savepoint name brings the state back into a new state directory, never into one with state", async () => {
    const restored = newGreeter();
    try {
      const args = ["checkpoints", "restore", "before-upgrade", "--checkpoints", store, "--state-dir"];
      const done = await eddyCommand([...args, restored.stateDir], 0);
      assertPrinted(done, /^restored savepoint before-upgrade into /m, "restore reports what it restored");
      await restored.start();
      // The savepoint holds two visits; the live state had three.
      assert.equal(await greetAda(restored), greeting("ada", 3), restored.output);

      const refused = await eddyCommand([...args, eddy.stateDir], 1);
      assertPrinted(
        refused,
        new RegExp(`${literal(eddy.stateDir)} already holds state; restore into an empty or new state directory`),
        "the state directory is named",
      );
    } finally {
      await restored.dispose();
    }
  });
});

describe("a damaged checkpoint store", { timeout: 60_000 }, () => {
  it("verify names the altered data file and the truncated manifest; a start on an empty disk restores the newest good checkpoint", async () => {
    const original = newGreeter("--checkpoints", "{{DIR}}/ckpt", "--checkpoint-interval", "0");
    const replacement = newGreeter("--checkpoints", join(original.dir, "ckpt"), "--checkpoint-interval", "0");
    const store = join(original.dir, "ckpt");
    try {
      await original.start();
      const pid = runtimePid(original);
      const ids: string[] = [];
      for (const visit of [1, 2, 3]) {
        assert.equal(await greetAda(original), greeting("ada", visit));
        const created = await eddyCommand(["checkpoints", "create", "--state-dir", original.stateDir], 0);
        ids.push(takenCheckpointId(created, pid));
      }
      assert.equal(await original.stop(), 0, original.output);
      const [oldest, middle, newest] = ids as [string, string, string];

      // Alter a byte of a data file only the newest checkpoint lists (the older ones share the base).
      const newestManifest = readManifest(store, newest);
      const keys = [...newestManifest.base.files, ...newestManifest.deltas.flatMap((delta) => delta.files)].map(
        (file) => file.key,
      );
      const altered = keys.find((key) => key.startsWith(`data/${newest}/`));
      assert.ok(altered !== undefined, `no data file of its own in ${newest}: ${keys.join(", ")}`);
      const bytes = readFileSync(join(store, altered));
      const middleByte = bytes.length >> 1;
      bytes.writeUInt8((bytes.readUInt8(middleByte) ^ 0xff) & 0xff, middleByte);
      writeFileSync(join(store, altered), bytes);
      // Cut the oldest manifest in half: the middle checkpoint still restores from the base its data left.
      const truncated = `checkpoints/${oldest}.json`;
      truncateSync(join(store, truncated), readFileSync(join(store, truncated)).length >> 1);

      const [verified, listed] = await Promise.all([
        eddyCommand(["checkpoints", "verify", "--checkpoints", store], 1),
        eddyCommand(["checkpoints", "list", "--checkpoints", store], 0),
      ]);
      assertPrinted(
        verified,
        new RegExp(`^BAD  ${newest}\\n\\s+\\S+ ${literal(altered)}: .*\\(altered\\)$`, "m"),
        "verify names the altered file",
      );
      assertPrinted(
        verified,
        new RegExp(`^BAD  manifest \\S+ ${literal(truncated)}: .*truncated`, "m"),
        "verify names the truncated manifest",
      );
      assertPrinted(verified, new RegExp(`^ok   ${middle} `, "m"), "the middle checkpoint is sound");
      assertPrinted(verified, /2 checkpoint\(s\) or manifest\(s\) in \S+ would not restore/, "the count of bad ones");
      assertPrinted(
        listed,
        new RegExp(`^unreadable  manifest \\S+ ${literal(truncated)}: `, "m"),
        "the unreadable manifest",
      );
      assertPrinted(listed, /^2 checkpoint\(s\), 0 savepoint\(s\)/m, "the two readable checkpoints");

      await replacement.start();
      const output = replacement.output;
      assert.match(output, new RegExp(`"warn".*skipping checkpoint ${newest}: .*${literal(altered)}`), output);
      assert.match(output, new RegExp(`"warn".*skipping manifest .*${literal(truncated)}`), output);
      assert.match(output, new RegExp(`"info".*restored checkpoint ${middle} `), output);
      // The middle checkpoint holds two visits.
      assert.equal(await greetAda(replacement), greeting("ada", 3), replacement.output);
    } finally {
      await replacement.dispose();
      await original.dispose();
    }
  });
});

describe("eddy checkpoints create with no Eddy running", { timeout: 60_000 }, () => {
  it("needs --checkpoints, and with it takes the checkpoint directly", async () => {
    const eddy = newGreeter();
    try {
      await eddy.start();
      assert.equal(await greetAda(eddy), greeting("ada", 1));
      // Running, but without --checkpoints: the running Eddy says it takes none.
      const unreachable = await eddyCommand(["checkpoints", "create", "--state-dir", eddy.stateDir], 1);
      assertPrinted(unreachable, /this Eddy runs without --checkpoints: it takes no checkpoints/, "the hint");
      assert.equal(await eddy.stop(), 0, eddy.output);

      const bare = await eddyCommand(["checkpoints", "create", "--state-dir", eddy.stateDir], 2);
      assertPrinted(
        bare,
        /no Eddy runs on \S+: give --checkpoints <url> to take the checkpoint directly/,
        "the missing flag",
      );
      const store = join(eddy.dir, "ckpt");
      const direct = await eddyCommand(
        ["checkpoints", "create", "--state-dir", eddy.stateDir, "--checkpoints", store],
        0,
      );
      assertPrinted(direct, /^checkpoint \S+ taken \(/, "taken without a running process");
      assert.equal(readdirSync(join(store, "checkpoints")).length, 1, show(direct));

      // A mistyped state directory is refused and left as it was: nothing there would later
      // pass for state and stop a restore.
      const typo = join(eddy.dir, "sttae");
      const mistyped = await eddyCommand(["checkpoints", "create", "--state-dir", typo, "--checkpoints", store], 1);
      assertPrinted(mistyped, /sttae holds no Eddy state/, "the directory is named");
      assert.equal(existsSync(typo), false, "nothing was created");
    } finally {
      await eddy.dispose();
    }
  });
});

describe("bad checkpoint command lines", { timeout: 60_000 }, () => {
  it("an unsupported scheme, an interval without a store and an unknown action are refused", async () => {
    const eddy = newGreeter();
    try {
      // A valid module: the flags alone must be what is refused.
      const yaml = playgroundYaml(["greetings"])
        .replace("{{INGRESS_PORT}}", String(await freePort()))
        .replace("{{EGRESS_PORT}}", String(await freePort()));
      const module = eddy.writeFile("module.yaml", yaml);
      const nowhere = join(eddy.dir, "no-such-store");
      const [scheme, interval, action, unknown, empty] = await Promise.all([
        eddyCommand(["checkpoints", "list", "--checkpoints", "ftp://x"], 1),
        eddyCommand(["run", module, "--state-dir", eddy.stateDir, "--checkpoint-interval", "5s"], 2),
        eddyCommand(["checkpoints", "frobnicate"], 2),
        eddyCommand(["checkpoints", "list", "--checkpoints", nowhere, "--bogus"], 2),
        eddyCommand(["checkpoints", "verify", "--checkpoints", nowhere], 1),
      ]);
      assertPrinted(unknown, /Unknown option '--bogus'/, "the unknown option, as a usage error");
      // An empty state directory and a checkpoint store that cannot be reached: no start
      // (starting empty could lose every state), and no stack trace either.
      const unreachable = await runEddyCommand(
        [
          "run",
          module,
          "--state-dir",
          join(eddy.dir, "empty-state"),
          "--checkpoints",
          "s3://bucket/prefix?endpoint=http://127.0.0.1:1",
        ],
        { ...process.env, AWS_ACCESS_KEY_ID: "eddy", AWS_SECRET_ACCESS_KEY: "not-needed" },
      );
      assert.equal(unreachable.status, 1, show(unreachable));
      assertPrinted(
        unreachable,
        /empty-state is empty and the checkpoints cannot be read: .*ECONNREFUSED/,
        "why it did not start",
      );
      assert.doesNotMatch(unreachable.stderr, /\n\s+at /, "no stack trace");
      assertPrinted(
        empty,
        /holds no checkpoint or savepoint to verify \(is the URL right\?\)/,
        "nothing to verify is no success",
      );
      assertPrinted(scheme, /checkpoint location ftp:\/\/x: unsupported scheme ftp:/, "the scheme is named");
      assertPrinted(interval, /--checkpoint-interval, .* need --checkpoints <url>/, "what is missing");
      assertPrinted(action, /unknown action "frobnicate"; expected list, create, verify or restore/, "the actions");
    } finally {
      await eddy.dispose();
    }
  });
});
