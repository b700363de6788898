// The CLI over a running Eddy's admin API: `eddy state`, `eddy top` and `eddy dead-letters`
// against a real `eddy run` with the greeter (served by the test over HTTP) and a function that
// fails on demand, reached through the control socket of its state directory (no port, no
// token) and once through --admin URL. A state written with `eddy state put` is what the
// function's next invocation sees; a dead letter replayed while Eddy runs is delivered at once.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, type RunningServer, serve, statefulFunction, types } from "@eddy/sdk";
import { greeter, person } from "../../examples/greeter/functions.ts";
import { type CommandResult, EddyProcess, playgroundYaml, runEddyCommand } from "./smoke/cluster.ts";
import { nextRecord } from "./smoke/driver.ts";

let failing = false;
/** Counts its messages, or fails while `failing`: its batches then become dead letters. */
const flaky = statefulFunction({
  typename: "example/flaky",
  state: { seen: types.int },
  handle(ctx) {
    if (failing) throw new Error("flaky is failing on purpose");
    ctx.storage.seen = (ctx.storage.seen ?? 0) + 1;
  },
});

function show(result: CommandResult): string {
  return `exit ${result.status}\n--- stdout ---\n${result.stdout}--- stderr ---\n${result.stderr}`;
}

/** It failed with one line on stderr, and no stack. */
function failedInOneLine(result: CommandResult, pattern: RegExp): void {
  assert.equal(result.status, 1, show(result));
  assert.equal(result.stderr.trimEnd().split("\n").length, 1, show(result));
  assert.match(result.stderr, pattern, show(result));
}

interface FlakyState {
  readonly state: Readonly<Record<string, { readonly value: unknown }>>;
}

describe("eddy state, top and dead-letters against a running Eddy", { timeout: 60_000 }, () => {
  let functions: RunningServer;
  let eddy: EddyProcess;

  /** `eddy <args> --state-dir <the running Eddy's>`. */
  const eddyIn = (...args: string[]): Promise<CommandResult> => runEddyCommand([...args, "--state-dir", eddy.stateDir]);

  /** Its stdout, once it succeeded. */
  const succeeded = (result: CommandResult): string => {
    assert.equal(result.status, 0, `${show(result)}\n--- eddy ---\n${eddy.output.slice(-2000)}`);
    return result.stdout;
  };

  /** The admin listener's URL, as eddy run printed it. */
  const adminUrl = (): string => {
    const url = /eddy: admin listening on (\S+)/.exec(eddy.output)?.[1];
    assert.ok(url !== undefined, eddy.output);
    return url;
  };

  const greet = async (id: string, name: string): Promise<void> => {
    const response = await fetch(`${eddy.ingressUrl()}example/person/${encodeURIComponent(id)}`, {
      method: "POST",
      headers: { "content-type": "application/vnd.example/GreetRequest" },
      body: JSON.stringify({ name }),
    });
    assert.equal(response.status, 200, await response.text());
  };

  before(async () => {
    functions = await serve(createEndpoint([person, greeter, flaky]), { port: 0 });
    eddy = new EddyProcess({
      moduleYaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: ${functions.url}
  transport:
    call: 500ms
---
${playgroundYaml(["greetings"])}`,
      args: ["run", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}", "--failure-policy", "dead-letter"],
    });
    await eddy.start();
  });

  after(async () => {
    await eddy?.dispose();
    await functions?.close();
  });

  it("lists, reads, writes and deletes state; the function's next invocation sees what was written", async () => {
    // An id with a slash and a space: the address's first two parts are the type, the rest is the id.
    const ids = ["alice", "bob", "carol/x y"];
    for (const id of ids) await greet(id, id);
    // The greeter runs after the person's commit: once its greetings are out, the state is in.
    for (const _ of ids) await nextRecord(eddy, "greetings");

    // Each command is a process that loads the CLI: those that do not depend on each other run side by side.
    const [all, prefixed, page, carol, nobody] = await Promise.all([
      eddyIn("state", "list", "example/person"),
      eddyIn("state", "list", "example/person", "--prefix", "b"),
      eddyIn("state", "list", "example/person", "--limit", "1"),
      eddyIn("state", "get", "example/person/carol/x y"),
      runEddyCommand(["state", "get", "example/person/alice", "--state-dir", eddy.dir]),
    ]);
    assert.equal(succeeded(all), `${ids.join("\n")}\n`);
    assert.equal(succeeded(prefixed), "bob\n");
    assert.equal(succeeded(page), "alice\n");
    assert.match(page.stderr, /--after alice/);
    assert.match(succeeded(carol), /^example\/person\/carol\/x y {2}\(partition \d+\)$/m);
    assert.match(carol.stdout, /^ {2}visits = 1 {2}\[io\.statefun\.types\/int\]/m);
    failedInOneLine(nobody, new RegExp(`^eddy state: no Eddy runs on ${eddy.dir}: .*--admin URL`));

    const [put, deleted, mismatch, unknown] = await Promise.all([
      eddyIn("state", "put", "example/person/alice", "visits", "41"),
      eddyIn("state", "delete", "example/person/bob", "visits"),
      eddyIn("state", "put", "example/person/carol/x y", "visits", "not a number"),
      eddyIn("state", "put", "example/person/carol/x y", "nope", "1"),
    ]);
    assert.match(succeeded(put), /^ {2}visits = 41 {2}\[io\.statefun\.types\/int\]/m);
    assert.equal(succeeded(deleted), "deleted visits of example/person/bob\n");
    failedInOneLine(mismatch, /^eddy state: state "visits" \(io\.statefun\.types\/int\): /);
    failedInOneLine(unknown, /^eddy state: example\/person has declared no state "nope" \(its states: visits\)$/m);

    await greet("alice", "alice");
    assert.equal(await nextRecord(eddy, "greetings"), "Happy to see you once again, alice! (visit 42)");
    const [bob, again] = await Promise.all([
      eddyIn("state", "get", "example/person/bob"),
      eddyIn("state", "delete", "example/person/bob", "visits"),
    ]);
    assert.match(succeeded(bob), /^ {2}no state$/m);
    assert.equal(succeeded(again), "example/person/bob held no visits; nothing deleted\n");
  });

  it("eddy top --once prints a snapshot with rates, plain text", async () => {
    // Traffic all along, so that whenever the two reads happen, messages flow between them.
    let done = false;
    const traffic = (async () => {
      for (let i = 0; !done; i++) {
        await greet(`top-${i}`, `top-${i}`);
        await sleep(20);
      }
    })();
    const result = await eddyIn("top", "--once", "--interval-ms", "600");
    done = true;
    await traffic;
    const lines = succeeded(result).trimEnd().split("\n");
    assert.ok(!result.stdout.includes("\u001b"), "no terminal codes");
    assert.match(lines[0] ?? "", /^eddy top {2}the Eddy on .* every 600 ms$/);
    assert.match(lines[1] ?? "", /^total [\d.]+ msg\/s {3}ingress [\d.]+ req\/s {3}egress [\d.]+ rec\/s/);
    assert.match(
      result.stdout,
      /^FUNCTION TYPE +MSG\/S +P50 MS +P99 MS +BACKLOG +IN FLIGHT +FAIL\/S +PAUSED +HEALTH$/m,
    );
    const personRow = lines.find((line) => line.startsWith("example/person "));
    assert.ok(personRow !== undefined, result.stdout);
    const [, rate] = personRow.split(/ +/);
    assert.ok(Number(rate) > 0, `example/person's rate in\n${result.stdout}`);
  });

  it("lists, shows, replays and discards dead letters while Eddy runs, with --state-dir or --admin", async () => {
    failing = true;
    for (const id of ["1", "2"]) {
      const response = await fetch(`${eddy.ingressUrl()}example/flaky/${id}`, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: `message ${id}`,
      });
      assert.equal(response.status, 200);
    }
    // The ids, from the API itself: the runtime's log lines are not what is tested here.
    let letters: { id: string; target: { id: string } }[] = [];
    for (let tries = 0; tries < 150 && letters.length < 2; tries++) {
      await sleep(100);
      letters = ((await (await fetch(`${adminUrl()}v1/dead-letters`)).json()) as { deadLetters: typeof letters })
        .deadLetters;
    }
    const first = letters.find(({ target }) => target.id === "1")?.id;
    const second = letters.find(({ target }) => target.id === "2")?.id;
    assert.ok(first !== undefined && second !== undefined, JSON.stringify(letters));

    const [list, shown] = await Promise.all([eddyIn("dead-letters", "list"), eddyIn("dead-letters", "show", first)]);
    assert.match(succeeded(list), new RegExp(`^${first} {2}\\S+ {2}example/flaky/1 {2}1 message\\(s\\)$`, "m"));
    assert.match(list.stdout, new RegExp(`^${second} {2}\\S+ {2}example/flaky/2 {2}1 message\\(s\\)$`, "m"));
    assert.match(list.stdout, /flaky is failing on purpose/);
    assert.match(list.stdout, new RegExp(`^2 dead letter\\(s\\) in ${eddy.stateDir}$`, "m"));
    const letter = JSON.parse(succeeded(shown)) as { id: string; target: { id: string }; replayable: boolean };
    assert.deepEqual([letter.id, letter.target.id, letter.replayable], [first, "1", true]);

    failing = false;
    const pid = readFileSync(join(eddy.stateDir, "eddy.pid"), "utf8").trim();
    assert.equal(
      succeeded(await eddyIn("dead-letters", "replay", first)),
      `replayed ${first}\n1 dead letter(s) replayed by the Eddy on ${eddy.stateDir} (process ${pid})\n`,
    );
    let seen: unknown;
    for (let tries = 0; tries < 50 && seen !== 1; tries++) {
      const response = await fetch(`${adminUrl()}v1/state/example/flaky/1`);
      seen = ((await response.json()) as FlakyState).state.seen?.value;
      if (seen !== 1) await sleep(100);
    }
    assert.equal(seen, 1, "the replayed message was delivered at once");

    // Through the admin listener's URL instead of the control socket.
    const viaUrl = succeeded(await runEddyCommand(["dead-letters", "discard", "--all", "--admin", adminUrl()]));
    assert.match(viaUrl, new RegExp(`^discarded ${second} \\(example/flaky/2\\)$`, "m"));
    assert.match(viaUrl, /^1 dead letter\(s\) discarded by http:\/\/127\.0\.0\.1:\d+$/m);
    const left = (await (await fetch(`${adminUrl()}v1/dead-letters`)).json()) as { deadLetters: unknown[] };
    assert.deepEqual(left.deadLetters, []);
  });
});
