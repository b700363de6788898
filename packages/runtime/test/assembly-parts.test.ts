// The assembly's small parts without a runtime around them: the unwinding stack closes last
// first, goes on past a closer that fails and closes once; opening connectors registers each
// one's close before it opens, turns an open that fails for a reason the user can fix into a
// StartupError, and a connector's bug into a stop reason with its stack.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Closers } from "../src/assembly/closers.ts";
import { connectorFailure, type NamedConnector, openConnectors } from "../src/assembly/connectors.ts";
import { StartupError } from "../src/assembly/startup-error.ts";
import type { EnginePorts } from "../src/engine/ports.ts";
import { BugError, EddyError } from "../src/errors.ts";
import type { Connector, ConnectorHost } from "../src/io/connector.ts";
import { lineLogger, NOOP_LOGGER } from "../src/observe/logger.ts";

describe("Closers", () => {
  it("closes last registered first, goes on past a failure, rethrows the first, and closes once", async () => {
    const closed: string[] = [];
    const lines: string[] = [];
    const closers = new Closers();
    closers.defer("lock", () => {
      closed.push("lock");
    });
    closers.defer("store", async () => {
      closed.push("store");
      throw new Error("disk gone");
    });
    closers.defer("ingress", async () => {
      closed.push("ingress");
    });
    await assert.rejects(closers.closeAll(lineLogger((line) => lines.push(line))), /disk gone/);
    assert.deepEqual(closed, ["ingress", "store", "lock"]);
    assert.deepEqual(lines, ["eddy: closing store failed: disk gone"]);
    await assert.rejects(closers.closeAll(NOOP_LOGGER), /disk gone/, "a second close is the first one's outcome");
    assert.deepEqual(closed, ["ingress", "store", "lock"], "a second close closes nothing again");
  });

  it("a close asked for while one runs waits for it to end", async () => {
    const closers = new Closers();
    let finish: () => void = () => {};
    let ended = false;
    closers.defer("store", async () => {
      await new Promise<void>((resolve) => {
        finish = resolve;
      });
      ended = true;
    });
    const first = closers.closeAll(NOOP_LOGGER);
    const second = closers.closeAll(NOOP_LOGGER).then(() => ended);
    finish();
    await first;
    assert.equal(await second, true, "the second close resolved only after the store had closed");
  });

  it("move() hands every closer to a new stack and leaves the old one empty", async () => {
    const closed: string[] = [];
    const starting = new Closers();
    starting.defer("a", () => {
      closed.push("a");
    });
    const running = starting.move();
    await starting.closeAll(NOOP_LOGGER);
    assert.deepEqual(closed, [], "the start's stack no longer holds what the running runtime owns");
    await running.closeAll(NOOP_LOGGER);
    assert.deepEqual(closed, ["a"]);
  });
});

/** A connector that records what happens to it and opens as told. */
function fake(id: string, open: (host: ConnectorHost) => Promise<string[]>, events: string[]): NamedConnector {
  const connector: Connector = {
    id,
    egress: undefined,
    async open(host) {
      events.push(`open ${id}`);
      return { urls: await open(host) };
    },
    async close() {
      events.push(`close ${id}`);
    },
  };
  return { connector, name: `test ingress ${id}` };
}

const host = { engine: {} as EnginePorts, store: new Map() as never, checkpointed: undefined };

describe("openConnectors", () => {
  it("registers each close before its open, so one that fails to open is closed with the rest", async () => {
    const events: string[] = [];
    const closers = new Closers();
    const portTaken = new EddyError("listen-failed", "port 8090 on 127.0.0.1 is in use; the ingress wants it", {
      retriable: false,
    });
    const connectors = [
      fake("a", async () => ["http://127.0.0.1:1/"], events),
      fake(
        "b",
        async () => {
          throw portTaken;
        },
        events,
      ),
      fake("c", async () => [], events),
    ];
    await assert.rejects(
      openConnectors(connectors, host, () => undefined, closers),
      (error: unknown) => error instanceof StartupError && error.message === portTaken.message,
    );
    await closers.closeAll(NOOP_LOGGER);
    assert.deepEqual(events, ["open a", "open b", "close b", "close a"], "c never opened; b and a closed, last first");
  });

  it("passes a bug thrown while opening on with its stack, not as a StartupError", async () => {
    const bug = new BugError("opened twice");
    const connectors = [
      fake("a", async () => {
        throw bug;
      }, []),
    ];
    await assert.rejects(
      openConnectors(connectors, host, () => undefined, new Closers()),
      (error) => error === bug,
    );
  });

  it("gives each connector an onFatal that names it", async () => {
    const failures: { name: string; error: unknown }[] = [];
    const bug = new TypeError("reader is undefined");
    const connectors = [
      fake(
        "a",
        async (given) => {
          given.onFatal(bug);
          return [];
        },
        [],
      ),
    ];
    await openConnectors(connectors, host, (name, error) => failures.push({ name, error }), new Closers());
    assert.deepEqual(failures, [{ name: "test ingress a", error: bug }]);
    const { reason, stack } = connectorFailure("test ingress a", bug);
    assert.equal(reason, "test ingress a failed: reader is undefined");
    assert.match(stack, /^\nTypeError: reader is undefined\n {4}at /, "a bug's stack goes to the log");
    const refused = connectorFailure("x", new EddyError("unauthorized", "SASL refused", { retriable: false }));
    assert.deepEqual(refused, { reason: "x failed: SASL refused", stack: "" }, "not a bug: one line");
  });
});
