// `eddy dev`: functions run in-process, and saving the functions file reloads them
// without a restart (state stays, since it lives in the runtime); on the main thread, and on
// partition threads (--threads 2), where every thread imports the file again.
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { EddyProcess, playgroundYaml } from "./smoke/cluster.ts";
import { nextRecord } from "./smoke/driver.ts";

// Inside the repository, so the file resolves @eddy/sdk like user code in a project would.
const functionsPath = join(import.meta.dirname, `.dev-reload-${process.pid}.ts`);

function functionsSource(greeting: string): string {
  return `import { egressMessage, statefulFunction, types } from "@eddy/sdk";
const Record = types.json<{ topic: string; payload: string }>("io.statefun.playground/EgressRecord");
export const counter = statefulFunction({
  typename: "dev/counter",
  state: { seen: types.int },
  handle(ctx) {
    ctx.storage.seen = (ctx.storage.seen ?? 0) + 1;
    ctx.send(egressMessage("io.statefun.playground/egress", { topic: "out", payload: \`${greeting} \${ctx.storage.seen}\` }, Record));
  },
});
`;
}

const moduleYaml = playgroundYaml(["out"]);

/** Instances of dev/counter: 8 ids, whose partitions fall on both threads of `--threads 2`. */
const IDS = ["a", "b", "c", "d", "e", "f", "g", "h"];

for (const threads of [1, 2]) {
  describe(threads === 1 ? "eddy dev" : "eddy dev --threads 2", { timeout: 60_000 }, () => {
    const threaded = threads === 1 ? [] : ["--threads", String(threads), "--admin-port", "off"];
    const eddy = new EddyProcess({
      moduleYaml,
      args: ["dev", functionsPath, "--module", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}", ...threaded],
    });
    after(async () => {
      await eddy.dispose();
      rmSync(functionsPath, { force: true });
    });

    async function sendToAll(): Promise<void> {
      for (const id of IDS) {
        const response = await fetch(`${eddy.ingressUrl()}dev/counter/${id}`, { method: "POST", body: "x" });
        assert.equal(response.status, 200, await response.text());
      }
    }

    async function records(count: number): Promise<string[]> {
      const seen: string[] = [];
      for (let index = 0; index < count; index++) seen.push(await nextRecord(eddy, "out"));
      return seen;
    }

    it("reloads the functions file when it is saved, keeping the state", async () => {
      writeFileSync(functionsPath, functionsSource("hello"));
      await eddy.start();
      await sendToAll();
      assert.deepEqual(await records(IDS.length), Array(IDS.length).fill("hello 1"));

      writeFileSync(functionsPath, functionsSource("bonjour"));
      for (let tries = 0; tries < 200 && !eddy.output.includes("reloaded"); tries++) await sleep(25);
      assert.match(eddy.output, /eddy: reloaded/);
      await sendToAll();
      assert.deepEqual(await records(IDS.length), Array(IDS.length).fill("bonjour 2"));
    });
  });
}
